package keystore

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkTokenRevoked measures the revocation check of the JWT path
// against 10k token and 10k subject revocations.
func BenchmarkTokenRevoked(b *testing.B) {
	s := openMem(b, nil)
	for i := range 10000 {
		mustRevokeToken(b, s, TokenRevocation{TokenID: fmt.Sprint("jti-", i)})
		mustRevokeSubject(b, s, SubjectRevocation{Subject: fmt.Sprint("subject-", i), NotBefore: t0})
	}
	issued := t0.Add(time.Hour)
	b.Run("miss", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s.TokenRevoked("a-fresh-jti-0123456789", "carol@example.com", issued)
		}
	})
	b.Run("jti_hit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s.TokenRevoked("jti-4242", "carol@example.com", issued)
		}
	})
	b.Run("subject_checked", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s.TokenRevoked("a-fresh-jti-0123456789", "subject-4242", issued)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				s.TokenRevoked("a-fresh-jti-0123456789", "subject-4242", issued)
			}
		})
	})
}
