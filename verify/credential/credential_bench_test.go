package credential

import (
	"encoding/base64"
	"testing"
)

func BenchmarkClassify(b *testing.B) {
	m := newTestMinter(b, testKey)
	apiKey := fixedAPIKey(b, m, 7)
	for _, bc := range []struct {
		name string
		tok  string
		want Format
	}{
		{"api_key", apiKey, APIKey},
		{"forged", apiKey[:apiKeyMACInputLen] + "AAAAAAAA", Malformed},
		{"agent", base64.RawURLEncoding.EncodeToString(fill(32, 3)), Agent},
		{"pat", fixedPAT(b, 8, 9), PAT},
		{"imported", "ams-0123456789abcdef0123456789abcdef0123", Imported},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if got := m.Classify(bc.tok); got != bc.want {
				b.Fatalf("Classify = %v, want %v", got, bc.want)
			}
			b.ReportAllocs()
			for b.Loop() {
				m.Classify(bc.tok)
			}
		})
	}
}

func BenchmarkClassifyParallel(b *testing.B) {
	m := newTestMinter(b, testKey)
	apiKey := fixedAPIKey(b, m, 7)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Classify(apiKey)
		}
	})
}

func BenchmarkNewAPIKey(b *testing.B) {
	m := newTestMinter(b, testKey)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.NewAPIKey(); err != nil {
			b.Fatal(err)
		}
	}
}
