package credential

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

func TestNewID(t *testing.T) {
	t.Parallel()
	seen := make(map[string]bool)
	for range 1000 {
		id, err := NewID()
		if err != nil {
			t.Fatal(err)
		}
		if len(id) != 22 || len(decode(t, id)) != 16 {
			t.Fatalf("NewID = %q: want the 22-character encoding of 16 bytes", id)
		}
		if seen[id] {
			t.Fatalf("NewID repeated %q", id)
		}
		seen[id] = true
	}
}

func TestNewPAT(t *testing.T) {
	t.Parallel()
	m := newTestMinter(t, testKey)
	seen := make(map[string]bool)
	for range 1000 {
		id, err := NewID()
		if err != nil {
			t.Fatal(err)
		}
		tok, err := NewPAT(id)
		if err != nil {
			t.Fatal(err)
		}
		if len(tok) != 70 || tok[:4] != "pat_" || tok[4:26] != id || tok[26] != '_' || len(decode(t, tok[27:])) != 32 {
			t.Fatalf("NewPAT(%q) = %q: wrong layout", id, tok)
		}
		if got := m.Classify(tok); got != PAT {
			t.Fatalf("Classify(%q) = %v, want pat", tok, got)
		}
		if got, ok := PATID(tok); !ok || got != id {
			t.Fatalf("PATID(%q) = %q, %v; want %q", tok, got, ok, id)
		}
		if seen[tok] {
			t.Fatalf("NewPAT repeated %q", tok)
		}
		seen[tok] = true
	}
}

// TestNewPATReset checks that a reset (a new PAT for the same id) yields a
// different token with the same embedded id.
func TestNewPATReset(t *testing.T) {
	t.Parallel()
	id, err := NewID()
	if err != nil {
		t.Fatal(err)
	}
	a, errA := NewPAT(id)
	b, errB := NewPAT(id)
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	idA, _ := PATID(a)
	idB, _ := PATID(b)
	if a == b || idA != id || idB != id {
		t.Fatalf("reset gave %q and %q", a, b)
	}
}

func TestNewPATInvalidID(t *testing.T) {
	t.Parallel()
	valid := base64.RawURLEncoding.EncodeToString(fill(idBytes, 0x22))
	for _, tc := range []struct {
		name, id, wantErr string
	}{
		{"empty", "", "credential: pat id is 0 characters, want 22"},
		{"21 characters", valid[:21], "credential: pat id is 21 characters, want 22"},
		{"23 characters", valid + "A", "credential: pat id is 23 characters, want 22"},
		{"padded", valid[:20] + "==", "credential: pat id is not canonical base64url of 16 bytes"},
		{"standard alphabet", "+" + valid[1:], "credential: pat id is not canonical base64url of 16 bytes"},
		{"low bits set", setLastLowBits(t, valid, 4), "credential: pat id is not canonical base64url of 16 bytes"},
		{"ends in _", valid[:21] + "_", "credential: pat id is not canonical base64url of 16 bytes"},
		{"newline", valid[:10] + "\n" + valid[11:], "credential: pat id is not canonical base64url of 16 bytes"},
		{"punctuation", valid[:21] + "!", "credential: pat id is not canonical base64url of 16 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tok, err := newPAT(bytes.NewReader(fill(32, 1)), tc.id)
			if err == nil || err.Error() != tc.wantErr || tok != "" {
				t.Fatalf("NewPAT(%q) = %q, %v; want error %q", tc.id, tok, err, tc.wantErr)
			}
		})
	}
}

func TestPATID(t *testing.T) {
	t.Parallel()
	pat := fixedPAT(t, 0xFF, 0xFF) // '_' in both parts
	for _, tc := range []struct {
		name, tok, wantID string
		wantOK            bool
	}{
		{"pat", pat, "_____________________w", true},
		{"trailing newline", pat + "\n", "", false},
		{"upper-case prefix", "PAT_" + pat[4:], "", false},
		{"pat__x", "pat__x", "", false},
		{"empty", "", "", false},
		{"api key shape", "vk_" + strings.Repeat("A", 40), "", false},
		{"separator -", pat[:26] + "-" + pat[27:], "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id, ok := PATID(tc.tok)
			if id != tc.wantID || ok != tc.wantOK {
				t.Fatalf("PATID(%q) = %q, %v; want %q, %v", tc.tok, id, ok, tc.wantID, tc.wantOK)
			}
		})
	}
}
