package bench

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"testing"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/verify"
	"github.com/verifyd/verifyd/verify/credential"
)

// Sizes of the key sets.
const (
	manyKeys = 1 << 20 // cache_hit: 1M cached keys picked at random
	hotKeys  = 1 << 10 // cache_hit_hot
	coldKeys = 1 << 17 // store_hit and unknown
)

// rng is a xorshift generator: cheap enough not to show in the figures.
type rng uint64

func (r *rng) next() uint64 {
	x := uint64(*r)
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	*r = rng(x)
	return x
}

// env is a store with keys and a verifier over it.
type env struct {
	v       *verify.Verifier
	store   *keystore.Store
	reg     *prometheus.Registry // the store's and the verifier's metrics
	minter  *credential.Minter
	secrets []string
}

// newEnv creates n API keys granting tool:data:* in a store under dir,
// written in synced batches, with a cache of cacheEntries.
func newEnv(b *testing.B, dir string, n int, cacheEntries int64) *env {
	b.Helper()
	ck, _ := credential.NewChecksumKey()
	e := openEnv(b, dir, ck, cacheEntries)
	e.secrets = e.fill(b, n)
	// Let the store settle: measure reads, not the compactions the bulk
	// load left behind.
	if err := e.store.Compact(context.Background()); err != nil {
		b.Fatal(err)
	}
	return e
}

// openEnv opens the store under dir with a cache of cacheEntries and a
// verifier over it whose API keys carry checksums made with checksumKey.
func openEnv(b *testing.B, dir string, checksumKey []byte, cacheEntries int64) *env {
	b.Helper()
	// Bulk loads make Pebble stall writes now and then; an operator should
	// see that, a benchmark's output should not.
	quiet := slog.New(slog.DiscardHandler)
	// Metrics on, as in the daemon: their cost is part of every decision.
	reg := prometheus.NewRegistry()
	store, err := keystore.Open(dir, &keystore.Options{CacheEntries: cacheEntries, Logger: quiet, Registerer: reg})
	if err != nil {
		b.Fatal(err)
	}
	minter, err := credential.NewMinter(checksumKey)
	if err != nil {
		b.Fatal(err)
	}
	v, err := verify.New(store, minter, &verify.Options{Logger: quiet, Registerer: reg})
	if err != nil {
		b.Fatal(err)
	}
	return &env{v: v, store: store, minter: minter, reg: reg}
}

// fill creates n API keys granting tool:data:*, in synced batches, and
// returns their secrets.
func (e *env) fill(b *testing.B, n int) []string {
	b.Helper()
	secrets := make([]string, n)
	// The secrets are views into one contiguous block, as tokens arriving
	// in a network buffer would be: picking one costs the benchmark a
	// single memory access, like the floor's key array.
	block := make([]byte, 0, n*43)
	for range n {
		s, err := e.minter.NewAPIKey()
		if err != nil {
			b.Fatal(err)
		}
		block = append(block, s...)
	}
	all := string(block)
	const batch = 10000
	recs := make([]keystore.Record, 0, batch)
	for i := range n {
		s := all[i*43 : (i+1)*43]
		secrets[i] = s
		id, _ := credential.NewID()
		recs = append(recs, keystore.Record{
			ID: id, Kind: keystore.KindAPIKey, Subject: fmt.Sprintf("user-%d", i),
			Scopes: []string{"tool:data:*"}, Digest: keystore.Sum(s),
		})
		if len(recs) == batch || i == n-1 {
			if _, err := e.store.CreateBatch(context.Background(), recs); err != nil {
				b.Fatal(err)
			}
			recs = recs[:0]
		}
	}
	return secrets
}

// warm verifies every key once so that it is cached.
func (e *env) warm(b *testing.B, secrets []string) {
	for pass := 0; pass < 2; pass++ {
		for i, s := range secrets {
			if r := e.v.Verify(s, "tool:data:read"); !r.Allowed() {
				b.Fatalf("warming: key %d: %v", i, r.Reason)
			}
			if i%4096 == 0 {
				e.store.WaitCache()
			}
		}
		e.store.WaitCache()
	}
	runtime.GC()
}

var (
	bigOnce sync.Once
	big     *env
)

// bigEnv is shared by the sub-benchmarks that need the 1M-key store.
func bigEnv(b *testing.B) *env {
	bigOnce.Do(func() {
		dir, err := mkdirTemp()
		if err != nil {
			b.Fatal(err)
		}
		big = newEnv(b, dir, manyKeys, manyKeys+manyKeys/8)
		big.warm(b, big.secrets)
	})
	return big
}

// benchVerify verifies secrets picked at random and requires every answer to
// be want.
func benchVerify(b *testing.B, v *verify.Verifier, secrets []string, scope string, want verify.Reason) {
	r := rng(0x9e3779b97f4a7c15)
	mask := uint64(len(secrets) - 1) // len is a power of two
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if res := v.Verify(secrets[r.next()&mask], scope); res.Reason != want {
			b.Fatalf("got %v, want %v", res.Reason, want)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	b.Run("opaque/cache_hit", func(b *testing.B) {
		e := bigEnv(b)
		benchVerify(b, e.v, e.secrets, "tool:data:read", verify.OK)
	})
	b.Run("opaque/cache_hit_hot", func(b *testing.B) {
		e := bigEnv(b)
		benchVerify(b, e.v, e.secrets[:hotKeys], "tool:data:read", verify.OK)
	})
	b.Run("opaque/store_hit", func(b *testing.B) {
		// A cache of 16 entries: practically every lookup reads Pebble,
		// whose block cache is warm after the first pass.
		e := newEnv(b, b.TempDir(), coldKeys, 16)
		defer e.store.Close()
		for _, s := range e.secrets {
			e.v.Verify(s, "")
		}
		benchVerify(b, e.v, e.secrets, "tool:data:read", verify.OK)
	})
	b.Run("opaque/forged", func(b *testing.B) {
		e := bigEnv(b)
		forged := make([]string, hotKeys)
		for i := range forged {
			s := []byte(e.secrets[i])
			s[len(s)-1] ^= 1 // the checksum no longer matches
			forged[i] = string(s)
		}
		benchVerify(b, e.v, forged, "tool:data:read", verify.Malformed)
	})
	b.Run("opaque/unknown", func(b *testing.B) {
		// Keys with a valid checksum that were never stored: more distinct
		// keys than the negative cache holds, so most reach the store.
		e := bigEnv(b)
		unknown := make([]string, coldKeys*2)
		for i := range unknown {
			s, err := e.minter.NewAPIKey()
			if err != nil {
				b.Fatal(err)
			}
			unknown[i] = s
		}
		benchVerify(b, e.v, unknown, "tool:data:read", verify.Unknown)
	})
	benchJWT(b)
}

func BenchmarkFloor(b *testing.B) {
	floorJWT(b)
	b.Run("sha256_43B", func(b *testing.B) {
		tok := make([]byte, 43)
		rand.Read(tok)
		b.SetBytes(int64(len(tok)))
		b.ReportAllocs()
		var sink [32]byte
		for b.Loop() {
			sink = sha256.Sum256(tok)
			tok[0] = sink[0]
		}
	})
	b.Run("ristretto_lookup", func(b *testing.B) {
		// ristretto alone, 1M entries keyed by random 64-bit keys, random
		// lookups: the cache's own share of a cache hit, for reference.
		c, err := ristretto.NewCache(&ristretto.Config[uint64, *int]{
			NumCounters: 10 * manyKeys, MaxCost: manyKeys + manyKeys/8, BufferItems: 64, IgnoreInternalCost: true,
		})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		keys := make([]uint64, manyKeys)
		v := new(int)
		for i := range keys {
			var k [8]byte
			rand.Read(k[:])
			keys[i] = binary.LittleEndian.Uint64(k[:])
			c.Set(keys[i], v, 1)
			if i%4096 == 0 {
				c.Wait()
			}
		}
		c.Wait()
		for pass := 0; pass < 3; pass++ { // Sets may be dropped under load: retry
			for i, k := range keys {
				if _, ok := c.Get(k); !ok {
					c.Set(k, v, 1)
				}
				if i%4096 == 0 {
					c.Wait()
				}
			}
			c.Wait()
		}
		runtime.GC()
		r := rng(0x9e3779b97f4a7c15)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if _, ok := c.Get(keys[r.next()&(manyKeys-1)]); !ok {
				b.Fatal("missing key")
			}
		}
	})
	b.Run("map_lookup", func(b *testing.B) {
		keys := make([][32]byte, manyKeys)
		m := make(map[[32]byte]*int, manyKeys)
		v := new(int)
		for i := range keys {
			rand.Read(keys[i][:])
			m[keys[i]] = v
		}
		r := rng(0x9e3779b97f4a7c15)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if m[keys[r.next()&(manyKeys-1)]] == nil {
				b.Fatal("missing key")
			}
		}
	})
}
