package fuzz

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/verifyd/verifyd/keystore"
)

// recordSeeds are records whose encodings seed FuzzRecordDecode.
func recordSeeds() []keystore.Record {
	return []keystore.Record{
		{ID: "a", Kind: keystore.KindAgent, Subject: "agent-7", Digest: keystore.Sum("t")},
		{
			ID:           "AAAAAAAAAAAAAAAAAAAAAA",
			Kind:         keystore.KindPAT,
			Subject:      "alice@example.com",
			Name:         "ci",
			Description:  "nightly build",
			Roles:        []string{"publisher", "consumer"},
			ProjectRoles: map[string][]string{"p0": {"consumer"}, "p1": {"project_admin"}, "p2": nil},
			Scopes:       []string{"tool:data:*", "*"},
			Creator:      "admin",
			Metadata:     map[string]string{"team": "infra", "ü": "ß"},
			CreatedAt:    time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
			ExpiresAt:    time.Date(2026, 4, 2, 3, 4, 5, 0, time.UTC),
			RevokedAt:    time.Date(2026, 2, 1, 0, 0, 0, 999999999, time.UTC),
			Digest:       keystore.Sum("new"),
			PrevDigest:   keystore.Sum("old"),
			PrevNotAfter: time.Date(2026, 2, 1, 0, 0, 1, 0, time.UTC),
			Version:      1<<64 - 1,
		},
	}
}

// FuzzRecordDecode checks that DecodeRecord never panics, returns no partial
// record on failure, and accepts only canonical encodings: whatever it
// accepts re-encodes to the identical bytes and decodes again to the same
// record.
func FuzzRecordDecode(f *testing.F) {
	for _, r := range recordSeeds() {
		enc := r.AppendEncode(nil)
		f.Add(enc)
		f.Add(enc[:len(enc)-1])
		f.Add(append(enc, 0))
	}
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := keystore.DecodeRecord(b)
		if err != nil {
			if !reflect.DeepEqual(r, keystore.Record{}) {
				t.Fatalf("failed decode (%v) returned a partial record %+v", err, r)
			}
			return
		}
		enc := r.AppendEncode(nil)
		if !bytes.Equal(enc, b) {
			t.Fatalf("accepted a non-canonical encoding:\n  in %x\n out %x", b, enc)
		}
		again, err := keystore.DecodeRecord(enc)
		if err != nil {
			t.Fatalf("re-encoding does not decode: %v", err)
		}
		if !reflect.DeepEqual(again, r) {
			t.Fatalf("decode(encode(r)) = %+v, want %+v", again, r)
		}
	})
}
