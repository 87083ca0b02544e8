//go:build !race

package credential

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestClassifyAllocs(t *testing.T) {
	m := newTestMinter(t, testKey)
	apiKey := fixedAPIKey(t, m, 7)
	pat := fixedPAT(t, 8, 9)
	for _, tc := range []struct {
		name string
		tok  string
		want Format
	}{
		{"api_key", apiKey, APIKey},
		{"forged", apiKey[:apiKeyMACInputLen] + "AAAAAAAA", Malformed},
		{"other key", fixedAPIKey(t, newTestMinter(t, otherKey), 7), Malformed},
		{"agent", base64.RawURLEncoding.EncodeToString(fill(32, 3)), Agent},
		{"pat", pat, PAT},
		{"pat bad id", pat[:patIDEnd-1] + "_" + pat[patIDEnd:], Malformed},
		{"imported", strings.Repeat("k", MaxLen), Imported},
		{"empty", "", Malformed},
		{"too long", strings.Repeat("k", 10<<10), Malformed},
		{"non-ASCII", strings.Repeat("é", 20), Malformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got Format
			allocs := testing.AllocsPerRun(200, func() { got = m.Classify(tc.tok) })
			if got != tc.want {
				t.Fatalf("Classify = %v, want %v", got, tc.want)
			}
			if allocs != 0 {
				t.Fatalf("Classify allocates %v times per call", allocs)
			}
		})
	}
}

func TestPATIDAllocs(t *testing.T) {
	pat := fixedPAT(t, 8, 9)
	var ok bool
	allocs := testing.AllocsPerRun(200, func() { _, ok = PATID(pat) })
	if !ok || allocs != 0 {
		t.Fatalf("PATID: ok %v, %v allocations per call", ok, allocs)
	}
}
