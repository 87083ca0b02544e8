package trust

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/verifyd/verifyd/verify/jwt"
)

// keyWithLeadingZeroX returns a key whose x coordinate begins with a zero
// byte, so that a careless encoder would write it as 31 bytes.
func keyWithLeadingZeroX(t *testing.T) *ecdsa.PrivateKey {
	for range 100000 {
		k := genKey(t)
		if p, _ := k.PublicKey.Bytes(); p[1] == 0 {
			return k
		}
	}
	t.Fatal("no key with a leading zero byte in x")
	return nil
}

func TestParseJWKS(t *testing.T) {
	key1, key2 := genKey(t), genKey(t)
	good := func(extra map[string]any) map[string]any { return ecJWK(t, "es-1", key1, extra) }
	point, _ := key1.PublicKey.Bytes()
	x, y := point[1:33], point[33:]
	flipped := append([]byte(nil), y...)
	flipped[31] ^= 1
	zx := keyWithLeadingZeroX(t)
	zpoint, _ := zx.PublicKey.Bytes()
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384point, _ := p384.PublicKey.Bytes()
	// A 43-character encoding of x whose unused low bits are not zero.
	nonCanonical := b64(x)
	last := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", nonCanonical[42])
	nonCanonical = nonCanonical[:42] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last|1])
	// A key whose x differs between the standard and the URL alphabets.
	stdKey := genKey(t)
	for p, _ := stdKey.PublicKey.Bytes(); !strings.ContainsAny(b64(p[1:33]), "-_"); p, _ = stdKey.PublicKey.Bytes() {
		stdKey = genKey(t)
	}
	stdPoint, _ := stdKey.PublicKey.Bytes()
	okp := map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
	manyRSA := make([]map[string]any, maxSetKeys+1)
	for i := range manyRSA {
		manyRSA[i] = rsaJWK(fmt.Sprint("rsa-", i))
	}

	type tc struct {
		name string
		set  []byte
		kids []string // the kids of the keys returned
		err  string   // the error, when the set is rejected
	}
	set := func(keys ...map[string]any) []byte { return jwks(t, keys...) }
	tests := []tc{
		// Accepted sets.
		{name: "one ES256 key", set: set(good(nil)), kids: []string{"es-1"}},
		{name: "alg and use absent", set: set(good(map[string]any{"alg": nil, "use": nil})), kids: []string{"es-1"}},
		{name: "key_ops with verify", set: set(good(map[string]any{"key_ops": []string{"verify"}})), kids: []string{"es-1"}},
		{name: "no kid", set: set(ecJWK(t, "", key1, nil)), kids: []string{""}},
		{name: "two keys", set: set(good(nil), ecJWK(t, "es-2", key2, nil)), kids: []string{"es-1", "es-2"}},
		{name: "leading zero byte in x, as 32 bytes", set: set(ecJWK(t, "z", zx, nil)), kids: []string{"z"}},
		{name: "RSA key skipped", set: set(rsaJWK("rsa-1"), good(nil)), kids: []string{"es-1"}},
		{name: "OKP key skipped", set: set(okp, good(nil)), kids: []string{"es-1"}},
		{name: "use enc skipped", set: set(ecJWK(t, "enc", key2, map[string]any{"use": "enc"}), good(nil)), kids: []string{"es-1"}},
		{name: "other use skipped", set: set(ecJWK(t, "other", key2, map[string]any{"use": "tls"}), good(nil)), kids: []string{"es-1"}},
		{name: "key_ops without verify skipped", set: set(ecJWK(t, "sign", key2, map[string]any{"key_ops": []string{"sign"}}), good(nil)), kids: []string{"es-1"}},
		{name: "P-384 ES384 key skipped", set: set(map[string]any{"kty": "EC", "crv": "P-384", "alg": "ES384", "kid": "p384",
			"x": b64(p384point[1:49]), "y": b64(p384point[49:])}, good(nil)), kids: []string{"es-1"}},
		{name: "P-521 key without alg skipped", set: set(map[string]any{"kty": "EC", "crv": "P-521", "kid": "p521", "x": "AA", "y": "AA"}, good(nil)), kids: []string{"es-1"}},
		{name: "ECDH-ES key skipped", set: set(ecJWK(t, "ecdh", key2, map[string]any{"alg": "ECDH-ES+A256KW", "use": nil}), good(nil)), kids: []string{"es-1"}},
		{name: "skipped keys may share a kid", set: set(rsaJWK("es-1"), good(nil)), kids: []string{"es-1"}},
		{name: "unknown members ignored", set: []byte(`{"keys":[` + string(mustJSON(t, good(map[string]any{"x5t": "abc", "ext": true}))) + `],"issuer":"x"}`), kids: []string{"es-1"}},

		// Rejected documents.
		{name: "not JSON", set: []byte(`keys`), err: "key set: not JSON"},
		{name: "empty", set: []byte(``), err: "key set: not JSON"},
		{name: "array", set: []byte(`[` + string(mustJSON(t, good(nil))) + `]`), err: "key set: not a JSON object"},
		{name: "bare key", set: mustJSON(t, good(nil)), err: `key set: no "keys" member`},
		{name: "empty object", set: []byte(`{}`), err: `key set: no "keys" member`},
		{name: "keys null", set: []byte(`{"keys":null}`), err: `"keys" is not an array`},
		{name: "keys object", set: []byte(`{"keys":{}}`), err: `"keys" is not an array`},
		{name: "no keys", set: []byte(`{"keys":[]}`), err: "key set: no usable ES256 key (0 keys, 0 not for verifyd)"},
		{name: "only keys not for verifyd", set: set(rsaJWK("rsa-1"), okp), err: "no usable ES256 key (2 keys, 2 not for verifyd)"},
		{name: "trailing data", set: append(set(good(nil)), []byte(`{"keys":[]}`)...), err: "data after the JSON object"},
		{name: "truncated", set: set(good(nil))[:50], err: "key set: not JSON"},
		{name: "invalid UTF-8", set: []byte("{\"keys\":[],\"x\":\"\xff\"}"), err: "not valid UTF-8"},
		{name: "duplicate set member", set: []byte(`{"keys":[],"keys":[` + string(mustJSON(t, good(nil))) + `]}`), err: `member "keys" appears twice`},
		{name: "too many keys", set: set(manyRSA...), err: "1001 keys, the limit is 1000"},

		// Rejected keys.
		{name: "key not an object", set: []byte(`{"keys":["es-1"]}`), err: "keys[0]: not a JSON object"},
		{name: "duplicate key member", set: []byte(`{"keys":[{"kty":"EC","crv":"P-256","kid":"a","x":"` + b64(x) + `","y":"` + b64(flipped) + `","y":"` + b64(y) + `"}]}`), err: `keys[0]: member "y" appears twice`},
		{name: "no kty", set: set(good(map[string]any{"kty": nil})), err: `keys[0]: no "kty" member`},
		{name: "kty not a string", set: set(good(map[string]any{"kty": 1})), err: `"kty" is not a string`},
		{name: "private EC key", set: set(good(nil), ecJWK(t, "es-2", key2, map[string]any{"d": b64(key2.D.FillBytes(make([]byte, 32)))})), err: `keys[1]: holds a private key ("d")`},
		{name: "private RSA key", set: set(good(nil), map[string]any{"kty": "RSA", "n": "AQAB", "e": "AQAB", "d": "AQAB"}), err: `holds a private key ("d")`},
		{name: "symmetric key", set: set(good(nil), map[string]any{"kty": "oct", "k": b64(make([]byte, 32)), "kid": "hs"}), err: `keys[1]: symmetric key (kty "oct")`},
		{name: "no crv", set: set(good(map[string]any{"crv": nil})), err: `no "crv" member`},
		{name: "P-384 labelled ES256", set: set(map[string]any{"kty": "EC", "crv": "P-384", "alg": "ES256", "kid": "p384",
			"x": b64(p384point[1:49]), "y": b64(p384point[49:])}, good(nil)), err: `keys[0]: alg ES256 on curve "P-384"`},
		{name: "HS256 on a P-256 key", set: set(good(map[string]any{"alg": "HS256"})), err: `alg "HS256" on a P-256 key`},
		{name: "ES384 on a P-256 key", set: set(good(map[string]any{"alg": "ES384"})), err: `alg "ES384" on a P-256 key`},
		{name: "alg not a string", set: set(good(map[string]any{"alg": []string{"ES256"}})), err: `"alg" is not a string`},
		{name: "use not a string", set: set(good(map[string]any{"use": 1})), err: `"use" is not a string`},
		{name: "key_ops not an array", set: set(good(map[string]any{"key_ops": "verify"})), err: `"key_ops" is not an array of strings`},
		{name: "no x", set: set(good(map[string]any{"x": nil})), err: `no "x" member`},
		{name: "y not a string", set: set(good(map[string]any{"y": 5})), err: `"y" is not a string`},
		{name: "x of 31 bytes", set: set(ecJWK(t, "z", zx, map[string]any{"x": b64(zpoint[2:33])})), err: `"x" is 31 bytes, a P-256 coordinate is 32`},
		{name: "y of 33 bytes", set: set(good(map[string]any{"y": b64(append([]byte{0}, y...))})), err: `"y" is 33 bytes`},
		{name: "x padded", set: set(good(map[string]any{"x": base64.URLEncoding.EncodeToString(x)})), err: `"x" is not unpadded canonical base64url`},
		{name: "x standard alphabet", set: set(ecJWK(t, "std", stdKey, map[string]any{"x": base64.RawStdEncoding.EncodeToString(stdPoint[1:33])})), err: `"x" is not unpadded canonical base64url`},
		{name: "x non-canonical", set: set(good(map[string]any{"x": nonCanonical})), err: `"x" is not unpadded canonical base64url`},
		{name: "x with a line break", set: set(good(map[string]any{"x": b64(x)[:20] + "\n" + b64(x)[20:]})), err: `"x" is not unpadded canonical base64url`},
		{name: "point not on the curve", set: set(good(map[string]any{"y": b64(flipped)})), err: "keys[0]: x, y is not a point of P-256"},
		{name: "point at infinity", set: set(good(map[string]any{"x": b64(make([]byte, 32)), "y": b64(make([]byte, 32))})), err: "not a point of P-256"},
		{name: "kid too long", set: set(ecJWK(t, strings.Repeat("k", 257), key1, nil)), err: "kid is 257 bytes, the limit is 256"},
		{name: "kid not a string", set: set(good(map[string]any{"kid": 1})), err: `"kid" is not a string`},
		{name: "duplicate kid", set: set(good(nil), ecJWK(t, "es-1", key2, nil)), err: `keys[1]: kid "es-1" is also the kid of keys[0]`},
		{name: "duplicate kid, same key", set: set(good(nil), good(nil)), err: `kid "es-1" is also the kid of keys[0]`},
		{name: "two keys without kid", set: set(ecJWK(t, "", key1, nil), ecJWK(t, "", key2, nil)), err: `kid "" is also the kid of keys[0]`},
		{name: "invalid key beside a good one", set: set(good(nil), ecJWK(t, "es-2", key2, map[string]any{"y": b64(flipped)})), err: "keys[1]: x, y is not a point"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			keys, err := ParseJWKS(tc.set, testProfile)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.HasPrefix(err.Error(), "trust: ") {
					t.Fatalf("ParseJWKS = %d keys, %v\nwant an error containing %q", len(keys), err, tc.err)
				}
				if keys != nil {
					t.Errorf("a rejected set returned %d keys", len(keys))
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseJWKS: %v", err)
			}
			var kids []string
			for _, k := range keys {
				kids = append(kids, k.ID())
				if k.Alg() != jwt.ES256 || k.Profile() != testProfile || k.Retired() {
					t.Errorf("key %q: alg %v, profile %p, retired %v", k.ID(), k.Alg(), k.Profile(), k.Retired())
				}
			}
			if fmt.Sprint(kids) != fmt.Sprint(tc.kids) {
				t.Errorf("kids %q, want %q", kids, tc.kids)
			}
		})
	}

	t.Run("material", func(t *testing.T) {
		keys, err := ParseJWKS(jwks(t, good(nil)), testProfile)
		if err != nil {
			t.Fatal(err)
		}
		want, err := jwt.NewES256Key("es-1", &key1.PublicKey, testProfile)
		if err != nil {
			t.Fatal(err)
		}
		if !keys[0].SameMaterial(want) {
			t.Error("the parsed key is not the published one")
		}
	})
	t.Run("nil profile", func(t *testing.T) {
		if _, err := ParseJWKS(jwks(t, good(nil)), nil); err == nil {
			t.Error("accepted a nil profile")
		}
	})
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseSecret(t *testing.T) {
	// A secret whose encoding differs between the standard and the URL
	// alphabets.
	secret := randomSecret(t, 32)
	for !strings.ContainsAny(base64.RawURLEncoding.EncodeToString(secret), "-_") {
		secret = randomSecret(t, 32)
	}
	raw := base64.RawURLEncoding.EncodeToString(secret)
	padded := base64.URLEncoding.EncodeToString(secret)
	// Flip the unused low bits of the last character.
	alphabet := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	nonCanonical := raw[:len(raw)-1] + string(alphabet[strings.IndexByte(alphabet, raw[len(raw)-1])|1])
	std := base64.RawStdEncoding.EncodeToString(secret)
	tests := []struct {
		name string
		data string
		err  string
	}{
		{"unpadded", raw, ""},
		{"padded", padded, ""},
		{"trailing newline", raw + "\n", ""},
		{"trailing CRLF", raw + "\r\n", ""},
		{"trailing space", raw + " ", ""},
		{"padded with trailing newline", padded + "\n", ""},
		{"64 bytes", base64.RawURLEncoding.EncodeToString(randomSecret(t, 64)), ""},
		{"two trailing newlines", raw + "\n\n", "not canonical base64url"},
		{"leading space", " " + raw, "not canonical base64url"},
		{"inner line break", raw[:20] + "\n" + raw[20:], "not canonical base64url"},
		{"inner space", raw[:20] + " " + raw[20:], "not canonical base64url"},
		{"non-canonical last character", nonCanonical, "not canonical base64url"},
		{"wrong padding", raw + "==", "not canonical base64url"},
		{"standard alphabet", std, "not canonical base64url"},
		{"31 bytes", base64.RawURLEncoding.EncodeToString(secret[:31]), "secret is 31 bytes, need at least 32"},
		{"16 bytes", base64.RawURLEncoding.EncodeToString(secret[:16]), "secret is 16 bytes, need at least 32"},
		{"empty", "", "secret is empty"},
		{"only a newline", "\n", "secret is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := ParseSecret([]byte(tc.data), "hs-1", testProfile)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseSecret = %v, want an error containing %q", err, tc.err)
				}
				if strings.Contains(err.Error(), raw[:8]) {
					t.Errorf("the error shows the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSecret: %v", err)
			}
			if k.Alg() != jwt.HS256 || k.ID() != "hs-1" || k.Profile() != testProfile {
				t.Errorf("key: alg %v, kid %q", k.Alg(), k.ID())
			}
		})
	}
	t.Run("same material", func(t *testing.T) {
		a, err1 := ParseSecret([]byte(raw), "hs-1", testProfile)
		b, err2 := ParseSecret([]byte(padded+"\n"), "hs-1", testProfile)
		want, err3 := jwt.NewHS256Key("hs-1", secret, testProfile)
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Fatal(err)
		}
		if !a.SameMaterial(want) || !b.SameMaterial(want) {
			t.Error("the parsed secret is not the encoded one")
		}
	})
	t.Run("kid too long", func(t *testing.T) {
		if _, err := ParseSecret([]byte(raw), strings.Repeat("k", 257), testProfile); err == nil {
			t.Error("accepted a 257-byte kid")
		}
	})
}
