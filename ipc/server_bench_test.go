package ipc

import (
	"strconv"
	"testing"
)

// BenchmarkServer verifies a cached API key over a live connection, one
// request at a time and 64 pipelined. The allocations reported are the
// process's, client included; TestServerAllocations checks the server's.
func BenchmarkServer(b *testing.B) {
	for _, depth := range []int{1, 64} {
		b.Run("depth="+strconv.Itoa(depth), func(b *testing.B) {
			e := newEnv(b, nil)
			c := e.dial()
			for i := range uint64(20) {
				c.verify(i, e.token, "orders:publish")
			}
			var batch []byte
			for i := range uint64(depth) {
				batch = AppendVerify(batch, i, e.token, "orders:publish")
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				c.send(batch)
				for range depth {
					if f := c.mustNext(); f.Header.Opcode != OpVerifyResult {
						b.Fatal(f.Header.Opcode)
					}
				}
			}
			b.ReportMetric(float64(b.N*depth)/b.Elapsed().Seconds(), "req/s")
		})
	}
}
