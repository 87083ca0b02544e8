package credential

import (
	"bytes"
	"crypto/aes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"testing/iotest"
)

func TestNewMinter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		key     []byte
		wantErr string
	}{
		{"nil", nil, "credential: checksum key is 0 bytes, need at least 32"},
		{"31 bytes", fill(31, 1), "credential: checksum key is 31 bytes, need at least 32"},
		{"32 bytes", fill(32, 1), ""},
		{"200 bytes", fill(200, 1), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, err := NewMinter(tc.key)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr || m != nil {
					t.Fatalf("NewMinter = %v, %v; want nil, %q", m, err, tc.wantErr)
				}
				return
			}
			if err != nil || m == nil {
				t.Fatalf("NewMinter = %v, %v", m, err)
			}
		})
	}
}

func TestNewMinterCopiesKey(t *testing.T) {
	t.Parallel()
	key := bytes.Clone(testKey)
	m := newTestMinter(t, key)
	k, err := m.NewAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	clear(key)
	if got := m.Classify(k); got != APIKey {
		t.Fatalf("after clearing the caller's key slice, Classify = %v", got)
	}
}

// TestAPIKeyChecksum checks generated keys against an independent
// computation of the format: "vk_" + RawURL(24 bytes) +
// RawURL(first 6 bytes of the AES-256 CBC-MAC of the random part, keyed
// with SHA-256(key)).
func TestAPIKeyChecksum(t *testing.T) {
	t.Parallel()
	m := newTestMinter(t, testKey)
	seen := make(map[string]bool)
	for range 1000 {
		k, err := m.NewAPIKey()
		if err != nil {
			t.Fatal(err)
		}
		if len(k) != 43 || !strings.HasPrefix(k, "vk_") {
			t.Fatalf("NewAPIKey = %q: want 43 characters starting with vk_", k)
		}
		if got := len(decode(t, k[3:35])); got != 24 {
			t.Fatalf("random part of %q decodes to %d bytes", k, got)
		}
		if want := referenceChecksum(testKey, k[3:35]); k[35:] != want {
			t.Fatalf("checksum of %q is %q, want %q", k, k[35:], want)
		}
		if got := m.Classify(k); got != APIKey {
			t.Fatalf("Classify(%q) = %v", k, got)
		}
		if seen[k] {
			t.Fatalf("NewAPIKey repeated %q", k)
		}
		seen[k] = true
	}
}

func TestNewChecksumKey(t *testing.T) {
	t.Parallel()
	a, err := NewChecksumKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewChecksumKey()
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 32 || len(b) != 32 || bytes.Equal(a, b) {
		t.Fatalf("NewChecksumKey gave %d and %d bytes, equal %v", len(a), len(b), bytes.Equal(a, b))
	}
	if _, err := NewMinter(a); err != nil {
		t.Fatalf("NewMinter(NewChecksumKey()): %v", err)
	}
}

func TestRandomSourceFailure(t *testing.T) {
	t.Parallel()
	m := newTestMinter(t, testKey)
	id := base64.RawURLEncoding.EncodeToString(fill(idBytes, 1))
	failing := func() *bytes.Reader { return bytes.NewReader(fill(5, 1)) } // too short: io.ErrUnexpectedEOF
	for _, tc := range []struct {
		name string
		mint func() (string, error)
	}{
		{"api key", func() (string, error) { return m.newAPIKey(iotest.ErrReader(iotest.ErrTimeout)) }},
		{"api key short read", func() (string, error) { return m.newAPIKey(failing()) }},
		{"agent key", func() (string, error) { return newAgentKey(iotest.ErrReader(iotest.ErrTimeout)) }},
		{"id", func() (string, error) { return newID(failing()) }},
		{"pat", func() (string, error) { return newPAT(failing(), id) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := tc.mint()
			if err == nil || s != "" || !strings.HasPrefix(err.Error(), "credential: read random: ") {
				t.Fatalf("got %q, %v; want an error", s, err)
			}
		})
	}
}

// TestMinterRedacted checks that formatting or logging a Minter never shows
// its checksum key.
func TestMinterRedacted(t *testing.T) {
	t.Parallel()
	key := []byte("SECRET-checksum-key-SECRET-0123456789")
	m := newTestMinter(t, key)
	if _, err := m.NewAPIKey(); err != nil { // populate the pool
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("minter", "m", m)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("minter", "m", m)
	for _, out := range []string{
		fmt.Sprint(m), fmt.Sprintf("%v %+v %#v %s", m, m, m, m), buf.String(),
	} {
		if strings.Contains(out, "SECRET") || !strings.Contains(out, "redacted") {
			t.Errorf("formatted Minter: %q", out)
		}
	}
}

// referenceChecksum computes the checksum of random (32 characters) with
// crypto/aes directly: E(E(r[0:16]) XOR r[16:32]), first 6 bytes, base64url.
func referenceChecksum(key []byte, random string) string {
	k := sha256.Sum256(key)
	block, err := aes.NewCipher(k[:])
	if err != nil {
		panic(err)
	}
	x := []byte(random[:16])
	block.Encrypt(x, x)
	for i := range x {
		x[i] ^= random[16+i]
	}
	block.Encrypt(x, x)
	return base64.RawURLEncoding.EncodeToString(x[:6])
}
