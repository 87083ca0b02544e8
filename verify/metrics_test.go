package verify

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/verifyd/verifyd/rbac"
	"github.com/verifyd/verifyd/verify/credential"
)

// decisionCount returns how many decisions of format f with reason r m
// counted.
func (m *metrics) decisionCount(f credential.Format, r Reason) uint64 {
	return m.counts.Load(countDecisions + int(f)*int(numReasons) + int(r))
}

// Each latency falls in the first bucket whose bound it does not exceed.
func TestLatencyBucket(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want int
	}{
		{-1, 0}, {0, 0}, {1, 0}, {250, 0}, {251, 1}, {500, 1}, {501, 2}, {1000, 2}, {1001, 3},
		{250 << 15, 15}, {250<<15 + 1, latencyBuckets}, {time.Hour, latencyBuckets},
	} {
		if got := latencyBucket(tc.d); got != tc.want {
			t.Errorf("latencyBucket(%v) = %d, want %d", tc.d, got, tc.want)
		}
	}
}

// What goroutines observe at once is exposed whole, as the metrics the
// daemon has always exposed: decisions by kind and status, a latency
// histogram with the 250 ns * 2^k buckets, policy decisions by reason.
func TestMetricsExposition(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, each = 8, 1000
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				res := Result{Reason: OK, Decision: rbac.Decision{Allowed: true, Reason: rbac.Granted}}
				if i%2 == 1 {
					res = Result{Reason: Forbidden, Decision: rbac.Decision{Reason: rbac.NotOnACL}}
				}
				m.observe(credential.APIKey, res, time.Duration(300+g)) // bucket le 5e-07
			}
		})
	}
	wg.Wait()
	m.observe(credential.Malformed, Result{Reason: Malformed}, time.Hour)
	total := goroutines*each + 1
	sum := float64(goroutines*each/8)*(300+301+302+303+304+305+306+307)*1e-9 + 3600

	want := fmt.Sprintf(`
# HELP verifyd_verify_decision_duration_seconds Time to reach a verification decision, from classification to the answer.
# TYPE verifyd_verify_decision_duration_seconds histogram
verifyd_verify_decision_duration_seconds_bucket{le="2.5e-07"} 0
verifyd_verify_decision_duration_seconds_bucket{le="5e-07"} %[1]d
verifyd_verify_decision_duration_seconds_bucket{le="1e-06"} %[1]d
verifyd_verify_decision_duration_seconds_bucket{le="2e-06"} %[1]d
verifyd_verify_decision_duration_seconds_bucket{le="4e-06"} %[1]d
verifyd_verify_decision_duration_seconds_bucket{le="8e-06"} %[1]d
verifyd_verify_decision_duration_seconds_bucket{le="1.6e-05"} %[1]d
verifyd_verify_decision_duration_seconds_bucket{le="3.2e-05"} %[1]d
verifyd_verify_decision_duration_seconds_bucket{le="6.4e-05"} %[1]d
verifyd_verify_decision_duration_seconds_bucket{le="0.000128"} %[1]d
verifyd_verify_decision_duration_seconds_bucket{le="0.000256"} %[1]d
verifyd_verify_decision_duration_seconds_bucket{le="0.000512"} %[1]d
verifyd_verify_decision_duration_seconds_bucket{le="0.001024"} %[1]d
verifyd_verify_decision_duration_seconds_bucket{le="0.002048"} %[1]d
verifyd_verify_decision_duration_seconds_bucket{le="0.004096"} %[1]d
verifyd_verify_decision_duration_seconds_bucket{le="0.008192"} %[1]d
verifyd_verify_decision_duration_seconds_bucket{le="+Inf"} %[2]d
verifyd_verify_decision_duration_seconds_sum %[3]g
verifyd_verify_decision_duration_seconds_count %[2]d
`, goroutines*each, total, sum)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "verifyd_verify_decision_duration_seconds"); err != nil {
		t.Error(err)
	}
	if got := m.decisionCount(credential.APIKey, OK) + m.decisionCount(credential.APIKey, Forbidden); got != goroutines*each {
		t.Errorf("%d API-key decisions counted, want %d", got, goroutines*each)
	}
	for _, tc := range []struct {
		series string
		want   float64
	}{
		{`verifyd_verify_decisions_total{kind="api_key",status="ok"}`, goroutines * each / 2},
		{`verifyd_verify_decisions_total{kind="api_key",status="forbidden"}`, goroutines * each / 2},
		{`verifyd_verify_decisions_total{kind="malformed",status="malformed"}`, 1},
		{`verifyd_verify_decisions_total{kind="jwt",status="ok"}`, 0},
		{`verifyd_verify_policy_decisions_total{reason="not_on_acl"}`, goroutines * each / 2},
		{`verifyd_verify_policy_decisions_total{reason="granted"}`, goroutines * each / 2},
		{`verifyd_verify_policy_decisions_total{reason="no_grant"}`, 0},
	} {
		if got := gathered(t, reg, tc.series); got != tc.want {
			t.Errorf("%s = %v, want %v", tc.series, got, tc.want)
		}
	}
	if n := testutil.CollectAndCount(m, "verifyd_verify_decisions_total"); n != int(credential.NumFormats)*int(numReasons) {
		t.Errorf("%d decision series, want one per kind and status (%d)", n, int(credential.NumFormats)*int(numReasons))
	}
	if n := testutil.CollectAndCount(m, "verifyd_verify_policy_decisions_total"); n != len(policyReasons()) {
		t.Errorf("%d policy series, want %d", n, len(policyReasons()))
	}
}

// gathered returns the value of one counter series, written as in the
// exposition format.
func gathered(t *testing.T, reg *prometheus.Registry, series string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			if mf.GetName()+"{"+strings.Join(labels, ",")+"}" == series {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no series %s", series)
	return 0
}
