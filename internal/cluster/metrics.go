package cluster

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the node's Prometheus metrics, in the verifyd_cluster_
// namespace.
type metrics struct {
	applied       prometheus.Gauge
	lag           prometheus.Gauge
	age           prometheus.Gauge
	degraded      prometheus.Gauge
	changes       prometheus.Counter
	watchRestarts prometheus.Counter
	resyncs       prometheus.Counter
	conflicts     prometheus.Counter
	commitErrors  prometheus.Counter
	applyErrors   prometheus.Counter
	applySeconds  prometheus.Histogram
	commitSeconds prometheus.Histogram
}

func newMetrics(n *Node, reg prometheus.Registerer) (*metrics, error) {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "verifyd", Subsystem: "cluster", Name: name, Help: help}
	}
	buckets := prometheus.ExponentialBuckets(0.0001, 2, 16) // 100µs to about 3s
	m := &metrics{
		applied:       prometheus.NewGauge(prometheus.GaugeOpts(opts("applied_revision", "The etcd revision of the last change applied to this replica."))),
		lag:           prometheus.NewGauge(prometheus.GaugeOpts(opts("lag_seconds", "Delay between the commit of the last change applied (by the writing node's clock) and its apply here."))),
		age:           prometheus.NewGauge(prometheus.GaugeOpts(opts("replica_age_seconds", "Time since etcd last confirmed that this replica had every change."))),
		degraded:      prometheus.NewGauge(prometheus.GaugeOpts(opts("degraded", "1 while the replica is not confirmed current (etcd unreachable or the watch behind), else 0."))),
		changes:       prometheus.NewCounter(prometheus.CounterOpts(opts("changes_applied_total", "Changes (etcd revisions) applied from the watch."))),
		watchRestarts: prometheus.NewCounter(prometheus.CounterOpts(opts("watch_restarts_total", "Times the watch on etcd failed and was started again."))),
		resyncs:       prometheus.NewCounter(prometheus.CounterOpts(opts("resyncs_total", "Full reloads of the replica from an etcd snapshot (first start, or changes compacted away)."))),
		conflicts:     prometheus.NewCounter(prometheus.CounterOpts(opts("write_conflicts_total", "Writes whose guards failed because another node changed the same state first; they are retried."))),
		commitErrors:  prometheus.NewCounter(prometheus.CounterOpts(opts("write_errors_total", "Writes that could not be committed to etcd."))),
		applyErrors:   prometheus.NewCounter(prometheus.CounterOpts(opts("apply_errors_total", "Changes from etcd that could not be applied to the replica (retried)."))),
		applySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "verifyd", Subsystem: "cluster", Name: "apply_seconds",
			Help: "Time to apply one change to the replica (one synced batch).", Buckets: buckets}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "verifyd", Subsystem: "cluster", Name: "commit_seconds",
			Help: "Time to commit one write to etcd.", Buckets: buckets}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.applied, m.lag, m.age, m.degraded, m.changes, m.watchRestarts, m.resyncs,
		m.conflicts, m.commitErrors, m.applyErrors, m.applySeconds, m.commitSeconds} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("cluster: register metrics: %w", err)
		}
	}
	return m, nil
}
