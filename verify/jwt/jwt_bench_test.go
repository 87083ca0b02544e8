package jwt

import (
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/sha256"
	"strings"
	"testing"
	"time"
)

// benchClaims is a realistic claims set of about 300 bytes.
func benchClaims() string {
	return payload(
		"nbf", at(-time.Minute),
		"email", "alice.smith@example.com",
		"roles", []string{"publisher", "consumer", "project_admin"},
		"scope", "tool:data:read tool:data:write agent:data_sales:delegate",
		"realm", "acme",
		"client_id", "gateway-7f3a",
	)
}

// BenchmarkVerifyJWT is the whole front end: grammar, base64url, header,
// key selection, signature and claims.
func BenchmarkVerifyJWT(b *testing.B) {
	f := newFixture(b)
	claims := benchClaims()
	for _, bc := range []struct{ name, tok string }{
		{"ES256", signES256(es1Priv, hdrES1, claims)},
		{"HS256", signHS256(hs1Secret, hdrHS1, claims)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if _, _, err := f.v.Verify(bc.tok, now); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.tok)))
			for b.Loop() {
				if _, _, err := f.v.Verify(bc.tok, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFloor is the cost of the bare primitives on the same tokens,
// everything prepared outside the loop: what Verify cannot go below.
func BenchmarkFloor(b *testing.B) {
	f := newFixture(b)
	claims := benchClaims()

	b.Run("ecdsa_p256_verify", func(b *testing.B) {
		tok := signES256(es1Priv, hdrES1, claims)
		in := tok[:strings.LastIndexByte(tok, '.')]
		digest := sha256.Sum256([]byte(in))
		r, s := es256RS(es1Priv, in)
		pub := f.es1.pub
		if !ecdsa.Verify(pub, digest[:], r, s) {
			b.Fatal("signature does not verify")
		}
		b.ReportAllocs()
		for b.Loop() {
			if !ecdsa.Verify(pub, digest[:], r, s) {
				b.Fatal("signature does not verify")
			}
		}
	})

	b.Run("hmac_sha256_reuse", func(b *testing.B) {
		tok := signHS256(hs1Secret, hdrHS1, claims)
		in := []byte(tok[:strings.LastIndexByte(tok, '.')])
		m := hmac.New(sha256.New, hs1Secret)
		// Declared outside the loop: passed to the hash.Hash interface,
		// sum escapes, and inside the loop it would cost one allocation
		// per iteration (as it does in verifyHS256).
		var sum [sha256.Size]byte
		b.ReportAllocs()
		b.SetBytes(int64(len(in)))
		for b.Loop() {
			m.Reset()
			m.Write(in)
			m.Sum(sum[:0])
		}
	})
}
