package verify

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/verify/credential"
)

// memSink is an AuditSink that keeps what it receives.
type memSink struct {
	mu      sync.Mutex
	entries []keystore.AuditEntry
}

func (s *memSink) WriteAudit(e keystore.AuditEntry) {
	s.mu.Lock()
	s.entries = append(s.entries, e)
	s.mu.Unlock()
}

func (s *memSink) all() []keystore.AuditEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]keystore.AuditEntry(nil), s.entries...)
}

// newRequestFixture is newFixture whose Manager has request options o and
// a sink.
func newRequestFixture(t *testing.T, o RequestOptions) (*fixture, *memSink) {
	t.Helper()
	f := newFixture(t)
	ck, _ := credential.NewChecksumKey()
	minter, err := credential.NewMinter(ck)
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	f.v, err = New(f.store, minter, &Options{Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	f.m, err = NewManagerWith(f.store, minter, keystore.Sum("admin-key-for-tests"), &ManagerOptions{Requests: o, AuditSink: sink, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return f, sink
}

var adminCtx = WithActor(context.Background(), AdminActor(keystore.Sum("admin-key-for-tests")))

func (f *fixture) ask(t *testing.T, spec AccessSpec) AccessTicket {
	t.Helper()
	if spec.ClientAddr == "" {
		spec.ClientAddr = "192.0.2.1"
	}
	tk, err := f.m.RequestAccess(context.Background(), spec)
	if err != nil {
		t.Fatalf("RequestAccess(%+v): %v", spec, err)
	}
	return tk
}

var tokenShape = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

func TestRequestAccessRepeatsTheToken(t *testing.T) {
	f, _ := newRequestFixture(t, RequestOptions{})
	spec := AccessSpec{AgentID: "bot-7", Name: "Bot 7", Description: "line 1\nline 2", CallbackURL: "https://bot.example/cb"}
	first := f.ask(t, spec)
	if !tokenShape.MatchString(first.Token) || first.Repeat || first.Request.Status != keystore.RequestPending ||
		!first.Request.ExpiresAt.Equal(f.clock.Now().Add(DefaultRequestTTL)) || len(first.Request.ID) != 22 {
		t.Fatalf("first request: %+v", first)
	}
	if first.Request.TokenDigest != keystore.Sum(first.Token) {
		t.Error("the stored digest is not the token's SHA-256")
	}
	// The same request again, from elsewhere and later: the same token.
	f.clock.Advance(time.Hour)
	spec.ClientAddr = "198.51.100.9"
	again := f.ask(t, spec)
	if !again.Repeat || again.Token != first.Token || again.Request.ID != first.Request.ID {
		t.Fatalf("repeat: %+v, want the token of %+v", again, first)
	}
	// Other details while it is pending: refused, nothing changes.
	spec.Description = "something else"
	if _, err := f.m.RequestAccess(context.Background(), spec); !errors.Is(err, ErrRequestPending) {
		t.Fatalf("different details = %v, want ErrRequestPending", err)
	}
	all, _ := f.m.ListRequests("all")
	if len(all) != 1 || all[0].Description != "line 1\nline 2" {
		t.Fatalf("requests after the refused one: %+v", all)
	}
	// The token reads the status; a request ID or a near miss does not.
	if r, err := f.m.RequestStatus(first.Token); err != nil || r.ID != first.Request.ID || f.m.RequestState(&r) != "pending" {
		t.Errorf("status = %+v, %v", r, err)
	}
	flipped := []byte(first.Token)
	flipped[0] ^= 1
	for _, bad := range []string{first.Request.ID, string(flipped), "", first.Token + "A", strings.Repeat("!", 43)} {
		if _, err := f.m.RequestStatus(bad); !errors.Is(err, ErrRequestNotFound) {
			t.Errorf("status of %q = %v, want ErrRequestNotFound", bad, err)
		}
	}
}

func TestRequestAccessRejectsBadInput(t *testing.T) {
	f, _ := newRequestFixture(t, RequestOptions{})
	for name, spec := range map[string]AccessSpec{
		"no agent":          {},
		"agent with slash":  {AgentID: "a/b"},
		"agent with colon":  {AgentID: "a:b"},
		"agent with space":  {AgentID: "a b"},
		"agent too long":    {AgentID: strings.Repeat("a", MaxAgentIDLen+1)},
		"name too long":     {AgentID: "a", Name: strings.Repeat("n", MaxRequestNameLen+1)},
		"name control":      {AgentID: "a", Name: "a\x1bb"},
		"description":       {AgentID: "a", Description: strings.Repeat("d", MaxRequestDescription+1)},
		"invalid UTF-8":     {AgentID: "a", Description: "\xff"},
		"callback scheme":   {AgentID: "a", CallbackURL: "ftp://x.example/"},
		"callback relative": {AgentID: "a", CallbackURL: "/cb"},
		"callback userinfo": {AgentID: "a", CallbackURL: "https://u:p@x.example/"},
		"callback fragment": {AgentID: "a", CallbackURL: "https://x.example/#f"},
		"callback space":    {AgentID: "a", CallbackURL: "https://x.example/a b"},
		"callback too long": {AgentID: "a", CallbackURL: "https://x.example/" + strings.Repeat("p", MaxRequestCallbackURL)},
		"javascript":        {AgentID: "a", CallbackURL: "javascript:alert(1)"},
	} {
		spec.ClientAddr = "192.0.2.1"
		var ise *InvalidSpecError
		if _, err := f.m.RequestAccess(context.Background(), spec); !errors.As(err, &ise) {
			t.Errorf("%s: %v, want an *InvalidSpecError", name, err)
		}
	}
	if all, err := f.m.ListRequests("all"); err != nil || len(all) != 0 {
		t.Fatalf("bad input wrote requests: %+v, %v", all, err)
	}
	if _, err := f.m.ListRequests("bogus"); err == nil {
		t.Error("ListRequests of an unknown status succeeded")
	}
}

func TestRequestAccessBounds(t *testing.T) {
	f, _ := newRequestFixture(t, RequestOptions{MaxPending: 3, MaxPendingPerAddress: 2, TTL: time.Hour})
	ask := func(agent, addr string) error {
		_, err := f.m.RequestAccess(context.Background(), AccessSpec{AgentID: agent, ClientAddr: addr})
		return err
	}
	for i, tc := range []struct {
		agent, addr string
		ok          bool
	}{
		{"a1", "192.0.2.1", true},
		{"a2", "192.0.2.1", true},
		{"a3", "192.0.2.1", false}, // the address's bound
		{"a1", "192.0.2.1", true},  // a repeat is not a new request
		{"b1", "192.0.2.2", true},
		{"b2", "192.0.2.3", false}, // the overall bound
	} {
		err := ask(tc.agent, tc.addr)
		if tc.ok != (err == nil) || !tc.ok && !errors.Is(err, ErrTooManyRequests) {
			t.Fatalf("step %d (%s from %s) = %v, want ok=%v", i, tc.agent, tc.addr, err, tc.ok)
		}
	}
	// Expired requests do not count.
	f.clock.Advance(time.Hour)
	if err := ask("a3", "192.0.2.1"); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
}

func TestApproveDenyAndExpire(t *testing.T) {
	f, _ := newRequestFixture(t, RequestOptions{TTL: time.Hour})
	tk := f.ask(t, AccessSpec{AgentID: "bot-1", Name: "Bot One"})

	a, err := f.m.ApproveRequest(adminCtx, tk.Request.ID, Grant{})
	if err != nil {
		t.Fatal(err)
	}
	k := a.Key
	if len(a.Secret) != 43 || k.Kind != keystore.KindAgent || k.Subject != "bot-1" || k.Name != "Bot One" ||
		fmt.Sprint(k.Roles) != "[agent]" || fmt.Sprint(k.Scopes) != "[mailbox:bot-1:*]" ||
		!k.ExpiresAt.Equal(f.clock.Now().Add(DefaultAgentValidity)) || k.Metadata["access_request"] != tk.Request.ID {
		t.Fatalf("approval key = %+v", k)
	}
	if a.Request.Status != keystore.RequestApproved || a.Request.KeyID != k.ID || a.Request.DecidedBy != f.m.AdminActor() {
		t.Fatalf("approved request = %+v", a.Request)
	}
	if res := f.v.Verify(a.Secret, "mailbox:bot-1:read"); !res.Allowed() {
		t.Errorf("the approved key does not verify: %+v", res)
	}
	if res := f.v.Verify(a.Secret, "mailbox:bot-2:read"); res.Allowed() {
		t.Error("the approved key reaches another mailbox")
	}
	// Decided once: approve twice, deny after approve.
	var se *RequestStateError
	if _, err := f.m.ApproveRequest(adminCtx, tk.Request.ID, Grant{}); !errors.As(err, &se) || se.State != "approved" {
		t.Errorf("approve twice = %v", err)
	}
	if _, err := f.m.DenyRequest(adminCtx, tk.Token); !errors.As(err, &se) {
		t.Errorf("deny after approve = %v", err)
	}
	if st, _ := f.m.RequestStatus(tk.Token); f.m.RequestState(&st) != "approved" || st.KeyID != k.ID {
		t.Errorf("status after approval = %+v", st)
	}
	// Another subject's keys of other kinds do not count (the endpoint is
	// open and must not tell which subjects have keys).
	f.create(t, KeySpec{Subject: "human-1"})
	if _, err := f.m.DenyRequest(adminCtx, f.ask(t, AccessSpec{AgentID: "human-1"}).Request.ID); err != nil {
		t.Fatal(err)
	}
	// An agent holding a live key cannot ask again, until it is revoked.
	if _, err := f.m.RequestAccess(context.Background(), AccessSpec{AgentID: "bot-1", ClientAddr: "x"}); !errors.Is(err, ErrAgentHasKey) {
		t.Fatalf("request with a live key = %v", err)
	}
	revoked, err := f.m.RevokeAgent(adminCtx, "bot-1")
	if err != nil || len(revoked) != 1 || revoked[0].ID != k.ID || !revoked[0].Revoked() {
		t.Fatalf("RevokeAgent = %+v, %v", revoked, err)
	}
	if res := f.v.Verify(a.Secret, ""); res.Allowed() {
		t.Error("the agent's key verifies after RevokeAgent")
	}
	if _, err := f.m.RevokeAgent(adminCtx, "nobody"); !errors.Is(err, keystore.ErrNotFound) {
		t.Errorf("RevokeAgent of an unknown agent = %v", err)
	}
	again := f.ask(t, AccessSpec{AgentID: "bot-1", Name: "Bot One"})
	if again.Repeat || again.Token == tk.Token {
		t.Fatalf("the new request after revocation reuses the old one: %+v", again)
	}

	// Deny by token, then approve: refused.
	if r, err := f.m.DenyRequest(adminCtx, again.Token); err != nil || r.Status != keystore.RequestDenied {
		t.Fatalf("deny = %+v, %v", r, err)
	}
	if _, err := f.m.ApproveRequest(adminCtx, again.Request.ID, Grant{}); !errors.As(err, &se) || se.State != "denied" {
		t.Errorf("approve after deny = %v", err)
	}

	// Expiry: a pending request past its TTL cannot be decided.
	late := f.ask(t, AccessSpec{AgentID: "bot-2"})
	f.clock.Advance(time.Hour)
	if st, _ := f.m.RequestStatus(late.Token); f.m.RequestState(&st) != "expired" {
		t.Errorf("state after the TTL = %q", f.m.RequestState(&st))
	}
	if _, err := f.m.ApproveRequest(adminCtx, late.Request.ID, Grant{}); !errors.As(err, &se) || se.State != "expired" {
		t.Errorf("approve an expired request = %v", err)
	}
	if l, _ := f.m.ListRequests("expired"); len(l) != 1 || l[0].ID != late.Request.ID {
		t.Errorf("expired list = %+v", l)
	}
	if fresh := f.ask(t, AccessSpec{AgentID: "bot-2"}); fresh.Repeat || fresh.Token == late.Token {
		t.Errorf("asking after expiry returned the expired request: %+v", fresh)
	}

	// Unknown references and invalid grants change nothing.
	for _, ref := range []string{"", "short", strings.Repeat("A", 22), strings.Repeat("A", 43), "../../x"} {
		if _, err := f.m.ApproveRequest(adminCtx, ref, Grant{}); !errors.Is(err, ErrRequestNotFound) {
			t.Errorf("approve %q = %v", ref, err)
		}
	}
	third := f.ask(t, AccessSpec{AgentID: "bot-3"})
	var ise *InvalidSpecError
	if _, err := f.m.ApproveRequest(adminCtx, third.Request.ID, Grant{Scopes: []string{"bad scope"}}); !errors.As(err, &ise) {
		t.Errorf("approve with an invalid scope = %v", err)
	}
	if st, _ := f.m.RequestStatus(third.Token); st.Status != keystore.RequestPending {
		t.Errorf("a refused approval changed the request: %+v", st)
	}
	if keys, _ := f.m.ListKeys("bot-3"); len(keys) != 0 {
		t.Errorf("a refused approval created keys: %+v", keys)
	}
	a3, err := f.m.ApproveRequest(adminCtx, third.Request.ID, Grant{Roles: []string{}, Scopes: []string{"tool:x:*"}, ExpiresIn: time.Hour})
	if err != nil || len(a3.Key.Roles) != 0 || fmt.Sprint(a3.Key.Scopes) != "[tool:x:*]" || !a3.Key.ExpiresAt.Equal(f.clock.Now().Add(time.Hour)) {
		t.Errorf("approve with a grant = %+v, %v", a3.Key, err)
	}
}

func TestRequestOptionsValidate(t *testing.T) {
	for name, o := range map[string]RequestOptions{
		"ttl":      {TTL: -1},
		"bounds":   {MaxPending: 2, MaxPendingPerAddress: 3},
		"validity": {KeyValidity: -time.Hour},
		"role":     {DefaultRoles: []string{"a b"}},
		"scope":    {DefaultScopes: []string{"mailbox:${sub}:"}},
	} {
		o.EnsureDefaults()
		if err := o.Validate(); err == nil {
			t.Errorf("%s: valid", name)
		}
	}
	var o RequestOptions
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
}
