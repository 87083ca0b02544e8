package verify

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verifyd/verifyd/verify/credential"
)

// metrics holds the verifier's pre-resolved metric children: nothing on the
// request path looks a label up.
type metrics struct {
	decisions [credential.NumFormats][numReasons]prometheus.Counter
	latency   prometheus.Observer
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	decisions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "verifyd",
		Subsystem: "verify",
		Name:      "decisions_total",
		Help:      "Verification decisions by credential kind (as classified from the token's shape) and status.",
	}, []string{"kind", "status"})
	latency := prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "verifyd",
		Subsystem: "verify",
		Name:      "decision_duration_seconds",
		Help:      "Time to reach a verification decision, from classification to the answer.",
		Buckets:   prometheus.ExponentialBuckets(250e-9, 2, 16), // 250ns .. ~8ms
	})
	for _, c := range []prometheus.Collector{decisions, latency} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m := &metrics{latency: latency}
	for f := range credential.NumFormats {
		for r := range numReasons {
			m.decisions[f][r] = decisions.WithLabelValues(f.String(), r.String())
		}
	}
	return m, nil
}

func (m *metrics) observe(f credential.Format, r Reason, d time.Duration) {
	m.decisions[f][r].Inc()
	m.latency.Observe(d.Seconds())
}
