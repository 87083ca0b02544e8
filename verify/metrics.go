package verify

import (
	"math/bits"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verifyd/verifyd/internal/stripe"
	"github.com/verifyd/verifyd/rbac"
	"github.com/verifyd/verifyd/verify/credential"
)

// maxPolicyReasons bounds the rbac reasons counted: rbac's Reason is a
// small, closed set (ten today), each a fixed label value.
const maxPolicyReasons = 32

// The verifier's counters, in one striped set (see package stripe): every
// verification adds to three or four of them, on every core.
const (
	countDecisions = 0                                                           // by format and reason
	countPolicy    = countDecisions + int(credential.NumFormats)*int(numReasons) // by rbac reason
	countBuckets   = countPolicy + maxPolicyReasons                              // latency buckets, then +Inf
	countSumNanos  = countBuckets + latencyBuckets + 1                           // latency sum
	numCounts      = countSumNanos + 1

	// latencyBuckets are the latency histogram's bounds: 250 ns times
	// powers of two, up to about 8 ms.
	latencyBuckets     = 16
	latencyBucketNanos = 250
)

// metrics counts decisions and their latency. It is a prometheus.Collector
// over a striped set of counters: nothing on the request path looks a label
// up or adds to a counter another core adds to.
type metrics struct {
	counts                     *stripe.Set
	decisions, latency, policy *prometheus.Desc
	bounds                     []float64                // the latency buckets' upper bounds, in seconds
	policyNames                [maxPolicyReasons]string // "" for reasons rbac does not define
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		counts: stripe.New(numCounts),
		decisions: prometheus.NewDesc("verifyd_verify_decisions_total",
			"Verification decisions by credential kind (as classified from the token's shape) and status.",
			[]string{"kind", "status"}, nil),
		latency: prometheus.NewDesc("verifyd_verify_decision_duration_seconds",
			"Time to reach a verification decision, from classification to the answer.", nil, nil),
		policy: prometheus.NewDesc("verifyd_verify_policy_decisions_total",
			"Authorization policy decisions on a requested scope, by reason (granted, not_on_acl, stream_role, ...).",
			[]string{"reason"}, nil),
		bounds: prometheus.ExponentialBuckets(latencyBucketNanos*1e-9, 2, latencyBuckets),
	}
	for _, r := range policyReasons() {
		m.policyNames[r] = r.String()
	}
	if err := reg.Register(m); err != nil {
		return nil, err
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
	s := stripe.Index()
	m.counts.Add(s, countDecisions+int(f)*int(numReasons)+int(r.Reason), 1)
	m.counts.Add(s, countBuckets+latencyBucket(d), 1)
	m.counts.Add(s, countSumNanos, uint64(max(d, 0)))
	if r.Decided() {
		if pr := int(r.Decision.Reason); pr < maxPolicyReasons && m.policyNames[pr] != "" {
			m.counts.Add(s, countPolicy+pr, 1)
		}
	}
}

// latencyBucket returns the index of the first bucket whose bound d does
// not exceed (bounds are inclusive), or latencyBuckets for +Inf.
func latencyBucket(d time.Duration) int {
	if d <= latencyBucketNanos {
		return 0
	}
	return min(bits.Len64(uint64(d-1)/latencyBucketNanos), latencyBuckets)
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.decisions
	ch <- m.latency
	ch <- m.policy
}

// Collect implements prometheus.Collector: every kind and status, the
// latency histogram, and every policy reason rbac defines.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	for f := range credential.NumFormats {
		for r := range numReasons {
			n := m.counts.Load(countDecisions + int(f)*int(numReasons) + int(r))
			ch <- prometheus.MustNewConstMetric(m.decisions, prometheus.CounterValue, float64(n), f.String(), r.String())
		}
	}
	buckets := make(map[float64]uint64, latencyBuckets)
	var count uint64
	for i, b := range m.bounds {
		count += m.counts.Load(countBuckets + i)
		buckets[b] = count
	}
	count += m.counts.Load(countBuckets + latencyBuckets)
	ch <- prometheus.MustNewConstHistogram(m.latency, count, float64(m.counts.Load(countSumNanos))/1e9, buckets)
	for r, name := range m.policyNames {
		if name != "" {
			ch <- prometheus.MustNewConstMetric(m.policy, prometheus.CounterValue, float64(m.counts.Load(countPolicy+r)), name)
		}
	}
}
