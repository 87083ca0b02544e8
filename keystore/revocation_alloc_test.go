//go:build !race

package keystore

import (
	"fmt"
	"testing"
	"time"
)

func TestRevocationAllocations(t *testing.T) {
	s := openDir(t, t.TempDir(), nil)
	for i := range 100 {
		mustRevokeToken(t, s, TokenRevocation{TokenID: fmt.Sprint("jti-", i)})
		mustRevokeSubject(t, s, SubjectRevocation{Subject: fmt.Sprint("subject-", i), NotBefore: t0})
	}
	jti, subject := string([]byte("jti-42")), string([]byte("subject-42")) // not the map's own strings
	tests := []struct {
		name string
		fn   func()
	}{
		{"jti revoked", func() {
			if !s.TokenRevoked(jti, "bob", t0) {
				t.Fatal("not revoked")
			}
		}},
		{"subject revoked", func() {
			if !s.TokenRevoked("other", subject, t0.Add(-time.Second)) {
				t.Fatal("not revoked")
			}
		}},
		{"not revoked", func() {
			if s.TokenRevoked("unknown-jti", "unknown-subject", t0) {
				t.Fatal("revoked")
			}
		}},
		{"RevocationGen", func() { _ = s.RevocationGen() }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(1000, tc.fn); n != 0 {
				t.Errorf("%v allocations per run, want 0", n)
			}
		})
	}
}
