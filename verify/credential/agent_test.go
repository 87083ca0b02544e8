package credential

import (
	"bytes"
	"strings"
	"testing"
)

func TestNewAgentKey(t *testing.T) {
	t.Parallel()
	m := newTestMinter(t, testKey)
	seen := make(map[string]bool)
	for range 1000 {
		k, err := NewAgentKey()
		if err != nil {
			t.Fatal(err)
		}
		if len(k) != 43 || len(decode(t, k)) != 32 {
			t.Fatalf("NewAgentKey = %q: want the 43-character encoding of 32 bytes", k)
		}
		if got := m.Classify(k); got != Agent {
			t.Fatalf("Classify(%q) = %v, want agent", k, got)
		}
		if seen[k] {
			t.Fatalf("NewAgentKey repeated %q", k)
		}
		seen[k] = true
	}
}

// TestNewAgentKeyReservedPrefix feeds draws that encode to reserved
// prefixes and checks that they are discarded.
func TestNewAgentKeyReservedPrefix(t *testing.T) {
	t.Parallel()
	vk := "vk_" + strings.Repeat("A", 40)
	pat := "pat_" + strings.Repeat("B", 38) + "A"
	want := "vK_" + strings.Repeat("C", 39) + "A"
	var src bytes.Buffer
	for _, s := range []string{vk, pat, vk, want} {
		src.Write(decode(t, s))
	}
	got, err := newAgentKey(&src)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("newAgentKey = %q, want %q (the first draw without a reserved prefix)", got, want)
	}
	if src.Len() != 0 {
		t.Fatalf("%d random bytes left unread", src.Len())
	}
	if c := newTestMinter(t, testKey).Classify(got); c != Agent {
		t.Fatalf("Classify(%q) = %v, want agent", got, c)
	}
}
