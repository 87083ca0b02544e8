package fuzz

import (
	"bytes"
	"testing"
	"time"

	"github.com/verifyd/verifyd/keystore"
)

// FuzzRevocationDecode checks that DecodeTokenRevocation and
// DecodeSubjectRevocation never panic, return no partial value on failure,
// never both accept the same input, and accept only canonical encodings:
// whatever one accepts re-encodes to the identical bytes and decodes again
// to the same value.
func FuzzRevocationDecode(f *testing.F) {
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, enc := range [][]byte{
		(&keystore.TokenRevocation{TokenID: "a"}).AppendEncode(nil),
		(&keystore.TokenRevocation{TokenID: "jti-ü", ExpiresAt: at.Add(time.Hour), CreatedAt: at.Add(999999999), Creator: "admin"}).AppendEncode(nil),
		(&keystore.SubjectRevocation{Subject: "alice@example.com", NotBefore: at, CreatedAt: at, Creator: "admin"}).AppendEncode(nil),
	} {
		f.Add(enc)
		f.Add(enc[:len(enc)-1])
		f.Add(append(bytes.Clone(enc), 0))
	}
	f.Add([]byte{})
	f.Add([]byte{1, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, terr := keystore.DecodeTokenRevocation(b)
		sr, serr := keystore.DecodeSubjectRevocation(b)
		if terr == nil && serr == nil {
			t.Fatalf("both decoders accepted %x", b)
		}
		if terr != nil && tr != (keystore.TokenRevocation{}) {
			t.Fatalf("failed decode (%v) returned a partial token revocation %+v", terr, tr)
		}
		if serr != nil && sr != (keystore.SubjectRevocation{}) {
			t.Fatalf("failed decode (%v) returned a partial subject revocation %+v", serr, sr)
		}
		if terr == nil {
			enc := tr.AppendEncode(nil)
			if !bytes.Equal(enc, b) {
				t.Fatalf("accepted a non-canonical token revocation:\n  in %x\n out %x", b, enc)
			}
			if again, err := keystore.DecodeTokenRevocation(enc); err != nil || again != tr {
				t.Fatalf("decode(encode(r)) = %+v, %v; want %+v", again, err, tr)
			}
		}
		if serr == nil {
			enc := sr.AppendEncode(nil)
			if !bytes.Equal(enc, b) {
				t.Fatalf("accepted a non-canonical subject revocation:\n  in %x\n out %x", b, enc)
			}
			if again, err := keystore.DecodeSubjectRevocation(enc); err != nil || again != sr {
				t.Fatalf("decode(encode(r)) = %+v, %v; want %+v", again, err, sr)
			}
		}
	})
}
