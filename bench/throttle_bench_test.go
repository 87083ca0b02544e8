package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/verify"
	"github.com/verifyd/verifyd/verify/credential"
	"github.com/verifyd/verifyd/verify/throttle"
)

// newGate returns a throttle gate over v with the default configuration
// and role limits roles.
func newGate(b *testing.B, v throttle.Verifier, roles map[string]string) *throttle.Gate {
	b.Helper()
	cfg := throttle.DefaultConfig()
	cfg.RoleRateLimits = roles
	l, err := throttle.New(cfg, &throttle.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	return l.Gate(v, "bench")
}

// benchGate verifies secrets picked at random through g from src and
// requires every answer to be want.
func benchGate(b *testing.B, g *throttle.Gate, src throttle.Source, secrets []string, scope string, want verify.Reason) {
	r := rng(0x9e3779b97f4a7c15)
	mask := uint64(len(secrets) - 1)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if res, _ := g.Verify(src, secrets[r.next()&mask], scope); res.Reason != want {
			b.Fatalf("got %v, want %v", res.Reason, want)
		}
	}
}

// BenchmarkThrottle measures what the throttle adds to a verification, on
// the store and keys of BenchmarkVerify: opaque/cache_hit_hot through a
// gate is to be read against BenchmarkVerify/opaque/cache_hit_hot.
func BenchmarkThrottle(b *testing.B) {
	client := throttle.AddrSource(netip.MustParseAddr("198.51.100.1"))
	b.Run("opaque/cache_hit_hot", func(b *testing.B) {
		// Nothing in a cool-down anywhere: the common case.
		e := bigEnv(b)
		benchGate(b, newGate(b, e.v, nil), client, e.secrets[:hotKeys], "tool:data:read", verify.OK)
	})
	b.Run("opaque/cache_hit_hot/cooldowns_elsewhere", func(b *testing.B) {
		// Another source and a PAT id are in a cool-down: every
		// verification reads the clock and looks its source up.
		e := bigEnv(b)
		g := newGate(b, e.v, nil)
		pat := "pat_AAAAAAAAAAAAAAAAAAAAAA_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		for range 20 {
			g.Verify(throttle.AddrSource(netip.MustParseAddr("192.0.2.7")), pat, "")
		}
		if r, _ := g.Verify(throttle.AddrSource(netip.MustParseAddr("192.0.2.7")), e.secrets[0], ""); r.Reason != verify.RateLimited {
			b.Fatalf("the attacker is not in a cool-down: %v", r.Reason)
		}
		benchGate(b, g, client, e.secrets[:hotKeys], "tool:data:read", verify.OK)
	})
	b.Run("opaque/cache_hit_hot/rate_limited_keys", func(b *testing.B) {
		// Every key has a rate limit (never reached): a bucket per request.
		e := limitedEnv(b)
		benchGate(b, newGate(b, e.v, nil), client, e.secrets, "tool:data:read", verify.OK)
	})
	b.Run("opaque/forged/many_sources", func(b *testing.B) {
		// Forged keys, each from another address: every one is a failure
		// to count, in a table far smaller than the addresses.
		e := bigEnv(b)
		g := newGate(b, e.v, nil)
		forged := []byte(e.secrets[0])
		forged[len(forged)-1] ^= 1
		token := string(forged)
		var i uint32
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			i++
			src := throttle.AddrSource(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
			if res, _ := g.Verify(src, token, ""); res.Reason != verify.Malformed {
				b.Fatalf("got %v", res.Reason)
			}
		}
	})
}

var limitedOnce struct {
	env *env
}

// limitedEnv is a store of hotKeys API keys that each carry a rate limit
// in their metadata, all cached.
func limitedEnv(b *testing.B) *env {
	if e := limitedOnce.env; e != nil {
		return e
	}
	dir, err := mkdirTemp()
	if err != nil {
		b.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	store, err := keystore.Open(dir, &keystore.Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	ck, _ := credential.NewChecksumKey()
	minter, err := credential.NewMinter(ck)
	if err != nil {
		b.Fatal(err)
	}
	v, err := verify.New(store, minter, &verify.Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	e := &env{v: v, store: store, minter: minter, secrets: make([]string, hotKeys)}
	recs := make([]keystore.Record, hotKeys)
	for i := range recs {
		s, err := minter.NewAPIKey()
		if err != nil {
			b.Fatal(err)
		}
		id, _ := credential.NewID()
		e.secrets[i] = s
		recs[i] = keystore.Record{
			ID: id, Kind: keystore.KindAPIKey, Subject: fmt.Sprintf("user-%d", i), Scopes: []string{"tool:data:*"},
			Metadata: map[string]string{keystore.MetaRateLimit: "1000000000/s"}, Digest: keystore.Sum(s),
		}
	}
	if _, err := store.CreateBatch(context.Background(), recs); err != nil {
		b.Fatal(err)
	}
	e.warm(b, e.secrets)
	limitedOnce.env = e
	return e
}
