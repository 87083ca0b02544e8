package strictjson

import (
	"encoding/json"
	"testing"
)

// headerJSON is a typical ES256 JWT header.
const headerJSON = `{"alg":"ES256","kid":"es-1","typ":"JWT"}`

// claimsJSON is a realistic access-token claims set of about 300 bytes.
const claimsJSON = `{"iss":"https://idp.example.com/realms/prod","sub":"7f3c2a9e-41d2-4b8a-9c1e-2d5f6a7b8c9d",` +
	`"aud":["verifyd","broker"],"exp":1767225600,"nbf":1767222000,"iat":1767222000,` +
	`"jti":"b1f0c6d2-9a3e-4f7b-8c5d-e2a1f4b3c6d7","scope":"openid profile tool:data:read mailbox:agent-7:*",` +
	`"roles":["publisher","reader"],"realm_access":{"roles":["offline_access","uma_authorization"]}}`

func BenchmarkParse(b *testing.B) {
	for _, bc := range []struct {
		name string
		in   string
	}{
		{"jwt_header", headerJSON},
		{"jwt_claims", claimsJSON},
	} {
		b.Run(bc.name, func(b *testing.B) {
			src := []byte(bc.in)
			var d Doc
			b.ReportAllocs()
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				if err := d.Parse(src); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFloor measures encoding/json.Valid on the claims of
// BenchmarkParse/jwt_claims: a validation-only scan, the floor a parser
// that also builds a tree is compared with.
func BenchmarkFloor(b *testing.B) {
	b.Run("encoding_json_valid", func(b *testing.B) {
		src := []byte(claimsJSON)
		b.ReportAllocs()
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			if !json.Valid(src) {
				b.Fatal("invalid")
			}
		}
	})
}
