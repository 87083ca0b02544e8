package verify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/verify/jwt"
)

// testKeys is a fixed trust registry for tests: keys by kid.
type testKeys struct {
	mu   sync.Mutex
	keys map[string]*jwt.Key
}

func (r *testKeys) ResolveKey(alg jwt.Alg, kid string) (*jwt.Key, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if k, ok := r.keys[kid]; ok && k.Alg() == alg {
		return k, nil
	}
	return nil, fmt.Errorf("%w: no key", jwt.ErrUntrustedKey)
}

// jwtFixture is a verifier with one ES256 and one HS256 trusted key.
type jwtFixture struct {
	*fixture
	ec      *ecdsa.PrivateKey
	secret  []byte
	esKey   *jwt.Key
	hsKey   *jwt.Key
	profile *jwt.Profile
}

func newJWTFixture(t testing.TB) *jwtFixture {
	t.Helper()
	f := newFixture(t)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	p := &jwt.Profile{Source: "gateway", Issuer: "https://issuer.example", Audience: []string{"verifyd"}, Leeway: time.Minute}
	es, err := jwt.NewES256Key("es-1", &ec.PublicKey, p)
	if err != nil {
		t.Fatal(err)
	}
	hs, err := jwt.NewHS256Key("hs-1", secret, p)
	if err != nil {
		t.Fatal(err)
	}
	jv, err := jwt.NewVerifier(&testKeys{keys: map[string]*jwt.Key{"es-1": es, "hs-1": hs}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.v, err = New(f.store, f.v.minter, &Options{Now: f.clock.Now, JWT: jv})
	if err != nil {
		t.Fatal(err)
	}
	return &jwtFixture{fixture: f, ec: ec, secret: secret, esKey: es, hsKey: hs, profile: p}
}

// claims returns valid claims for subject at the fixture's clock.
func (f *jwtFixture) claims(subject string) map[string]any {
	now := f.clock.Now().Unix()
	return map[string]any{
		"iss": "https://issuer.example", "aud": "verifyd", "sub": subject,
		"iat": now, "exp": now + 600, "jti": "jti-" + subject,
		"roles": []string{"publisher"}, "realm": "emea", "scope": "tool:data:* mailbox:" + subject + ":*",
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// sign returns a compact JWS of claims under alg ("ES256" or "HS256").
func (f *jwtFixture) sign(t testing.TB, alg string, claims map[string]any) string {
	t.Helper()
	kid := map[string]string{"ES256": "es-1", "HS256": "hs-1"}[alg]
	h, _ := json.Marshal(map[string]string{"alg": alg, "kid": kid, "typ": "JWT"})
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	input := b64(h) + "." + b64(c)
	var sig []byte
	if alg == "HS256" {
		m := hmac.New(sha256.New, f.secret)
		m.Write([]byte(input))
		sig = m.Sum(nil)
	} else {
		d := sha256.Sum256([]byte(input))
		r, s, err := ecdsa.Sign(rand.Reader, f.ec, d[:])
		if err != nil {
			t.Fatal(err)
		}
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	}
	return input + "." + b64(sig)
}

func TestVerifyJWT(t *testing.T) {
	f := newJWTFixture(t)
	for _, alg := range []string{"ES256", "HS256"} {
		t.Run(alg, func(t *testing.T) {
			tok := f.sign(t, alg, f.claims("Alice@Example.com"))
			for _, pass := range []string{"cold", "cached"} {
				r := f.v.Verify(tok, "mailbox:Alice@Example.com:inbox")
				if r.Reason != OK {
					t.Fatalf("%s: %v, want ok", pass, r.Reason)
				}
				p := r.Principal
				if p.Kind != "jwt" || p.Source != "gateway" || p.Subject != "alice@example.com" || p.KeyID != "jti-Alice@Example.com" || p.Realm != "emea" {
					t.Errorf("%s: principal %+v", pass, p)
				}
				if len(p.Roles) != 1 || p.Roles[0] != "publisher" || len(p.Scopes) != 2 {
					t.Errorf("%s: roles %v scopes %v", pass, p.Roles, p.Scopes)
				}
				if r.Grant() != "mailbox:Alice@Example.com:*" {
					// the scope claim keeps the issuer's spelling; only the subject is lower-cased
					t.Errorf("%s: grant %q", pass, r.Grant())
				}
				if want := f.clock.Now().Add(10 * time.Minute); !r.ExpiresAt.Equal(want.Truncate(time.Second)) {
					t.Errorf("%s: ExpiresAt %v, want %v", pass, r.ExpiresAt, want)
				}
				if r.CacheTTL != 5*time.Second {
					t.Errorf("%s: CacheTTL %v", pass, r.CacheTTL)
				}
			}
			if r := f.v.Verify(tok, "tool:data:read"); r.Reason != OK || r.Grant() != "tool:data:*" {
				t.Errorf("tool:data:read: %v grant %q", r.Reason, r.Grant())
			}
			if r := f.v.Verify(tok, "tool:admin:read"); r.Reason != Forbidden || r.Principal == nil {
				t.Errorf("tool:admin:read: %v, want forbidden with a principal", r.Reason)
			}
		})
	}
}

func TestVerifyJWTRefusals(t *testing.T) {
	f := newJWTFixture(t)
	now := f.clock.Now().Unix()
	with := func(k string, v any) map[string]any {
		c := f.claims("bob")
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	good := f.sign(t, "ES256", f.claims("bob"))
	tampered := good[:len(good)-2] + map[bool]string{true: "AA", false: "AB"}[good[len(good)-2:] != "AA"]
	cases := []struct {
		name  string
		token string
		want  Reason
	}{
		{"bad signature", tampered, BadSignature},
		{"expired", f.sign(t, "HS256", with("exp", now-61)), Expired},
		{"expired within leeway is valid", f.sign(t, "HS256", with("exp", now-59)), OK},
		{"not yet valid", f.sign(t, "HS256", with("nbf", now+61)), NotYetValid},
		{"issued in the future", f.sign(t, "HS256", with("iat", now+3660)), NotYetValid},
		{"wrong issuer", f.sign(t, "HS256", with("iss", "https://issuer.example/")), InvalidClaims},
		{"wrong audience", f.sign(t, "HS256", with("aud", "other")), InvalidClaims},
		{"no exp", f.sign(t, "HS256", with("exp", nil)), InvalidClaims},
		{"numeric sub", f.sign(t, "HS256", with("sub", 42)), InvalidClaims},
		{"payload not JSON, bad signature", b64([]byte(`{"alg":"HS256","kid":"hs-1"}`)) + ".not-json." + b64(make([]byte, 32)), BadSignature},
		{"no kid, no single key", "eyJhbGciOiJIUzI1NiJ9.e30." + b64(make([]byte, 32)), UntrustedKey},
		{"five segments", "eyJhbGciOiJIUzI1NiJ9.a.b.c.d", Malformed},
		{"dots", "ey" + string(make([]byte, 0)) + "........", Malformed},
	}
	unknownKid := func() string {
		h := b64([]byte(`{"alg":"HS256","kid":"hs-9"}`))
		c, _ := json.Marshal(f.claims("bob"))
		return h + "." + b64(c) + "." + b64(make([]byte, 32))
	}()
	cases = append(cases, struct {
		name  string
		token string
		want  Reason
	}{"unknown kid", unknownKid, UntrustedKey})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if r := f.v.Verify(tc.token, ""); r.Reason != tc.want {
				t.Errorf("got %v, want %v", r.Reason, tc.want)
			} else if tc.want != OK && r.Principal != nil {
				t.Errorf("a refusal carries a principal")
			}
		})
	}
}

func TestVerifyJWTWithoutTrust(t *testing.T) {
	f := newFixture(t)
	tok := "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl"
	if r := f.v.Verify(tok, ""); r.Reason != UntrustedKey {
		t.Errorf("got %v, want untrusted_key when no trust source is configured", r.Reason)
	}
}

// TestJWTCachePerUseChecks: a cached token is judged at each use against
// its own exp and nbf and its key, never served past them.
func TestJWTCachePerUseChecks(t *testing.T) {
	t.Run("exp", func(t *testing.T) {
		f := newJWTFixture(t)
		tok := f.sign(t, "ES256", f.claims("carol"))
		if r := f.v.Verify(tok, ""); r.Reason != OK {
			t.Fatal(r.Reason)
		}
		f.clock.Advance(10*time.Minute + 59*time.Second) // past exp, within the leeway
		if r := f.v.Verify(tok, ""); r.Reason != OK || r.CacheTTL != 0 {
			t.Errorf("within the leeway: %v ttl %v, want ok with no cache ttl", r.Reason, r.CacheTTL)
		}
		f.clock.Advance(time.Second)
		if r := f.v.Verify(tok, ""); r.Reason != Expired {
			t.Errorf("at exp+leeway: %v, want expired", r.Reason)
		}
	})
	t.Run("clock_back_before_nbf", func(t *testing.T) {
		f := newJWTFixture(t)
		c := f.claims("dave")
		c["nbf"] = f.clock.Now().Unix()
		tok := f.sign(t, "HS256", c)
		if r := f.v.Verify(tok, ""); r.Reason != OK {
			t.Fatal(r.Reason)
		}
		f.clock.Advance(-time.Hour)
		if r := f.v.Verify(tok, ""); r.Reason != NotYetValid {
			t.Errorf("clock an hour back: %v, want not_yet_valid", r.Reason)
		}
	})
	t.Run("retired_key", func(t *testing.T) {
		f := newJWTFixture(t)
		tok := f.sign(t, "ES256", f.claims("erin"))
		if r := f.v.Verify(tok, ""); r.Reason != OK {
			t.Fatal(r.Reason)
		}
		f.esKey.Retire()
		if r := f.v.Verify(tok, ""); r.Reason != UntrustedKey {
			t.Errorf("after the key was retired: %v, want untrusted_key", r.Reason)
		}
	})
}

func TestJWTRevocation(t *testing.T) {
	ctx := context.Background()
	f := newJWTFixture(t)
	a := f.sign(t, "ES256", f.claims("frank"))
	b := f.sign(t, "HS256", f.claims("grace"))
	for _, tok := range []string{a, b} {
		if r := f.v.Verify(tok, ""); r.Reason != OK {
			t.Fatal(r.Reason)
		}
	}
	if _, err := f.store.RevokeToken(ctx, keystore.TokenRevocation{TokenID: "jti-frank"}); err != nil {
		t.Fatal(err)
	}
	if r := f.v.Verify(a, ""); r.Reason != Revoked {
		t.Errorf("cached token revoked by jti: %v", r.Reason)
	}
	if r := f.v.Verify(b, ""); r.Reason != OK {
		t.Errorf("another token after a jti revocation: %v", r.Reason)
	}
	iat := f.clock.Now()
	if _, err := f.store.RevokeSubject(ctx, keystore.SubjectRevocation{Subject: "grace", NotBefore: iat.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	if r := f.v.Verify(b, ""); r.Reason != Revoked {
		t.Errorf("cached token of a subject revoked after its iat: %v", r.Reason)
	}
	f.clock.Advance(2 * time.Second)
	if r := f.v.Verify(f.sign(t, "HS256", f.claims("grace")), ""); r.Reason != OK {
		t.Errorf("a token issued after the subject's not-before: %v", r.Reason)
	}
}

// TestJWTRevocationRace: once a revocation returns, no verification that
// starts later answers OK, whether it is served from the cache or not.
func TestJWTRevocationRace(t *testing.T) {
	ctx := context.Background()
	f := newJWTFixture(t)
	const tokens = 8
	toks := make([]string, tokens)
	for i := range toks {
		toks[i] = f.sign(t, "HS256", f.claims(fmt.Sprintf("user-%d", i)))
	}
	var revoked [tokens]atomic.Bool
	var stop atomic.Bool
	var wg sync.WaitGroup
	var failures atomic.Int64
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 200000 && !stop.Load(); n++ {
				i := n % tokens
				was := revoked[i].Load()
				if r := f.v.Verify(toks[i], ""); was && r.Reason == OK {
					failures.Add(1)
				}
			}
		}()
	}
	for i := range toks {
		time.Sleep(time.Millisecond)
		if _, err := f.store.RevokeToken(ctx, keystore.TokenRevocation{TokenID: fmt.Sprintf("jti-user-%d", i)}); err != nil {
			t.Fatal(err)
		}
		revoked[i].Store(true)
	}
	stop.Store(true)
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d verifications that started after a revocation returned ok", n)
	}
	for i, tok := range toks {
		if r := f.v.Verify(tok, ""); r.Reason != Revoked {
			t.Errorf("token %d: %v, want revoked", i, r.Reason)
		}
	}
}

func TestJWTReasonMapping(t *testing.T) {
	for err, want := range map[error]Reason{
		jwt.ErrMalformed: Malformed, jwt.ErrUntrustedKey: UntrustedKey, jwt.ErrBadSignature: BadSignature,
		jwt.ErrExpired: Expired, jwt.ErrNotYetValid: NotYetValid, jwt.ErrInvalidClaims: InvalidClaims,
		errors.New("other"): Malformed,
	} {
		if got := jwtReason(fmt.Errorf("%w: detail", err)); got != want {
			t.Errorf("%v -> %v, want %v", err, got, want)
		}
	}
}

// TestJWTCacheBounded: the cache never holds more than its capacity, and a
// full shard evicts, among its sample, the entry that expires first.
func TestJWTCacheBounded(t *testing.T) {
	c := newJWTCache(jwtShards * 4) // 4 per shard
	base := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	var last *jwtEntry
	for i := range 10000 {
		e := &jwtEntry{digest: keystore.Sum(fmt.Sprint("token-", i)), until: base.Add(time.Duration(i) * time.Second)}
		c.set(e)
		if c.get(&e.digest) != e {
			t.Fatalf("entry %d not found right after set", i)
		}
		last = e
	}
	total := 0
	for i := range c.shards {
		n := len(c.shards[i].m)
		if n > 4 {
			t.Errorf("shard %d holds %d entries, capacity 4", i, n)
		}
		total += n
	}
	if total < jwtShards*4/2 {
		t.Errorf("only %d entries kept of a capacity of %d", total, jwtShards*4)
	}
	c.del(last)
	if c.get(&last.digest) != nil {
		t.Error("deleted entry still found")
	}
	// The oldest entries (expiring first) were the ones evicted.
	for i := range 100 {
		if d := keystore.Sum(fmt.Sprint("token-", i)); c.get(&d) != nil {
			t.Errorf("entry %d, among the first to expire, survived 10000 inserts into 256 slots", i)
		}
	}
	if newJWTCache(-1).get(&last.digest) != nil {
		t.Error("a disabled cache returned an entry")
	}
}

// TestGrantMemoKeys: the memo of compiled scope sets never confuses two
// lists, whatever their elements contain.
func TestGrantMemoKeys(t *testing.T) {
	var g grantMemo
	for _, c := range []struct {
		scopes []string
		allow  string
		deny   string
	}{
		{[]string{"a", "b"}, "b", "a b"},
		{[]string{"a b"}, "", "b"}, // not a valid pattern: grants nothing
		{[]string{"ab"}, "ab", "b"},
		{[]string{"a", "b"}, "a", "ab"},
		{nil, "", "a"},
	} {
		m := g.compile(c.scopes)
		if _, ok := m.Match(c.deny); ok {
			t.Errorf("%q grants %q", c.scopes, c.deny)
		}
		if c.allow != "" {
			if _, ok := m.Match(c.allow); !ok {
				t.Errorf("%q does not grant %q", c.scopes, c.allow)
			}
		}
	}
}
