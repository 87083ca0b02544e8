package bench

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/verify"
	"github.com/verifyd/verifyd/verify/credential"
	"github.com/verifyd/verifyd/verify/jwt"
	"github.com/verifyd/verifyd/verify/trust"
)

// jwtEnv is a verifier over a real trust registry (an ES256 key from a JWKS
// file, an HS256 secret from the environment) and signing keys for tokens.
type jwtEnv struct {
	v      *verify.Verifier
	ec     *ecdsa.PrivateKey
	secret []byte
}

var b64 = base64.RawURLEncoding

// coldTokens is the number of distinct tokens a cold benchmark cycles
// through: far more than its cache holds.
const coldTokens = 1 << 12

// newJWTEnv builds the environment; cacheEntries is the verifier's
// JWTCacheEntries (negative: no cache, every verification is cold).
func newJWTEnv(b *testing.B, cacheEntries int64) *jwtEnv {
	b.Helper()
	quiet := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	store, err := keystore.Open(b.TempDir(), &keystore.Options{Logger: quiet, Registerer: reg})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	point, _ := ec.PublicKey.Bytes()
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "EC", "crv": "P-256", "kid": "es-1", "use": "sig", "alg": "ES256",
		"x": b64.EncodeToString(point[1:33]), "y": b64.EncodeToString(point[33:]),
	}}})
	file := filepath.Join(b.TempDir(), "jwks.json")
	if err := os.WriteFile(file, jwks, 0o600); err != nil {
		b.Fatal(err)
	}
	registry, err := trust.New(trust.Config{Sources: []trust.Source{
		{Name: "gateway", JWKSFile: file, Issuer: "https://issuer.example", Audience: []string{"verifyd"}},
		{Name: "proxy", HS256: []trust.Secret{{Kid: "hs-1", SecretEnv: "HS_SECRET"}}, Issuer: "https://issuer.example", Audience: []string{"verifyd"}},
	}}, &trust.Options{
		Logger:     quiet,
		Registerer: reg,
		Getenv: func(name string) string {
			if name == "HS_SECRET" {
				return b64.EncodeToString(secret)
			}
			return ""
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { registry.Close() })
	front, err := jwt.NewVerifier(registry, nil)
	if err != nil {
		b.Fatal(err)
	}
	ck, _ := credential.NewChecksumKey()
	minter, _ := credential.NewMinter(ck)
	v, err := verify.New(store, minter, &verify.Options{Logger: quiet, Registerer: reg, JWT: front, JWTCacheEntries: cacheEntries})
	if err != nil {
		b.Fatal(err)
	}
	return &jwtEnv{v: v, ec: ec, secret: secret}
}

// claims returns a realistic claims set of about 300 bytes for subject i.
func benchClaims(i int) []byte {
	now := time.Now().Unix()
	c, _ := json.Marshal(map[string]any{
		"iss": "https://issuer.example", "aud": []string{"verifyd", "broker"},
		"sub": fmt.Sprintf("user-%06d", i), "jti": fmt.Sprintf("6f1c2a4e-%08x", i),
		"iat": now, "nbf": now, "exp": now + 3600,
		"scope": "tool:data:* mailbox:user:* projects/p1/topics/orders:publish",
		"roles": []string{"publisher", "reader"}, "realm": "emea",
		"realm_access": map[string]any{"roles": []string{"offline_access"}},
	})
	return c
}

// sign returns a compact JWS of claims with alg "ES256" or "HS256".
func (e *jwtEnv) sign(b *testing.B, alg string, claims []byte) string {
	kid := map[string]string{"ES256": "es-1", "HS256": "hs-1"}[alg]
	h, _ := json.Marshal(map[string]string{"alg": alg, "kid": kid, "typ": "JWT"})
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(claims)
	sig := make([]byte, 64)
	if alg == "HS256" {
		m := hmac.New(sha256.New, e.secret)
		m.Write([]byte(input))
		sig = m.Sum(nil)
	} else {
		d := sha256.Sum256([]byte(input))
		r, s, err := ecdsa.Sign(rand.Reader, e.ec, d[:])
		if err != nil {
			b.Fatal(err)
		}
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	}
	return input + "." + b64.EncodeToString(sig)
}

// benchJWT holds BenchmarkVerify's JWT cases. jwt_<alg>/cold cycles
// through more distinct tokens than its 16-entry cache holds, so that
// practically every iteration misses the cache, parses, verifies the
// signature, checks the claims, builds the principal and offers it to the
// cache, as a token seen for the first time does. cache_hit verifies a hot
// set of cached tokens, comparable with opaque/cache_hit_hot.
func benchJWT(b *testing.B) {
	for _, alg := range []string{"ES256", "HS256"} {
		name := map[string]string{"ES256": "jwt_es256", "HS256": "jwt_hs256"}[alg]
		b.Run(name+"/cold", func(b *testing.B) {
			e := newJWTEnv(b, 16)
			toks := make([]string, coldTokens)
			for i := range toks {
				toks[i] = e.sign(b, alg, benchClaims(i))
			}
			benchVerify(b, e.v, toks, "tool:data:read", verify.OK)
		})
		if alg == "ES256" {
			b.Run(name+"/cold_parallel", func(b *testing.B) { benchJWTColdParallel(b, alg) })
		}
		b.Run(name+"/cache_hit", func(b *testing.B) {
			e := newJWTEnv(b, 0)
			toks := make([]string, hotKeys)
			for i := range toks {
				toks[i] = e.sign(b, alg, benchClaims(i))
			}
			for pass := 0; pass < 3; pass++ {
				for _, t := range toks {
					e.v.Verify(t, "tool:data:read")
				}
			}
			benchVerify(b, e.v, toks, "tool:data:read", verify.OK)
		})
	}
}

// benchJWTColdParallel is jwt_<alg>/cold on every core: GOMAXPROCS
// goroutines (b.RunParallel) verify tokens taken in turn from the same
// cycle of coldTokens distinct tokens, against a 16-entry cache. ns/op is
// wall time per verification, so its inverse is the throughput of all
// cores together.
func benchJWTColdParallel(b *testing.B, alg string) {
	e := newJWTEnv(b, 16)
	toks := make([]string, coldTokens)
	for i := range toks {
		toks[i] = e.sign(b, alg, benchClaims(i))
	}
	var next atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			t := toks[next.Add(1)&(coldTokens-1)]
			if res := e.v.Verify(t, "tool:data:read"); res.Reason != verify.OK {
				b.Errorf("got %v, want %v", res.Reason, verify.OK)
				return
			}
		}
	})
}

// signingInput is a typical HS256 signing input (header.claims) for the
// HMAC floor.
func signingInput() []byte {
	h, _ := json.Marshal(map[string]string{"alg": "HS256", "kid": "hs-1", "typ": "JWT"})
	return []byte(b64.EncodeToString(h) + "." + b64.EncodeToString(benchClaims(0)))
}

// floorJWT holds BenchmarkFloor's JWT floors: a raw P-256 verification
// with a pre-parsed key and pre-decoded r and s, and an HMAC with a reused
// state over a typical signing input.
func floorJWT(b *testing.B) {
	b.Run("ecdsa_p256_verify", func(b *testing.B) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		d := sha256.Sum256(signingInput())
		r, s, _ := ecdsa.Sign(rand.Reader, k, d[:])
		pub := &k.PublicKey
		b.ReportAllocs()
		for b.Loop() {
			if !ecdsa.Verify(pub, d[:], r, s) {
				b.Fatal("no")
			}
		}
	})
	b.Run("ecdsa_p256_verify_parallel", func(b *testing.B) {
		// The same on every core (b.RunParallel, GOMAXPROCS goroutines):
		// ns/op is wall time per verification.
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		d := sha256.Sum256(signingInput())
		r, s, _ := ecdsa.Sign(rand.Reader, k, d[:])
		pub := &k.PublicKey
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if !ecdsa.Verify(pub, d[:], r, s) {
					b.Error("no")
					return
				}
			}
		})
	})
	b.Run("hmac_sha256_reuse", func(b *testing.B) {
		secret := make([]byte, 32)
		rand.Read(secret)
		input := signingInput()
		var h hash.Hash = hmac.New(sha256.New, secret)
		var sum [32]byte
		b.ReportAllocs()
		for b.Loop() {
			h.Reset()
			h.Write(input)
			h.Sum(sum[:0])
		}
	})
}
