package fuzz

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
	"io"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/verifyd/verifyd/verify/jwt"
)

// The fixed clock, keys and profile of the JWT fuzz targets.
var (
	jwtNow    = time.Date(2026, time.March, 2, 10, 0, 0, 0, time.UTC)
	jwtSecret = []byte("verifyd fuzz jwt secret hs-1, 32+ bytes")
	jwtEC     = jwtFixedECKey("verifyd fuzz jwt key es-1")
)

const (
	jwtIssuer   = "https://issuer.example"
	jwtAudience = "verifyd"
	jwtLeeway   = 60 * time.Second
)

// jwtFixedECKey returns the P-256 key whose scalar is SHA-256(label).
func jwtFixedECKey(label string) *ecdsa.PrivateKey {
	d := sha256.Sum256([]byte(label))
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d[:])
	if err != nil {
		panic(err)
	}
	return k
}

// jwtResolver is a static registry: keys by kid, and for kid "" the only
// key of the algorithm.
type jwtResolver map[string]*jwt.Key

func (r jwtResolver) ResolveKey(alg jwt.Alg, kid string) (*jwt.Key, error) {
	if kid == "" {
		var found *jwt.Key
		for _, k := range r {
			if k.Alg() == alg {
				if found != nil {
					return nil, fmt.Errorf("%w: several keys", jwt.ErrUntrustedKey)
				}
				found = k
			}
		}
		if found == nil {
			return nil, fmt.Errorf("%w: no key", jwt.ErrUntrustedKey)
		}
		return found, nil
	}
	if k, ok := r[kid]; ok && k.Alg() == alg {
		return k, nil
	}
	return nil, fmt.Errorf("%w: no key", jwt.ErrUntrustedKey)
}

// jwtVerifier trusts es-1 (jwtEC) and hs-1 (jwtSecret) under a profile
// with issuer, audience, a 60 s leeway and exp required.
var jwtVerifier = sync.OnceValue(func() *jwt.Verifier {
	p := &jwt.Profile{Source: "fuzz", Issuer: jwtIssuer, Audience: []string{jwtAudience}, Leeway: jwtLeeway}
	es, err := jwt.NewES256Key("es-1", &jwtEC.PublicKey, p)
	if err != nil {
		panic(err)
	}
	hs, err := jwt.NewHS256Key("hs-1", jwtSecret, p)
	if err != nil {
		panic(err)
	}
	v, err := jwt.NewVerifier(jwtResolver{"es-1": es, "hs-1": hs}, nil)
	if err != nil {
		panic(err)
	}
	return v
})

func jwtSeg(b string) string { return base64.RawURLEncoding.EncodeToString([]byte(b)) }

func jwtSignHS256(header, payload string) string {
	in := jwtSeg(header) + "." + jwtSeg(payload)
	m := hmac.New(sha256.New, jwtSecret)
	m.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// jwtSignES256 signs deterministically (RFC 6979) and encodes the
// signature with enc.
func jwtSignES256(header, payload string, enc func(r, s *big.Int) []byte) string {
	in := jwtSeg(header) + "." + jwtSeg(payload)
	d := sha256.Sum256([]byte(in))
	der, err := jwtEC.Sign(nil, d[:], crypto.SHA256)
	if err != nil {
		panic(err)
	}
	var sig struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &sig); err != nil {
		panic(err)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(enc(sig.R, sig.S))
}

func jwtRS(r, s *big.Int) []byte {
	b := make([]byte, 64)
	r.FillBytes(b[:32])
	s.FillBytes(b[32:])
	return b
}

func jwtHighS(r, s *big.Int) []byte {
	return jwtRS(r, new(big.Int).Sub(elliptic.P256().Params().N, s))
}

func jwtDER(r, s *big.Int) []byte {
	b, _ := asn1.Marshal(struct{ R, S *big.Int }{r, s})
	return b
}

// jwtClaims returns a valid claims set at jwtNow with extra members
// appended verbatim (",\"name\":value...").
func jwtClaims(extra string) string {
	return fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"alice","iat":%d,"exp":%d,"jti":"tok-1"%s}`,
		jwtIssuer, jwtAudience, jwtNow.Add(-time.Minute).Unix(), jwtNow.Add(time.Hour).Unix(), extra)
}

// jwtSeedTokens are the tokens the package's own tests build: valid ES256
// and HS256 tokens and attacks on each rule, the RFC 7515 A.1 and A.3
// tokens, and Wycheproof JWS compact tokens.
func jwtSeedTokens() []string {
	hdrES := `{"alg":"ES256","kid":"es-1","typ":"JWT"}`
	hdrHS := `{"alg":"HS256","kid":"hs-1","typ":"JWT"}`
	claims := jwtClaims(`,"roles":["admin","dev"],"scope":"tool:data:read agent:x:delegate","realm":"acme"`)
	validES := jwtSignES256(hdrES, claims, jwtRS)
	validHS := jwtSignHS256(hdrHS, claims)
	esParts := strings.Split(validES, ".")
	h, p := esParts[0], esParts[1]
	past := jwtNow.Add(-time.Hour).Unix()
	future := jwtNow.Add(time.Hour).Unix()
	return []string{
		validES,
		validHS,
		jwtSignHS256(`{"alg":"HS256"}`, jwtClaims(`,"email":"Alice@Example.COM"`)),
		jwtSignES256(`{"alg":"ES256","kid":"es-1","typ":"at+jwt"}`, jwtClaims(`,"realm_access":{"roles":["x"]},"scp":["a","b"]`), jwtRS),
		jwtSignHS256("{\"alg\":\"HS256\",\r\n \"kid\":\"hs-1\"}", jwtClaims("")),
		jwtSignES256(hdrES, claims, jwtHighS),
		jwtSignES256(hdrES, claims, jwtDER),
		// Attacks.
		fmt.Sprintf(`{"protected":%q,"payload":%q,"signature":%q}`, esParts[0], esParts[1], esParts[2]),
		strings.Repeat(".", 5000),
		validES + ".",
		validES + "==",
		" " + validHS,
		strings.NewReplacer("-", "+", "_", "/").Replace(validES),
		h + "." + p[:5] + "\n" + p[5:],
		jwtSeg(`{"alg":"none"}`) + "." + jwtSeg(claims) + ".",
		jwtSignHS256(`{"alg":"HS256","kid":"es-1"}`, claims),
		jwtSignHS256(`{"alg":"HS256","kid":"hs-1","crit":["b64"],"b64":false}`, claims),
		jwtSignES256(`{"alg":"ES256","kid":"es-1","jwk":{"kty":"EC"}}`, claims, jwtRS),
		jwtSignES256(`{"alg":"ES256","kid":"es-1","typ":"dpop+jwt"}`, claims, jwtRS),
		jwtSignES256(`{"alg":"none","alg":"ES256","kid":"es-1"}`, claims, jwtRS),
		jwtSignHS256(hdrHS, fmt.Sprintf(`{"sub":"a","aud":"verifyd","iss":%q,"exp":%d,"exp":%d}`, jwtIssuer, past, future)),
		jwtSignHS256(hdrHS, claims+`{"admin":true}`),
		jwtSignHS256(hdrHS, jwtClaims(`,"x":`+strings.Repeat("[", 20)+strings.Repeat("]", 20))),
		jwtSignHS256(hdrHS, jwtClaims(`,"nbf":1e20`)),
		jwtSignHS256(hdrHS, strings.Replace(jwtClaims(""), fmt.Sprint(future), strconv.FormatInt(past, 10), 1)),
		// RFC 7515 A.1 and A.3 (CRLF and spaces in the JSON; exp in 2011).
		"eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
		"eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q",
		// Wycheproof JWS (tc1, tc18, tc357, tc375, tc376, tc389).
		"eyJhbGciOiJIUzI1NiIsImtpZCI6ImtpZC1hZXMtc2lnbiJ9.Zm9v.TD37p4c_0jmreSrBSDmE0F3mYSPtkZ3WrSyI5wb_KTg",
		"eyJhbGciOiJFUzI1NiIsImtpZCI6ImtpZC1lYy1zaWduIn0.Zm9v.5cA0OHyMP7ezamUd5c9kV-FrGxdx4hbGXOdplQkutrqWrte5P-pAvsE3Ve6xSyU3YDQwUHjVVOtvcrEbbnZ8yA",
		"eyJraWQiOiJoczI1Ni1rZXkiLCJhbGciOiJIUzI1NiJ9.VGVzdA.c1LROH7eNQwUT8KMVEO52VC3WZ9e_AnDWbZ7aMmowV8",
		"eyJraWQiOiJoczI1Ni1rZXkiLCJhbGciOiJIUzI1NiJ9.AB.9phoKDvkBMAqTgeVIYeqAi6-lvC0pbKg9ER--3T97w0",
		"eyAia2lkIiA6ICJoczI1Ni1rZXkiLCAiYWxnIiA6ICJIUzI1NiIgfQ.VGVzdA.3nl1C7dKVGLfNyALp4ZKkmNFBJlFP8M9VGzCyil9S1c",
		"eyJhbGciOiJFUzI1NiIsImtpZCI6ImtpZC1lYy1zaWduIn0.Zm9v.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAD_____AAAAAP__________vOb6racXnoTzucrC_GMlUQ",
	}
}

// jwtCheckRefusal checks that a refusal returns nothing else and wraps
// exactly one of the package's error classes.
func jwtCheckRefusal(t *testing.T, claims jwt.Claims, key *jwt.Key, err error) {
	t.Helper()
	if key != nil || claims.Subject != "" || claims.Roles != nil || claims.Scopes != nil || !claims.ExpiresAt.IsZero() {
		t.Fatalf("refused (%v) but returned a key or claims", err)
	}
	n := 0
	for _, c := range []error{jwt.ErrMalformed, jwt.ErrUntrustedKey, jwt.ErrBadSignature, jwt.ErrExpired, jwt.ErrNotYetValid, jwt.ErrInvalidClaims} {
		if errors.Is(err, c) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("error %q wraps %d error classes, want 1", err, n)
	}
}

// jwtCheckHeader checks that an accepted token's header, read with
// encoding/json, holds only alg, kid and typ, with alg the key's.
func jwtCheckHeader(t *testing.T, header []byte, key *jwt.Key) {
	t.Helper()
	var h map[string]any
	if err := json.Unmarshal(header, &h); err != nil {
		t.Fatalf("accepted header is not a JSON object for encoding/json: %v", err)
	}
	for name := range h {
		if name != "alg" && name != "kid" && name != "typ" {
			t.Fatalf("accepted header has member %q", name)
		}
	}
	if alg, _ := h["alg"].(string); alg != key.Alg().String() {
		t.Fatalf("accepted header alg %q, key %s", h["alg"], key.Alg())
	}
	if kid, ok := h["kid"]; ok && kid != key.ID() {
		t.Fatalf("accepted header kid %q, key %q", kid, key.ID())
	}
	if typ, ok := h["typ"]; ok {
		s, _ := typ.(string)
		if !strings.EqualFold(s, "JWT") && !strings.EqualFold(s, "at+jwt") {
			t.Fatalf("accepted header typ %q", typ)
		}
	}
}

// FuzzJWTVerify checks that Verify never panics, that a refusal returns
// nothing but an error of exactly one class, and that an accepted token has
// one canonical spelling: exactly two '.', within the size cap, each
// segment strict base64url that re-encodes to the same text, and a header
// of only alg, kid and typ.
func FuzzJWTVerify(f *testing.F) {
	for _, tok := range jwtSeedTokens() {
		f.Add(tok)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		claims, key, err := jwtVerifier().Verify(tok, jwtNow)
		if err != nil {
			jwtCheckRefusal(t, claims, key, err)
			return
		}
		if key == nil || claims.Subject == "" {
			t.Fatalf("accepted without key or subject: %v %+v", key, claims)
		}
		if strings.Count(tok, ".") != 2 {
			t.Fatalf("accepted a token with %d '.'", strings.Count(tok, "."))
		}
		if len(tok) > jwt.DefaultMaxTokenBytes {
			t.Fatalf("accepted a token of %d bytes", len(tok))
		}
		segs := strings.Split(tok, ".")
		var header []byte
		for i, s := range segs {
			b, err := base64.RawURLEncoding.Strict().DecodeString(s)
			if err != nil || base64.RawURLEncoding.EncodeToString(b) != s {
				t.Fatalf("accepted segment %d is not canonical base64url: %q", i, s)
			}
			if i == 0 {
				header = b
			}
		}
		jwtCheckHeader(t, header, key)
	})
}

// FuzzJWTClaims signs arbitrary header and payload bytes with the HS256
// key, so the signature always verifies and the fuzzer explores the header
// and claims rules. An accepted token must have a payload that is valid
// UTF-8 JSON with no duplicate member names at any depth, a header of only
// alg, kid and typ, a non-empty subject, and claims that satisfy the
// profile when read independently with encoding/json: exp present with
// now < exp + leeway, nbf and iat not after now + leeway, iss equal to the
// issuer, aud naming the audience, sub and jti strings.
func FuzzJWTClaims(f *testing.F) {
	hdr := `{"alg":"HS256","kid":"hs-1"}`
	past := jwtNow.Add(-time.Hour).Unix()
	for _, s := range []struct{ h, p string }{
		{hdr, jwtClaims("")},
		{`{"alg":"HS256","typ":"JWT"}`, jwtClaims(`,"roles":["a"],"scope":"x y","realm":"r"`)},
		{"{\"typ\":\"at+jwt\",\r\n \"alg\":\"HS256\"}", jwtClaims(`,"nbf":` + fmt.Sprint(jwtNow.Add(jwtLeeway).Unix()))},
		{hdr, jwtClaims(`,"realm_access":{"roles":["x","y"]},"scp":["a","b"]`)},
		{hdr, jwtClaims(`,"exp":` + fmt.Sprint(past))},
		{hdr, jwtClaims(`,"e\u0078p":1`)},
		{hdr, strings.Replace(jwtClaims(""), `"exp":`, `"exp":0.5e1,"Exp":`, 1)},
		{hdr, fmt.Sprintf(`{"iss":%q,"aud":["x",%q],"client_id":"svc","exp":%d.999}`, jwtIssuer, jwtAudience, jwtNow.Add(-jwtLeeway).Unix())},
		{hdr, fmt.Sprintf(`{"iss":%q,"aud":%q,"email":"K\u212Aate@Example.com","exp":1e10}`, jwtIssuer, jwtAudience)},
		{hdr, fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"\ud83d\ude00","exp":253402300799,"iat":-0}`, jwtIssuer, jwtAudience)},
		{hdr, jwtClaims(`,"nested":{"a":[{"b":{"c":[1,2,{"d":null}]}}]}`)},
		{hdr, jwtClaims(`,"big":123456789012345678901234567890e-30`)},
		{`{"alg":"HS256","kid":"hs-1","kid":"hs-1"}`, jwtClaims("")},
		{`["HS256"]`, `{}`},
	} {
		f.Add([]byte(s.h), []byte(s.p))
	}
	f.Fuzz(func(t *testing.T, header, payload []byte) {
		in := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload)
		m := hmac.New(sha256.New, jwtSecret)
		m.Write([]byte(in))
		tok := in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
		claims, key, err := jwtVerifier().Verify(tok, jwtNow)
		if err != nil {
			jwtCheckRefusal(t, claims, key, err)
			return
		}
		if key == nil || key.Alg() != jwt.HS256 {
			t.Fatalf("accepted with key %v", key)
		}
		jwtCheckHeader(t, header, key)
		if !utf8.Valid(payload) || !json.Valid(payload) {
			t.Fatalf("accepted a payload that is not valid UTF-8 JSON: %q", payload)
		}
		if name, dup := jwtDuplicateMember(payload); dup {
			t.Fatalf("accepted a payload with the member %q twice: %q", name, payload)
		}
		if claims.Subject == "" {
			t.Fatal("accepted with an empty subject")
		}

		dec := json.NewDecoder(bytes.NewReader(payload))
		dec.UseNumber()
		var c map[string]any
		if err := dec.Decode(&c); err != nil {
			t.Fatalf("accepted payload is not an object for encoding/json: %v", err)
		}
		nowSec := float64(jwtNow.Unix())
		leeway := jwtLeeway.Seconds()
		date := func(name string) (float64, bool) {
			v, ok := c[name]
			if !ok {
				return 0, false
			}
			n, isNum := v.(json.Number)
			if !isNum {
				t.Fatalf("accepted %s = %v, not a number", name, v)
			}
			x, err := strconv.ParseFloat(string(n), 64)
			if err != nil {
				t.Fatalf("accepted %s = %s: %v", name, n, err)
			}
			return x, true
		}
		exp, ok := date("exp")
		if !ok {
			t.Fatal("accepted without exp")
		}
		if !(nowSec < exp+leeway) {
			t.Fatalf("accepted exp %v at now %v with leeway %v", exp, nowSec, leeway)
		}
		if claims.ExpiresAt.Unix() != int64(exp) {
			t.Fatalf("ExpiresAt %v, exp %v", claims.ExpiresAt, exp)
		}
		for _, name := range []string{"nbf", "iat"} {
			if x, ok := date(name); ok && x > nowSec+leeway+1e-6 {
				t.Fatalf("accepted %s %v at now %v with leeway %v", name, x, nowSec, leeway)
			}
		}
		if iss, _ := c["iss"].(string); iss != jwtIssuer {
			t.Fatalf("accepted iss %v", c["iss"])
		}
		switch aud := c["aud"].(type) {
		case string:
			if aud != jwtAudience {
				t.Fatalf("accepted aud %q", aud)
			}
		case []any:
			found := false
			for _, a := range aud {
				s, ok := a.(string)
				if !ok {
					t.Fatalf("accepted aud element %v", a)
				}
				found = found || s == jwtAudience
			}
			if !found {
				t.Fatalf("accepted aud %v", aud)
			}
		default:
			t.Fatalf("accepted aud %v", c["aud"])
		}
		for _, name := range []string{"sub", "jti"} {
			if v, ok := c[name]; ok {
				if _, isStr := v.(string); !isStr {
					t.Fatalf("accepted %s = %v", name, v)
				}
			}
		}
		if sub, ok := c["sub"].(string); ok && jwtASCII(sub) {
			want := sub
			if strings.Contains(sub, "@") {
				want = strings.ToLower(sub)
			}
			if claims.Subject != want {
				t.Fatalf("subject %q from sub %q", claims.Subject, sub)
			}
		}
	})
}

func jwtASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// jwtDuplicateMember reports a member name that occurs twice in one object
// of the JSON document b, reading it with encoding/json's tokenizer (names
// compared after unescaping). Invalid JSON reports nothing.
func jwtDuplicateMember(b []byte) (string, bool) {
	type frame struct {
		names   map[string]bool // nil for an array
		wantKey bool
	}
	var stack []*frame
	// valueDone records that a value ended inside the innermost container.
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].names != nil {
			stack[n-1].wantKey = true
		}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := dec.Token()
		if err == io.EOF || err != nil {
			return "", false
		}
		if n := len(stack); n > 0 && stack[n-1].wantKey {
			top := stack[n-1]
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:n-1]
				valueDone()
				continue
			}
			name, _ := tok.(string)
			if top.names[name] {
				return name, true
			}
			top.names[name] = true
			top.wantKey = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{names: map[string]bool{}, wantKey: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
}
