package trust

import (
	"github.com/prometheus/client_golang/prometheus"
)

const (
	metricsNamespace = "verifyd"
	metricsSubsystem = "trust"
)

// metrics holds the registry's collectors. Per-source children are looked
// up once, in newSourceMetrics; source names are bounded by the
// configuration.
type metrics struct {
	refreshes   *prometheus.CounterVec
	keys        *prometheus.GaugeVec
	skipped     *prometheus.GaugeVec
	lastSuccess *prometheus.GaugeVec
	stale       *prometheus.GaugeVec

	kidRefreshed, kidRateLimited prometheus.Counter

	collectors []prometheus.Collector
}

// sourceMetrics holds one source's pre-resolved metric children.
type sourceMetrics struct {
	ok, errors  prometheus.Counter
	keys        prometheus.Gauge
	skipped     prometheus.Gauge
	lastSuccess prometheus.Gauge
	stale       prometheus.Gauge
}

func newMetrics() *metrics {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: metricsNamespace, Subsystem: metricsSubsystem, Name: name, Help: help}
	}
	m := &metrics{
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts(opts("refreshes_total",
			"Key set fetches and file reloads, by source and result (ok, error). A rejected set is an error.")), []string{"source", "result"}),
		keys: prometheus.NewGaugeVec(prometheus.GaugeOpts(opts("keys",
			"Trusted keys served, by source.")), []string{"source"}),
		skipped: prometheus.NewGaugeVec(prometheus.GaugeOpts(opts("skipped_keys",
			"Keys of the current key set that are not ES256 verification keys and were skipped, by source.")), []string{"source"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts(opts("last_success_timestamp_seconds",
			"Unix time of the last good fetch or load, by source; 0 before the first.")), []string{"source"}),
		stale: prometheus.NewGaugeVec(prometheus.GaugeOpts(opts("stale",
			"1 while a fetched source serves no keys because its last good fetch is older than max_staleness or it never had one, by source.")), []string{"source"}),
	}
	unknown := prometheus.NewCounterVec(prometheus.CounterOpts(opts("unknown_kid_total",
		"Lookups of an unknown key id that could come from a fetched source, by result: refreshed (a refresh was started) or rate_limited.")), []string{"result"})
	m.kidRefreshed = unknown.WithLabelValues("refreshed")
	m.kidRateLimited = unknown.WithLabelValues("rate_limited")
	m.collectors = []prometheus.Collector{m.refreshes, m.keys, m.skipped, m.lastSuccess, m.stale, unknown}
	return m
}

func (m *metrics) forSource(name string) sourceMetrics {
	return sourceMetrics{
		ok:          m.refreshes.WithLabelValues(name, "ok"),
		errors:      m.refreshes.WithLabelValues(name, "error"),
		keys:        m.keys.WithLabelValues(name),
		skipped:     m.skipped.WithLabelValues(name),
		lastSuccess: m.lastSuccess.WithLabelValues(name),
		stale:       m.stale.WithLabelValues(name),
	}
}

// register registers every collector with reg, undoing its work on failure.
func (m *metrics) register(reg prometheus.Registerer) error {
	for i, c := range m.collectors {
		if err := reg.Register(c); err != nil {
			for _, done := range m.collectors[:i] {
				reg.Unregister(done)
			}
			return err
		}
	}
	return nil
}

func (m *metrics) unregister(reg prometheus.Registerer) {
	for _, c := range m.collectors {
		reg.Unregister(c)
	}
}
