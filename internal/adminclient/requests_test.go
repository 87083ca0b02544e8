package adminclient_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/verifyd/verifyd/internal/adminclient"
	"github.com/verifyd/verifyd/internal/adminclient/admintest"
)

func TestAccessRequests(t *testing.T) {
	t.Parallel()
	c, srv := newTestClient(t)
	anon, err := adminclient.New(srv.URL, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	spec := adminclient.AccessRequestSpec{AgentID: "bot-9", Name: "Bot 9", Description: "please", CallbackURL: "https://bot.example/cb"}
	tk, err := anon.RequestAccess(ctx, spec)
	if err != nil || len(tk.RequestToken) != 43 || tk.Status != adminclient.RequestPending || tk.ExpiresAt.IsZero() {
		t.Fatalf("RequestAccess = %+v, %v", tk, err)
	}
	if again, err := anon.RequestAccess(ctx, spec); err != nil || again.RequestToken != tk.RequestToken {
		t.Fatalf("repeat = %+v, %v", again, err)
	}
	st, err := anon.RequestStatus(ctx, tk.RequestToken)
	if err != nil || st.Status != adminclient.RequestPending || st.RequestID != tk.RequestID || st.AgentID != "bot-9" {
		t.Fatalf("RequestStatus = %+v, %v", st, err)
	}
	l, err := c.ListRequests(ctx, "")
	if err != nil || len(l) != 1 || l[0].ID != tk.RequestID || l[0].CallbackURL != spec.CallbackURL || l[0].ClientAddr != "127.0.0.1" {
		t.Fatalf("ListRequests = %+v, %v", l, err)
	}
	a, err := c.ApproveRequest(ctx, tk.RequestID, adminclient.ApproveRequest{Roles: []string{"agent", "reader"}, ExpiresIn: adminclient.Duration(time.Hour)})
	if err != nil || len(a.AgentKey) != 43 || a.AgentID != "bot-9" || len(a.Roles) != 2 || a.ExpiresAt.IsZero() {
		t.Fatalf("ApproveRequest = %+v, %v", a, err)
	}
	var ae *adminclient.APIError
	if _, err := c.ApproveRequest(ctx, tk.RequestID, adminclient.ApproveRequest{}); !errors.As(err, &ae) || ae.Status != http.StatusConflict {
		t.Fatalf("approve twice = %v", err)
	}
	if _, err := anon.RequestAccess(ctx, adminclient.AccessRequestSpec{AgentID: "bot-9"}); !errors.As(err, &ae) || ae.Status != http.StatusConflict {
		t.Fatalf("request with a live key = %v", err)
	}
	if r, err := c.GetRequest(ctx, tk.RequestID); err != nil || r.Status != adminclient.RequestApproved || r.KeyID != a.KeyID {
		t.Fatalf("GetRequest = %+v, %v", r, err)
	}
	rev, err := c.RevokeAgent(ctx, "bot-9")
	if err != nil || len(rev.Revoked) != 1 || rev.Revoked[0] != a.KeyID {
		t.Fatalf("RevokeAgent = %+v, %v", rev, err)
	}
	tk2, err := anon.RequestAccess(ctx, adminclient.AccessRequestSpec{AgentID: "bot-9"})
	if err != nil {
		t.Fatal(err)
	}
	if d, err := c.DenyRequest(ctx, tk2.RequestToken); err != nil || d.Status != adminclient.RequestDenied {
		t.Fatalf("DenyRequest = %+v, %v", d, err)
	}
	if _, err := anon.RequestStatus(ctx, strings.Repeat("A", 43)); !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
		t.Fatalf("status of an unknown token = %v", err)
	}

	p, err := c.Audit(ctx, adminclient.AuditQuery{OldestFirst: true, Since: time.Now().Add(-time.Hour)})
	if err != nil || len(p.Entries) != 4 || p.NextCursor != "" {
		t.Fatalf("Audit = %+v, %v", p, err)
	}
	for i, want := range []string{"request.approve ok", "request.approve conflict", "agent.revoke ok", "request.deny ok"} {
		if got := p.Entries[i].Action + " " + p.Entries[i].Outcome; got != want {
			t.Errorf("entry %d: %s, want %s", i, got, want)
		}
	}
	p, err = c.Audit(ctx, adminclient.AuditQuery{Limit: 2})
	if err != nil || len(p.Entries) != 2 || p.NextCursor == "" {
		t.Fatalf("first page = %+v, %v", p, err)
	}
	p, err = c.Audit(ctx, adminclient.AuditQuery{Limit: 2, Cursor: p.NextCursor})
	if err != nil || len(p.Entries) != 2 || p.NextCursor != "" {
		t.Fatalf("second page = %+v, %v", p, err)
	}
	if _, err := anon.Audit(ctx, adminclient.AuditQuery{}); !errors.Is(err, adminclient.ErrNoAdminKey) {
		t.Errorf("Audit without an admin key = %v", err)
	}
}

func TestAccessRequestSecretsStayOut(t *testing.T) {
	t.Parallel()
	const token = "rTok3nrTok3nrTok3nrTok3nrTok3nrTok3nrTok3nA"
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("x", "ticket", adminclient.AccessTicket{RequestID: "id", RequestToken: token},
		"approval", adminclient.Approval{AgentID: "a", AgentKey: token})
	if strings.Contains(buf.String(), token) {
		t.Errorf("a secret was logged: %s", buf.String())
	}
	// Transport errors do not carry the token of the URL.
	c, err := adminclient.New("http://127.0.0.1:1", "", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RequestStatus(t.Context(), token); err == nil || strings.Contains(err.Error(), token) {
		t.Errorf("RequestStatus to nowhere = %v", err)
	}
}

func TestAccessRequestArgumentsBeforeRequest(t *testing.T) {
	t.Parallel()
	srv := admintest.NewServer(testAdminKey)
	t.Cleanup(srv.Close)
	c, err := adminclient.New(srv.URL, testAdminKey, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for name, call := range map[string]func() error{
		"no agent":     func() error { _, err := c.RequestAccess(ctx, adminclient.AccessRequestSpec{}); return err },
		"status path":  func() error { _, err := c.RequestStatus(ctx, "../admin/keys"); return err },
		"approve path": func() error { _, err := c.ApproveRequest(ctx, "a/b", adminclient.ApproveRequest{}); return err },
		"approve negative": func() error {
			_, err := c.ApproveRequest(ctx, "abc", adminclient.ApproveRequest{ExpiresIn: -1})
			return err
		},
		"deny empty":     func() error { _, err := c.DenyRequest(ctx, ""); return err },
		"agent path":     func() error { _, err := c.RevokeAgent(ctx, "a/b"); return err },
		"agent empty":    func() error { _, err := c.RevokeAgent(ctx, ""); return err },
		"negative limit": func() error { _, err := c.Audit(ctx, adminclient.AuditQuery{Limit: -1}); return err },
	} {
		if err := call(); !errors.Is(err, adminclient.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
		}
	}
	if n := srv.Connections(); n != 0 {
		t.Errorf("server accepted %d connections, want 0", n)
	}
}
