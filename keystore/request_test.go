package keystore

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

var reqT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testRequest(n int, agent string) AccessRequest {
	return AccessRequest{
		ID:          id(n),
		TokenDigest: Sum(fmt.Sprint("request-token-", n)),
		Nonce:       [16]byte{1, 2, 3, byte(n)},
		AgentID:     agent,
		Name:        "Agent " + agent,
		Description: "asks for a mailbox\nplease",
		CallbackURL: "https://agent.example/cb?x=1",
		ClientAddr:  "192.0.2.7",
		Status:      RequestPending,
		CreatedAt:   reqT0,
		ExpiresAt:   reqT0.Add(7 * 24 * time.Hour),
		ForgetAt:    reqT0.Add(14 * 24 * time.Hour),
	}
}

func mustPutRequest(t testing.TB, s *Store, r AccessRequest) AccessRequest {
	t.Helper()
	var got AccessRequest
	if _, err := s.Apply(ctx, func(tx *Txn) error {
		var err error
		got, err = tx.PutRequest(r)
		return err
	}); err != nil {
		t.Fatalf("PutRequest(%s): %v", r.ID, err)
	}
	return got
}

func TestAccessRequestEncoding(t *testing.T) {
	approved := testRequest(2, "bot-2")
	approved.Status, approved.DecidedAt, approved.DecidedBy, approved.KeyID = RequestApproved, reqT0.Add(time.Hour), "admin:0a1b2c3d", id(9)
	for _, r := range []AccessRequest{testRequest(1, "bot-1"), approved, {ID: "x", Status: RequestDenied}} {
		b := r.AppendEncode(nil)
		got, err := DecodeAccessRequest(b)
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Fatalf("round trip of %+v = %+v, %v", r, got, err)
		}
		for i := range len(b) {
			if _, err := DecodeAccessRequest(b[:i]); err == nil {
				t.Fatalf("truncation to %d bytes decoded", i)
			}
		}
		if _, err := DecodeAccessRequest(append(b, 0)); err == nil {
			t.Fatal("trailing byte decoded")
		}
	}
	goodReq := testRequest(1, "bot-1")
	good := goodReq.AppendEncode(nil)
	for name, mutate := range map[string]func([]byte){
		"version":     func(b []byte) { b[0] = 2 },
		"type":        func(b []byte) { b[1] = typeAuditEntry },
		"status zero": func(b []byte) { b[2] = 0 },
		"status 4":    func(b []byte) { b[2] = 4 },
	} {
		b := append([]byte(nil), good...)
		mutate(b)
		var de *DecodeError
		if _, err := DecodeAccessRequest(b); !errors.As(err, &de) || de.What != "access request" {
			t.Errorf("%s: %v, want a *DecodeError", name, err)
		}
	}
	if _, err := DecodeAuditEntry(good); err == nil {
		t.Error("an access request decoded as an audit entry")
	}
}

func TestAccessRequestValidate(t *testing.T) {
	if r := testRequest(1, "bot-1"); r.Validate() != nil {
		t.Fatalf("valid request: %v", r.Validate())
	}
	for name, tc := range map[string]struct {
		mutate func(*AccessRequest)
		want   string
	}{
		"id":             {func(r *AccessRequest) { r.ID = "a/b" }, "id must be"},
		"digest":         {func(r *AccessRequest) { r.TokenDigest = Digest{} }, "token digest"},
		"agent":          {func(r *AccessRequest) { r.AgentID = "" }, "agent id"},
		"agent control":  {func(r *AccessRequest) { r.AgentID = "a\nb" }, "agent id"},
		"url":            {func(r *AccessRequest) { r.CallbackURL = strings.Repeat("u", MaxCallbackURLLen+1) }, "callback url"},
		"status":         {func(r *AccessRequest) { r.Status = 9 }, "unknown status"},
		"times":          {func(r *AccessRequest) { r.ForgetAt = time.Time{} }, "required"},
		"pending key":    {func(r *AccessRequest) { r.KeyID = id(3) }, "pending request has no decision"},
		"approved":       {func(r *AccessRequest) { r.Status, r.DecidedAt = RequestApproved, reqT0 }, "names its key"},
		"denied key":     {func(r *AccessRequest) { r.Status, r.DecidedAt, r.KeyID = RequestDenied, reqT0, id(3) }, "denied request has no key"},
		"decided notime": {func(r *AccessRequest) { r.Status = RequestDenied }, "decision time"},
	} {
		r := testRequest(1, "bot-1")
		tc.mutate(&r)
		err := r.Validate()
		if !errors.Is(err, ErrInvalidRecord) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

func TestRequestsInTxn(t *testing.T) {
	dir := t.TempDir()
	s := openDir(t, dir, nil)
	r1 := mustPutRequest(t, s, testRequest(1, "bot-1"))
	mustPutRequest(t, s, testRequest(2, "bot-2"))
	other := testRequest(3, "bot-3")
	other.ClientAddr = "198.51.100.1"
	mustPutRequest(t, s, other)

	if _, err := s.Apply(ctx, func(tx *Txn) error {
		got, ok, err := tx.AgentRequest("bot-1")
		if err != nil || !ok || !reflect.DeepEqual(got, r1) {
			t.Errorf("AgentRequest(bot-1) = %+v, %v, %v", got, ok, err)
		}
		if _, ok, err := tx.AgentRequest("nobody"); ok || err != nil {
			t.Errorf("AgentRequest(nobody) = %v, %v", ok, err)
		}
		if total, from := tx.PendingRequests("192.0.2.7", reqT0); total != 3 || from != 2 {
			t.Errorf("pending at t0 = %d, %d from the address; want 3, 2", total, from)
		}
		if total, _ := tx.PendingRequests("192.0.2.7", reqT0.Add(8*24*time.Hour)); total != 0 {
			t.Errorf("pending after expiry = %d", total)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// A new state of a request: its agent cannot change.
	changed := r1
	changed.AgentID = "bot-9"
	if _, err := s.Apply(ctx, func(tx *Txn) error { _, err := tx.PutRequest(changed); return err }); !errors.Is(err, ErrIDChanged) {
		t.Errorf("changing the agent = %v, want ErrIDChanged", err)
	}
	decided := r1
	decided.Status, decided.DecidedAt, decided.DecidedBy = RequestDenied, reqT0.Add(time.Hour), "admin:x"
	mustPutRequest(t, s, decided)

	// The index of pending requests is rebuilt at Open.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openDir(t, dir, nil)
	if got, err := s.GetRequest(r1.ID); err != nil || got.Status != RequestDenied {
		t.Errorf("after reopen: %+v, %v", got, err)
	}
	s.mu.Lock()
	total, from := s.pendingCounts("192.0.2.7", reqT0)
	s.mu.Unlock()
	if total != 2 || from != 1 {
		t.Errorf("pending after reopen = %d, %d; want 2, 1", total, from)
	}
	all, err := s.ListRequests(nil)
	if err != nil || len(all) != 3 {
		t.Fatalf("ListRequests = %d, %v", len(all), err)
	}
	pending, _ := s.ListRequests(func(r *AccessRequest) bool { return r.PendingAt(reqT0) })
	if len(pending) != 2 {
		t.Errorf("pending list = %+v", pending)
	}
}

func TestRequestPurge(t *testing.T) {
	s := openMem(t, nil)
	old := testRequest(1, "bot-1")
	mustPutRequest(t, s, old)
	// The agent's later request replaces it in the index.
	newer := testRequest(2, "bot-1")
	newer.ForgetAt = reqT0.Add(100 * 24 * time.Hour)
	mustPutRequest(t, s, newer)
	lone := testRequest(3, "bot-3")
	mustPutRequest(t, s, lone)

	if n := s.purgeRequests(reqT0.Add(14*24*time.Hour - time.Second)); n != 0 {
		t.Errorf("purge before ForgetAt removed %d", n)
	}
	if n := s.purgeRequests(reqT0.Add(15 * 24 * time.Hour)); n != 2 {
		t.Fatalf("purge removed %d, want 2", n)
	}
	for _, r := range []AccessRequest{old, lone} {
		if _, err := s.GetRequest(r.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("purged request %s: %v", r.ID, err)
		}
	}
	if _, err := s.Apply(ctx, func(tx *Txn) error {
		if got, ok, err := tx.AgentRequest("bot-1"); !ok || err != nil || got.ID != newer.ID {
			t.Errorf("bot-1's index after the purge of its older request: %+v, %v, %v", got, ok, err)
		}
		if _, ok, _ := tx.AgentRequest("bot-3"); ok {
			t.Error("bot-3's index survived the purge of its request")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.db.Get(agentRequestKey("bot-3")); err == nil {
		t.Error("the index entry of a purged request is still stored")
	}
}

func TestCorruptRequestRefusesOpen(t *testing.T) {
	dir := t.TempDir()
	s := openDir(t, dir, nil)
	mustPutRequest(t, s, testRequest(1, "bot-1"))
	if err := s.db.Set(requestKey(id(2)), []byte{1, 3, 9}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, quietOptions()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open with a corrupt request = %v, want ErrCorrupt", err)
	}
}

func TestRequestAndAuditPurgeInBackground(t *testing.T) {
	opts := quietOptions()
	opts.LastUsedFlushInterval = time.Millisecond
	opts.AuditRetention = time.Hour
	s := openMem(t, opts)
	gone := testRequest(1, "bot-1") // ForgetAt long past
	kept := testRequest(2, "bot-2")
	kept.ForgetAt = time.Now().Add(time.Hour)
	mustPutRequest(t, s, gone)
	mustPutRequest(t, s, kept)
	if _, err := s.Audit(ctx,
		AuditEntry{Time: time.Now().Add(-2 * time.Hour), Actor: "a", Action: "old", Outcome: "ok"},
		AuditEntry{Actor: "a", Action: "new", Outcome: "ok"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := s.GetRequest(gone.ID)
		es, _, _ := s.ListAudit(AuditQuery{})
		if errors.Is(err, ErrNotFound) && len(es) == 1 {
			if es[0].Action != "new" {
				t.Fatalf("the purge kept %+v", es[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the background purges did not run in 10s: request %v, %d entries", err, len(es))
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := s.GetRequest(kept.ID); err != nil {
		t.Errorf("the purge removed a request to keep: %v", err)
	}
}
