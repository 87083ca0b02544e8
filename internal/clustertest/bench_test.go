package clustertest

import (
	"testing"
	"time"
)

// BenchmarkReplication measures, on a cluster of three etcd members and
// three nodes, how long a revocation made on a takes to be refused on b and
// c: from the revoke call's send until both answered "revoked". ns/op is
// the mean; p50-ms and p99-ms the percentiles.
func BenchmarkReplication(b *testing.B) {
	c := newTestCluster(b, 3, "a", "b", "c")
	a, nb, nc := c.node("a"), c.node("b"), c.node("c")
	// Steady state only: every node verifies a first key before anything
	// is measured (a node may still answer "unavailable" for a moment
	// after /readyz first says ready).
	warm := a.mustCreateKey(b, "warm-up")
	for _, n := range c.nodes {
		n.waitVerify(b, warm.Secret, "ok", propagationBound, "unknown", "unavailable")
	}
	b.Run("propagation", func(b *testing.B) {
		b.StopTimer()
		keys := createKeys(b, a, "bench", b.N, 8)
		c.waitConverged(b)
		ds := make([]time.Duration, 0, b.N)
		b.StartTimer()
		for _, k := range keys {
			sent := time.Now()
			a.mustRevokeKey(b, k.ID)
			last := waitRefused(b, k.Secret, propagationBound, nb, nc)
			ds = append(ds, last.Sub(sent))
		}
		b.StopTimer()
		s := summarize(ds)
		b.ReportMetric(s.P50, "p50-ms")
		b.ReportMetric(s.P99, "p99-ms")
		b.ReportMetric(s.Mean*1e6, "ns/op")
	})
}
