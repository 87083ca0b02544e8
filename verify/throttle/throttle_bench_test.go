package throttle

import (
	"log/slog"
	"net/netip"
	"testing"

	"github.com/verifyd/verifyd/verify"
)

// BenchmarkGate measures the throttle's own cost, over a verifier that
// answers from a map: what a Gate adds to each verification.
func BenchmarkGate(b *testing.B) {
	setup := func(b *testing.B, roles map[string]string) (*Gate, *fakeVerifier) {
		cfg := DefaultConfig()
		cfg.RoleRateLimits = roles
		l, err := New(cfg, &Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		v := &fakeVerifier{answers: map[string]verify.Result{"good": valid("k1", "r")}}
		return l.Gate(v, "bench"), v
	}
	src := addr("198.51.100.1")
	run := func(b *testing.B, g *Gate, token string, want verify.Reason) {
		b.ReportAllocs()
		for b.Loop() {
			if r, _ := g.Verify(src, token, ""); r.Reason != want {
				b.Fatal(r.Reason)
			}
		}
	}
	b.Run("verifier_alone", func(b *testing.B) {
		_, v := setup(b, nil)
		b.ReportAllocs()
		for b.Loop() {
			if r := v.Verify("good", ""); r.Reason != verify.OK {
				b.Fatal(r.Reason)
			}
		}
	})
	b.Run("valid/nothing_in_cooldown", func(b *testing.B) {
		g, _ := setup(b, nil)
		run(b, g, "good", verify.OK)
	})
	b.Run("valid/cooldowns_elsewhere", func(b *testing.B) {
		g, _ := setup(b, nil)
		for range 20 {
			g.Verify(addr("192.0.2.7"), patAOther, "")
		}
		run(b, g, "good", verify.OK)
	})
	b.Run("valid/rate_limited_credential", func(b *testing.B) {
		g, _ := setup(b, map[string]string{"r": "1000000000/s"})
		run(b, g, "good", verify.OK)
	})
	b.Run("failure/new_source_each_time", func(b *testing.B) {
		g, _ := setup(b, nil)
		var i uint32
		b.ReportAllocs()
		for b.Loop() {
			i++
			if r, _ := g.Verify(AddrSource(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})), "guess", ""); r.Reason != verify.Unknown {
				b.Fatal(r.Reason)
			}
		}
	})
	b.Run("refused/source_in_cooldown", func(b *testing.B) {
		g, _ := setup(b, nil)
		for range 20 {
			g.Verify(src, "guess", "")
		}
		run(b, g, "good", verify.RateLimited)
	})
}
