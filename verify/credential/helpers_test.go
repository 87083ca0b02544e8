package credential

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

// testKey is the checksum key of the tests' Minter.
var testKey = []byte("credential test checksum key, 32+ bytes")

// otherKey is a second deployment's checksum key.
var otherKey = []byte("another deployment's checksum key......")

func newTestMinter(t testing.TB, key []byte) *Minter {
	t.Helper()
	m, err := NewMinter(key)
	if err != nil {
		t.Fatalf("NewMinter: %v", err)
	}
	return m
}

// fill returns n bytes, all b.
func fill(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }

// decode returns the bytes s encodes, failing the test if s is not
// canonical base64url.
func decode(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || base64.RawURLEncoding.EncodeToString(b) != s {
		t.Fatalf("%q is not canonical base64url (err %v)", s, err)
	}
	return b
}

// fixedAPIKey mints an API key under m whose random part is 24 bytes of b.
func fixedAPIKey(t testing.TB, m *Minter, b byte) string {
	t.Helper()
	k, err := m.newAPIKey(bytes.NewReader(fill(apiKeyRandomBytes, b)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// fixedPAT builds a PAT from a 16-byte id of idByte and a 32-byte secret of
// secretByte.
func fixedPAT(t testing.TB, idByte, secretByte byte) string {
	t.Helper()
	id := base64.RawURLEncoding.EncodeToString(fill(idBytes, idByte))
	tok, err := newPAT(bytes.NewReader(fill(agentKeyBytes, secretByte)), id)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// setLastLowBits returns s with the unused low bits of its last base64url
// character set, keeping the bits that carry data.
func setLastLowBits(t testing.TB, s string, unused uint) string {
	t.Helper()
	v := decodeMap[s[len(s)-1]]
	if v == invalid {
		t.Fatalf("last character of %q is not base64url", s)
	}
	return s[:len(s)-1] + string(alphabet[v|(1<<unused-1)])
}

// replaceAt returns s with the byte at i replaced by c.
func replaceAt(s string, i int, c byte) string {
	var b strings.Builder
	b.WriteString(s[:i])
	b.WriteByte(c)
	b.WriteString(s[i+1:])
	return b.String()
}
