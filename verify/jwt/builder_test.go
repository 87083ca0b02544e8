package jwt

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// This file builds tokens from raw parts, so that tests can construct every
// attack: the header and payload are signed exactly as given (never
// re-serialized), with ES256 (R‖S or any other encoding), HS256 (any key
// bytes) or an arbitrary signature.

// now is the fixed clock of every test.
var now = time.Date(2026, time.March, 2, 10, 0, 0, 0, time.UTC)

const (
	testIssuer   = "https://issuer.example"
	testAudience = "verifyd"
	testLeeway   = 60 * time.Second
)

// testProfile is the profile of the test keys: issuer, audience and a 60 s
// leeway; exp is required.
func testProfile() *Profile {
	return &Profile{Source: "test", Issuer: testIssuer, Audience: []string{testAudience}, Leeway: testLeeway}
}

// at returns the NumericDate of now+d.
func at(d time.Duration) int64 { return now.Add(d).Unix() }

// fixedECKey returns the P-256 private key whose scalar is SHA-256(label):
// deterministic, so tokens and fuzz seeds are reproducible.
func fixedECKey(label string) *ecdsa.PrivateKey {
	d := sha256.Sum256([]byte(label))
	priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d[:])
	if err != nil {
		panic(err)
	}
	return priv
}

var (
	es1Priv   = fixedECKey("verifyd jwt test key es-1")
	es2Priv   = fixedECKey("verifyd jwt test key es-2")
	hs1Secret = []byte("verifyd jwt test secret hs-1, 32+ bytes")
	hs2Secret = []byte("verifyd jwt test secret hs-2, 32+ bytes")
)

// Headers of the test keys, exactly as signed.
const (
	hdrES1 = `{"alg":"ES256","kid":"es-1","typ":"JWT"}`
	hdrES2 = `{"alg":"ES256","kid":"es-2","typ":"JWT"}`
	hdrHS1 = `{"alg":"HS256","kid":"hs-1","typ":"JWT"}`
)

// seg encodes s as one canonical, unpadded base64url segment.
func seg(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// unseg decodes a canonical segment.
func unseg(t testing.TB, s string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		t.Fatalf("unseg: %v", err)
	}
	return string(b)
}

// signingInput is the JWS signing input of header and payload bytes.
func signingInput(header, payload string) string { return seg(header) + "." + seg(payload) }

// es256RS signs input with priv deterministically (RFC 6979) and returns r
// and s.
func es256RS(priv *ecdsa.PrivateKey, input string) (r, s *big.Int) {
	digest := sha256.Sum256([]byte(input))
	der, err := priv.Sign(nil, digest[:], crypto.SHA256)
	if err != nil {
		panic(err)
	}
	var sig struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(der, &sig); err != nil || len(rest) != 0 {
		panic(fmt.Sprintf("es256RS: bad DER: %v", err))
	}
	return sig.R, sig.S
}

// rawRS is the JWS encoding of an ES256 signature: R‖S, 32 bytes each.
func rawRS(r, s *big.Int) []byte {
	out := make([]byte, 64)
	r.FillBytes(out[:32])
	s.FillBytes(out[32:])
	return out
}

// derRS is the ASN.1 DER encoding of (r, s), which JWS does not allow.
func derRS(r, s *big.Int) []byte {
	b, err := asn1.Marshal(struct{ R, S *big.Int }{r, s})
	if err != nil {
		panic(err)
	}
	return b
}

// signES256 returns header.payload signed by priv, R‖S encoded.
func signES256(priv *ecdsa.PrivateKey, header, payload string) string {
	return signES256Enc(priv, header, payload, rawRS)
}

// signES256Enc returns header.payload with priv's signature encoded by enc.
func signES256Enc(priv *ecdsa.PrivateKey, header, payload string, enc func(r, s *big.Int) []byte) string {
	in := signingInput(header, payload)
	r, s := es256RS(priv, in)
	return in + "." + base64.RawURLEncoding.EncodeToString(enc(r, s))
}

// hs256Tag is HMAC-SHA256 of input under key (any key bytes, even empty).
func hs256Tag(key []byte, input string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(input))
	return m.Sum(nil)
}

// signHS256 returns header.payload MACed with key.
func signHS256(key []byte, header, payload string) string {
	in := signingInput(header, payload)
	return in + "." + base64.RawURLEncoding.EncodeToString(hs256Tag(key, in))
}

// withSig returns header.payload with an arbitrary signature.
func withSig(header, payload string, sig []byte) string {
	return signingInput(header, payload) + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// parts splits a compact token of three segments.
func parts(t testing.TB, tok string) (h, p, s string) {
	t.Helper()
	f := strings.Split(tok, ".")
	if len(f) != 3 {
		t.Fatalf("parts: %d segments", len(f))
	}
	return f[0], f[1], f[2]
}

// rawJSON is inserted into a payload verbatim.
type rawJSON string

// omitted, as a payload value, removes the claim.
type omitted struct{}

var omit = omitted{}

// payload returns a valid claims set for the test profile, changed by
// overrides: name/value pairs that replace a claim in place, add it at the
// end, or (with omit) remove it. Values are marshalled with encoding/json,
// except rawJSON, written verbatim. Members keep their order.
func payload(overrides ...any) string {
	names := []string{"iss", "aud", "sub", "iat", "exp", "jti"}
	vals := map[string]any{
		"iss": testIssuer,
		"aud": testAudience,
		"sub": "alice",
		"iat": at(-time.Minute),
		"exp": at(time.Hour),
		"jti": "tok-1",
	}
	if len(overrides)%2 != 0 {
		panic("payload: odd overrides")
	}
	for i := 0; i < len(overrides); i += 2 {
		n := overrides[i].(string)
		if _, ok := vals[n]; !ok {
			names = append(names, n)
		}
		vals[n] = overrides[i+1]
	}
	var b strings.Builder
	b.WriteByte('{')
	first := true
	for _, n := range names {
		v := vals[n]
		if _, ok := v.(omitted); ok {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		name, _ := json.Marshal(n)
		b.Write(name)
		b.WriteByte(':')
		if r, ok := v.(rawJSON); ok {
			b.WriteString(string(r))
			continue
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			panic(err)
		}
		b.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	}
	b.WriteByte('}')
	return b.String()
}

// staticResolver is a fixed trust registry: keys by kid, and for kid "" the
// only key of the token's algorithm. Its errors wrap ErrUntrustedKey and
// never quote the kid. It counts its calls.
type staticResolver struct {
	keys map[string]*Key
	// lax returns the key of the kid whatever its algorithm, breaking the
	// Resolver contract on purpose, to test Verify's own check.
	lax   bool
	calls atomic.Int64
}

var _ Resolver = (*staticResolver)(nil)

func newResolver(keys ...*Key) *staticResolver {
	r := &staticResolver{keys: make(map[string]*Key)}
	for _, k := range keys {
		if _, dup := r.keys[k.ID()]; dup {
			panic("newResolver: duplicate kid")
		}
		r.keys[k.ID()] = k
	}
	return r
}

func (r *staticResolver) ResolveKey(alg Alg, kid string) (*Key, error) {
	r.calls.Add(1)
	if kid == "" {
		var found *Key
		n := 0
		for _, k := range r.keys {
			if k.Alg() == alg {
				found = k
				n++
			}
		}
		if n != 1 {
			return nil, fmt.Errorf("%w: no kid and %d %s keys", ErrUntrustedKey, n, alg)
		}
		return found, nil
	}
	k, ok := r.keys[kid]
	if !ok {
		return nil, fmt.Errorf("%w: unknown kid", ErrUntrustedKey)
	}
	if k.Alg() != alg && !r.lax {
		return nil, fmt.Errorf("%w: the key is not a %s key", ErrUntrustedKey, alg)
	}
	return k, nil
}

func mustES256Key(t testing.TB, kid string, priv *ecdsa.PrivateKey, p *Profile) *Key {
	t.Helper()
	k, err := NewES256Key(kid, &priv.PublicKey, p)
	if err != nil {
		t.Fatalf("NewES256Key: %v", err)
	}
	return k
}

func mustHS256Key(t testing.TB, kid string, secret []byte, p *Profile) *Key {
	t.Helper()
	k, err := NewHS256Key(kid, secret, p)
	if err != nil {
		t.Fatalf("NewHS256Key: %v", err)
	}
	return k
}

func mustVerifier(t testing.TB, r Resolver, opts *Options) *Verifier {
	t.Helper()
	v, err := NewVerifier(r, opts)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

// fixture is a verifier trusting one ES256 key (es-1) and one HS256 key
// (hs-1) under the test profile, so a token without kid finds the only key
// of its algorithm.
type fixture struct {
	profile *Profile
	es1     *Key
	hs1     *Key
	res     *staticResolver
	v       *Verifier
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	p := testProfile()
	f := &fixture{profile: p, es1: mustES256Key(t, "es-1", es1Priv, p), hs1: mustHS256Key(t, "hs-1", hs1Secret, p)}
	f.res = newResolver(f.es1, f.hs1)
	f.v = mustVerifier(t, f.res, nil)
	return f
}

// errClasses are the sentinels of which every Verify error wraps exactly one.
var errClasses = []error{ErrMalformed, ErrUntrustedKey, ErrBadSignature, ErrExpired, ErrNotYetValid, ErrInvalidClaims}

// classOf returns the one sentinel err wraps, or an error describing why
// there is not exactly one.
func classOf(err error) (error, error) {
	var found []error
	for _, c := range errClasses {
		if errors.Is(err, c) {
			found = append(found, c)
		}
	}
	if len(found) != 1 {
		return nil, fmt.Errorf("error %q wraps %d error classes, want exactly one", err, len(found))
	}
	return found[0], nil
}

// checkErr asserts that err is nil when want is nil, and otherwise wraps
// want and no other class.
func checkErr(t testing.TB, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("refused: %v; want accepted", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("accepted; want an error wrapping %q", want)
	}
	got, cerr := classOf(err)
	if cerr != nil {
		t.Fatal(cerr)
	}
	if got != want {
		t.Fatalf("error %q is of class %q; want %q", err, got, want)
	}
}

// padToLength searches for a token of exactly n bytes among build(header,
// pad) for the given headers and pads up to n.
func padToLength(t testing.TB, n int, headers []string, build func(header string, pad int) string) string {
	t.Helper()
	for _, h := range headers {
		for pad := 0; pad <= n; pad++ {
			tok := build(h, pad)
			if len(tok) == n {
				return tok
			}
			if len(tok) > n {
				break
			}
		}
	}
	t.Fatalf("padToLength: no token of %d bytes", n)
	return ""
}
