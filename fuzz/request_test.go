package fuzz

import (
	"bytes"
	"testing"
	"time"

	"github.com/verifyd/verifyd/keystore"
)

// FuzzAccessRequestDecode checks that DecodeAccessRequest never panics,
// returns no partial value on failure, and accepts only canonical
// encodings: whatever it accepts re-encodes to the identical bytes and
// decodes again to the same value.
func FuzzAccessRequestDecode(f *testing.F) {
	at := time.Date(2026, 5, 1, 12, 0, 0, 7, time.UTC)
	for _, r := range []keystore.AccessRequest{
		{ID: "x", Status: keystore.RequestPending},
		{ID: "QUJDREVGR0hJSktMTU5PUA", TokenDigest: keystore.Sum("t"), Nonce: [16]byte{1, 2, 3}, AgentID: "agent-ü", Name: "n",
			Description: "d\nd", CallbackURL: "https://a.example/cb", ClientAddr: "192.0.2.1", Status: keystore.RequestApproved,
			CreatedAt: at, ExpiresAt: at.Add(time.Hour), DecidedAt: at.Add(time.Minute), DecidedBy: "admin:0a1b2c3d",
			KeyID: "S0VZSURLRVlJREtFWUlES0U", ForgetAt: at.Add(2 * time.Hour)},
	} {
		enc := r.AppendEncode(nil)
		f.Add(enc)
		f.Add(enc[:len(enc)-1])
		f.Add(append(bytes.Clone(enc), 0))
	}
	f.Add([]byte{})
	f.Add([]byte{1, 3, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := keystore.DecodeAccessRequest(b)
		if err != nil {
			if r != (keystore.AccessRequest{}) {
				t.Fatalf("failed decode (%v) returned a partial request %+v", err, r)
			}
			return
		}
		enc := r.AppendEncode(nil)
		if !bytes.Equal(enc, b) {
			t.Fatalf("accepted a non-canonical request:\n  in %x\n out %x", b, enc)
		}
		if again, err := keystore.DecodeAccessRequest(enc); err != nil || again != r {
			t.Fatalf("decode(encode(r)) = %+v, %v; want %+v", again, err, r)
		}
		if _, err := keystore.DecodeAuditEntry(b); err == nil {
			t.Fatalf("an access request decoded as an audit entry: %x", b)
		}
	})
}

// FuzzAuditEntryDecode is FuzzAccessRequestDecode for audit entries.
func FuzzAuditEntryDecode(f *testing.F) {
	at := time.Date(2026, 5, 1, 12, 0, 0, 7, time.UTC)
	for _, e := range []keystore.AuditEntry{
		{Actor: "a", Action: "b", Outcome: "ok"},
		{Time: at, Seq: 1 << 40, Actor: "admin:0a1b2c3d", Action: "key.revoke", Target: "S0VZSURLRVlJREtFWUlES0U", Outcome: "not_found", Detail: "subject=ü"},
	} {
		enc := e.AppendEncode(nil)
		f.Add(enc)
		f.Add(enc[:len(enc)-1])
		f.Add(append(bytes.Clone(enc), 0))
	}
	f.Add([]byte{1, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := keystore.DecodeAuditEntry(b)
		if err != nil {
			if e != (keystore.AuditEntry{}) {
				t.Fatalf("failed decode (%v) returned a partial entry %+v", err, e)
			}
			return
		}
		enc := e.AppendEncode(nil)
		if !bytes.Equal(enc, b) {
			t.Fatalf("accepted a non-canonical entry:\n  in %x\n out %x", b, enc)
		}
		if again, err := keystore.DecodeAuditEntry(enc); err != nil || again != e {
			t.Fatalf("decode(encode(e)) = %+v, %v; want %+v", again, err, e)
		}
	})
}
