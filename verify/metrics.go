package verify

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verifyd/verifyd/rbac"
	"github.com/verifyd/verifyd/verify/credential"
)

// maxPolicyReasons bounds the rbac reasons counted: rbac's Reason is a
// small, closed set (ten today), each a fixed label value.
const maxPolicyReasons = 32

// metrics holds the verifier's pre-resolved metric children: nothing on the
// request path looks a label up.
type metrics struct {
	decisions [credential.NumFormats][numReasons]prometheus.Counter
	latency   prometheus.Observer
	// policy counts the policy's decisions by rbac reason; nil entries
	// are reasons rbac does not define.
	policy [maxPolicyReasons]prometheus.Counter
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
	policy := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "verifyd",
		Subsystem: "verify",
		Name:      "policy_decisions_total",
		Help:      "Authorization policy decisions on a requested scope, by reason (granted, not_on_acl, stream_role, ...).",
	}, []string{"reason"})
	for _, c := range []prometheus.Collector{decisions, latency, policy} {
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
	for _, r := range policyReasons() {
		m.policy[r] = policy.WithLabelValues(r.String())
	}
	return m, nil
}

// policyReasons returns the reasons rbac defines: those below the first
// that has no name of its own (rbac renders an undefined one "Reason(n)").
func policyReasons() []rbac.Reason {
	var rs []rbac.Reason
	for r := rbac.Reason(0); r < maxPolicyReasons; r++ {
		if name := r.String(); len(name) > 7 && name[:7] == "Reason(" {
			break
		}
		rs = append(rs, r)
	}
	return rs
}

func (m *metrics) observe(f credential.Format, r Result, d time.Duration) {
	m.decisions[f][r.Reason].Inc()
	m.latency.Observe(d.Seconds())
	if r.Decided() && int(r.Decision.Reason) < maxPolicyReasons {
		if c := m.policy[r.Decision.Reason]; c != nil {
			c.Inc()
		}
	}
}
