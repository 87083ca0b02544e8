package trust

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/verifyd/verifyd/verify/jwt"
)

// maxSetKeys bounds the number of entries of a key set, usable or not.
const maxSetKeys = 1000

// maxSecretFileBytes bounds a secret file: a 32-byte secret is 43 characters.
const maxSecretFileBytes = 4096

// p256Bytes is the length of a P-256 coordinate (RFC 7518 §6.2.1.2).
const p256Bytes = 32

// errPrivateKey marks a key set that publishes a private key. The registry
// logs it at Error: the key is compromised, whoever publishes it.
var errPrivateKey = errors.New(`holds a private key ("d")`)

// skippedKey describes a key of a set that is not an ES256 verification
// key, and so is not for verifyd.
type skippedKey struct {
	index  int
	kty    string
	reason string
}

// ParseJWKS parses a JWK set (RFC 7517 §5) and returns its ES256
// verification keys, each bound to profile, in the order of the set. It is
// the one validation path of key sets: files, URLs and OIDC discovery all go
// through it. A set is accepted only as a whole:
//
//   - the document is a UTF-8 JSON object with a "keys" array of at most
//     1000 objects, without duplicate member names in it or its keys;
//   - no key has a private part ("d") and none is symmetric (kty "oct"):
//     HMAC secrets never come from a key set;
//   - keys that are simply not for verifyd are skipped: another kty (RSA,
//     OKP), "use" other than "sig", "key_ops" without "verify", another
//     curve without "alg" ES256, and P-256 key-agreement keys ("alg"
//     ECDH-ES...);
//   - every other key must be a valid ES256 key: "crv" P-256, "alg" absent
//     or "ES256", "x" and "y" unpadded canonical base64url of exactly 32
//     bytes each, forming a point of the curve, and a "kid" (if any) of at
//     most [jwt.MaxKeyIDBytes] bytes; one invalid key rejects the set;
//   - no two usable keys share a kid (the empty kid included);
//   - at least one key is usable.
//
// Errors describe the set, never key material.
func ParseJWKS(data []byte, profile *jwt.Profile) ([]*jwt.Key, error) {
	keys, _, err := parseJWKS(data, profile)
	if err != nil {
		return nil, fmt.Errorf("trust: %w", err)
	}
	return keys, nil
}

// parseJWKS is ParseJWKS, reporting the skipped keys too, with errors that
// carry no package prefix.
func parseJWKS(data []byte, profile *jwt.Profile) ([]*jwt.Key, []skippedKey, error) {
	if profile == nil {
		return nil, nil, errors.New("key set: a profile is required")
	}
	if !utf8.Valid(data) {
		return nil, nil, errors.New("key set: not valid UTF-8")
	}
	top, err := objectMembers(data)
	if err != nil {
		return nil, nil, fmt.Errorf("key set: %w", err)
	}
	rawKeys, ok := top["keys"]
	if !ok {
		return nil, nil, errors.New(`key set: no "keys" member`)
	}
	var entries []json.RawMessage
	if err := json.Unmarshal(rawKeys, &entries); err != nil || entries == nil {
		return nil, nil, errors.New(`key set: "keys" is not an array`)
	}
	if len(entries) > maxSetKeys {
		return nil, nil, fmt.Errorf("key set: %d keys, the limit is %d", len(entries), maxSetKeys)
	}
	var (
		keys    []*jwt.Key
		skipped []skippedKey
		kids    = make(map[string]int, len(entries))
	)
	for i, raw := range entries {
		k, skip, err := parseSetKey(raw, profile)
		if err != nil {
			return nil, nil, fmt.Errorf("key set: keys[%d]: %w", i, err)
		}
		if k == nil {
			skip.index = i
			skipped = append(skipped, skip)
			continue
		}
		if j, dup := kids[k.ID()]; dup {
			return nil, nil, fmt.Errorf("key set: keys[%d]: kid %s is also the kid of keys[%d]", i, safeKid(k.ID()), j)
		}
		kids[k.ID()] = i
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, nil, fmt.Errorf("key set: no usable ES256 key (%d keys, %d not for verifyd)", len(entries), len(skipped))
	}
	return keys, skipped, nil
}

// parseSetKey returns the ES256 key raw describes, or nil and why the key
// is not for verifyd, or an error when the key invalidates its set.
func parseSetKey(raw json.RawMessage, profile *jwt.Profile) (*jwt.Key, skippedKey, error) {
	m, err := objectMembers(raw)
	if err != nil {
		return nil, skippedKey{}, err
	}
	kty, err := stringMember(m, "kty", true)
	if err != nil {
		return nil, skippedKey{}, err
	}
	if _, ok := m["d"]; ok {
		return nil, skippedKey{}, errPrivateKey
	}
	if kty == "oct" {
		return nil, skippedKey{}, errors.New(`symmetric key (kty "oct"): HMAC secrets never come from a key set`)
	}
	if kty != "EC" {
		return nil, skippedKey{kty: kty, reason: "kty is not EC"}, nil
	}
	use, err := stringMember(m, "use", false)
	if err != nil {
		return nil, skippedKey{}, err
	}
	if _, ok := m["use"]; ok && use != "sig" {
		return nil, skippedKey{kty: kty, reason: "use " + safeText(use)}, nil
	}
	if rawOps, ok := m["key_ops"]; ok {
		var ops []string
		if err := json.Unmarshal(rawOps, &ops); err != nil || ops == nil {
			return nil, skippedKey{}, errors.New(`"key_ops" is not an array of strings`)
		}
		verify := false
		for _, op := range ops {
			verify = verify || op == "verify"
		}
		if !verify {
			return nil, skippedKey{kty: kty, reason: `key_ops without "verify"`}, nil
		}
	}
	alg, err := stringMember(m, "alg", false)
	if err != nil {
		return nil, skippedKey{}, err
	}
	_, hasAlg := m["alg"]
	crv, err := stringMember(m, "crv", true)
	if err != nil {
		return nil, skippedKey{}, err
	}
	if crv != "P-256" {
		if alg == "ES256" {
			return nil, skippedKey{}, fmt.Errorf("alg ES256 on curve %s: ES256 is P-256 only", safeText(crv))
		}
		return nil, skippedKey{kty: kty, reason: "crv " + safeText(crv)}, nil
	}
	if hasAlg && alg != "ES256" {
		if isKeyAgreement(alg) {
			return nil, skippedKey{kty: kty, reason: "alg " + safeText(alg)}, nil
		}
		return nil, skippedKey{}, fmt.Errorf("alg %s on a P-256 key: a P-256 signing key is ES256", safeText(alg))
	}

	// From here on the key claims to be an ES256 key: any flaw is an error.
	kid, err := stringMember(m, "kid", false)
	if err != nil {
		return nil, skippedKey{}, err
	}
	if len(kid) > jwt.MaxKeyIDBytes {
		return nil, skippedKey{}, fmt.Errorf("kid is %d bytes, the limit is %d", len(kid), jwt.MaxKeyIDBytes)
	}
	var point [1 + 2*p256Bytes]byte
	point[0] = 4
	for i, name := range [2]string{"x", "y"} {
		coord, err := coordinate(m, name)
		if err != nil {
			return nil, skippedKey{}, err
		}
		copy(point[1+i*p256Bytes:], coord)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point[:])
	if err != nil {
		return nil, skippedKey{}, errors.New("x, y is not a point of P-256")
	}
	if err := crossCheck(raw, point[:]); err != nil {
		return nil, skippedKey{}, err
	}
	k, err := jwt.NewES256Key(kid, pub, profile)
	if err != nil {
		return nil, skippedKey{}, err
	}
	return k, skippedKey{}, nil
}

// crossCheck parses raw with jwx and requires that it sees the same public
// key: a P-256 public key with the coordinates of point. The strict checks
// above decide; this guards against the two parsers reading one document
// differently.
func crossCheck(raw json.RawMessage, point []byte) error {
	key, err := jwk.ParseKey(raw)
	if err != nil {
		msg := err.Error()
		if len(msg) > 200 {
			msg = strings.ToValidUTF8(msg[:200], "") + "..."
		}
		return fmt.Errorf("jwk: %s", msg)
	}
	ec, ok := key.(jwk.ECDSAPublicKey)
	if !ok {
		return fmt.Errorf("jwk: parsed as %T, not an EC public key", key)
	}
	crv, _ := ec.Crv()
	x, _ := ec.X()
	y, _ := ec.Y()
	if crv.String() != "P-256" || !bytes.Equal(x, point[1:1+p256Bytes]) || !bytes.Equal(y, point[1+p256Bytes:]) {
		return errors.New("jwk: parsed to another key")
	}
	return nil
}

// isKeyAgreement reports whether alg is an ECDH-ES key agreement algorithm
// (RFC 7518 §4.6): the key encrypts, it does not sign.
func isKeyAgreement(alg string) bool {
	switch alg {
	case "ECDH-ES", "ECDH-ES+A128KW", "ECDH-ES+A192KW", "ECDH-ES+A256KW":
		return true
	}
	return false
}

// coordinate decodes the member name of m: unpadded canonical base64url of
// exactly 32 bytes.
func coordinate(m map[string]json.RawMessage, name string) ([]byte, error) {
	s, err := stringMember(m, name, true)
	if err != nil {
		return nil, err
	}
	// The decoder skips '\r' and '\n' wherever they are: refuse them first.
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || strings.ContainsAny(s, "\r\n") {
		return nil, fmt.Errorf("%q is not unpadded canonical base64url", name)
	}
	if len(b) != p256Bytes {
		return nil, fmt.Errorf("%q is %d bytes, a P-256 coordinate is %d", name, len(b), p256Bytes)
	}
	return b, nil
}

// stringMember returns the string member name of m, "" when it is absent
// and not required.
func stringMember(m map[string]json.RawMessage, name string, required bool) (string, error) {
	raw, ok := m[name]
	if !ok {
		if required {
			return "", fmt.Errorf("no %q member", name)
		}
		return "", nil
	}
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", fmt.Errorf("%q is not a string", name)
	}
	return s, nil
}

// objectMembers decodes a JSON object into its members, refusing duplicate
// member names (RFC 7515 §4 allows either refusing them or taking the last;
// different parsers make different choices) and trailing data.
func objectMembers(data []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, errors.New("not JSON")
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	m := make(map[string]json.RawMessage)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, errors.New("not JSON")
		}
		name, ok := tok.(string)
		if !ok {
			return nil, errors.New("not JSON")
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, errors.New("not JSON")
		}
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("member %s appears twice", safeText(name))
		}
		m[name] = v
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, errors.New("not JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	return m, nil
}

// ParseSecret decodes an HS256 secret and returns the key it makes, with id
// kid and bound to profile. data is base64url (RFC 4648 §5), padded or not,
// canonical (no non-zero unused bits), optionally followed by one newline
// or whitespace character; once decoded, the secret must be at least
// [jwt.MinSecretBytes] long. Errors never contain the secret.
func ParseSecret(data []byte, kid string, profile *jwt.Profile) (*jwt.Key, error) {
	k, err := parseSecret(data, kid, profile)
	if err != nil {
		return nil, fmt.Errorf("trust: %w", err)
	}
	return k, nil
}

func parseSecret(data []byte, kid string, profile *jwt.Profile) (*jwt.Key, error) {
	if profile == nil {
		return nil, errors.New("secret: a profile is required")
	}
	switch {
	case bytes.HasSuffix(data, []byte("\r\n")):
		data = data[:len(data)-2]
	case len(data) > 0 && (data[len(data)-1] == '\n' || data[len(data)-1] == ' ' || data[len(data)-1] == '\t' || data[len(data)-1] == '\r'):
		data = data[:len(data)-1]
	}
	if len(data) == 0 {
		return nil, errors.New("secret is empty")
	}
	// The decoder skips '\r' and '\n' wherever they are: refuse them first.
	if bytes.ContainsAny(data, "\r\n") {
		return nil, errors.New("secret is not canonical base64url")
	}
	enc := base64.RawURLEncoding.Strict()
	if bytes.IndexByte(data, '=') >= 0 {
		enc = base64.URLEncoding.Strict()
	}
	secret := make([]byte, enc.DecodedLen(len(data)))
	n, err := enc.Decode(secret, data)
	defer clear(secret)
	if err != nil {
		return nil, errors.New("secret is not canonical base64url")
	}
	if n < jwt.MinSecretBytes {
		return nil, fmt.Errorf("secret is %d bytes, need at least %d", n, jwt.MinSecretBytes)
	}
	return jwt.NewHS256Key(kid, secret[:n], profile)
}

// safeKid renders a key id for an error or a log: quoted when it is short
// and printable ASCII, otherwise only its length. Key ids in tokens are
// attacker-controlled; this package never puts those in errors at all.
func safeKid(kid string) string {
	if len(kid) > 64 {
		return fmt.Sprintf("(a %d-byte key id)", len(kid))
	}
	return safeText(kid)
}

// safeText quotes s when it is at most 64 bytes of printable ASCII, and
// otherwise describes it by its length.
func safeText(s string) string {
	if len(s) > 64 {
		return fmt.Sprintf("(%d bytes)", len(s))
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return fmt.Sprintf("(%d bytes, not printable)", len(s))
		}
	}
	return strconv.Quote(s)
}
