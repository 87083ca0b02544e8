package verify

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/rbac"
	"github.com/verifyd/verifyd/verify/credential"
)

// The access-request flow (AgentMsg's): an agent asks for a key with
// [Manager.RequestAccess] and receives a request token; it polls
// [Manager.RequestStatus] with the token; an administrator lists the
// pending requests and approves ([Manager.ApproveRequest], which creates an
// agent key and returns its secret once, to the administrator) or denies
// them. A pending request expires after [RequestOptions.TTL].
//
// # Request tokens
//
// A repeat request for an agent whose request is pending answers the same
// token, and only the token's SHA-256 is stored. Both hold because the
// token is derived, not drawn: it is HMAC-SHA256, under a 32-byte key kept
// in the store's meta values, of a random 16-byte nonce stored with the
// request and the agent's ID, encoded as 43 base64url characters. A repeat
// recomputes it from the stored nonce. The request's ID is the base64url
// encoding of the first 16 bytes of the token's SHA-256, so that a token
// finds its request with one read and an ID says nothing about the token.
//
// What this protects: a dump of the requests, a backup of them, or the
// admin listing never shows a token. What it does not: whoever holds the
// whole store (the key included) can derive the tokens, and whoever can
// send the agent's exact request (ID, name, description and callback URL)
// is answered its token — which is AgentMsg's rule. So a request token is a
// handle for polling, not a credential: the status it reads never carries
// the key, which the approving administrator receives and passes on.

// MaxRequestTTL bounds RequestOptions.TTL (and, ten times over,
// KeyValidity): a year.
const MaxRequestTTL = 365 * 24 * time.Hour

// Defaults of RequestOptions.
const (
	DefaultRequestTTL            = 7 * 24 * time.Hour
	DefaultMaxPendingRequests    = 1000
	DefaultMaxPendingPerAddress  = 10
	DefaultApprovedAgentValidity = DefaultAgentValidity
)

// Limits on what an agent sends with its request, in bytes.
const (
	MaxAgentIDLen          = 128
	MaxRequestNameLen      = 128
	MaxRequestDescription  = 1024
	MaxRequestCallbackURL  = keystore.MaxCallbackURLLen
	requestTokenLen        = 43
	requestIDLen           = 22
	metaRequestTokenKey    = "request_token_key"
	requestTokenDerivation = "verifyd request token v1\x00"
)

// RequestOptions configures the access-request flow. The YAML keys are
// those of the daemon's "requests" section.
type RequestOptions struct {
	// TTL is how long a request waits for a decision; a decided or
	// expired request is kept for status polls as long again, then
	// deleted. The default value is 168h (7 days).
	TTL time.Duration `yaml:"ttl"`
	// MaxPending bounds the pending requests; more are refused (429).
	// The default value is 1000.
	MaxPending int `yaml:"max_pending"`
	// MaxPendingPerAddress bounds the pending requests from one client
	// address. The default value is 10.
	MaxPendingPerAddress int `yaml:"max_pending_per_address"`
	// KeyValidity is how long an approved agent's key is valid unless the
	// approval says otherwise. The default value is 2160h (90 days).
	KeyValidity time.Duration `yaml:"key_validity"`
	// DefaultRoles are the roles of an approved agent's key unless the
	// approval names others. nil means [agent]; an empty list, none.
	DefaultRoles []string `yaml:"default_roles"`
	// DefaultScopes are the scopes of an approved agent's key unless the
	// approval names others; "${sub}" in them is replaced by the agent's
	// ID. nil means [mailbox:${sub}:*] (an agent reaches its own mailbox);
	// an empty list, none.
	DefaultScopes []string `yaml:"default_scopes"`
}

// EnsureDefaults sets every zero field of o to its default value.
func (o *RequestOptions) EnsureDefaults() {
	if o.TTL == 0 {
		o.TTL = DefaultRequestTTL
	}
	if o.MaxPending == 0 {
		o.MaxPending = DefaultMaxPendingRequests
	}
	if o.MaxPendingPerAddress == 0 {
		o.MaxPendingPerAddress = DefaultMaxPendingPerAddress
	}
	if o.KeyValidity == 0 {
		o.KeyValidity = DefaultApprovedAgentValidity
	}
	if o.DefaultRoles == nil {
		o.DefaultRoles = []string{"agent"}
	}
	if o.DefaultScopes == nil {
		o.DefaultScopes = []string{"mailbox:${sub}:*"}
	}
}

// Validate reports every invalid field of o, joined into one error.
func (o *RequestOptions) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("verify: invalid request options: "+format, args...))
	}
	if o.TTL <= 0 || o.TTL > MaxRequestTTL {
		bad("requests.ttl %v is not a positive duration of at most %v", o.TTL, MaxRequestTTL)
	}
	if o.MaxPending <= 0 || o.MaxPendingPerAddress <= 0 || o.MaxPendingPerAddress > o.MaxPending {
		bad("requests.max_pending (%d) and max_pending_per_address (%d) must be positive, the second at most the first", o.MaxPending, o.MaxPendingPerAddress)
	}
	if o.KeyValidity <= 0 || o.KeyValidity > MaxRequestTTL*10 {
		bad("requests.key_validity %v is not a positive duration of at most %v", o.KeyValidity, MaxRequestTTL*10)
	}
	for _, r := range o.DefaultRoles {
		if !validName(r) {
			bad("requests.default_roles: %q is not a role name", r)
		}
	}
	for _, p := range fillSub(o.DefaultScopes, "agent-0") {
		if err := rbac.ValidatePattern(p); err != nil {
			bad("requests.default_scopes: %v", err)
		}
	}
	return errors.Join(errs...)
}

// fillSub returns patterns with "${sub}" replaced by agentID.
func fillSub(patterns []string, agentID string) []string {
	out := make([]string, len(patterns))
	for i, p := range patterns {
		out[i] = strings.ReplaceAll(p, "${sub}", agentID)
	}
	return out
}

// Errors of the access-request flow.
var (
	// ErrRequestNotFound reports an unknown request token or ID.
	ErrRequestNotFound = errors.New("verify: no such access request")
	// ErrAgentHasKey reports a request from an agent that holds a live
	// agent key (kind agent, its ID as subject): it must be revoked before
	// the agent may ask again. Only agent keys count, so that the open
	// endpoint does not tell whether any other subject has keys.
	ErrAgentHasKey = errors.New("verify: the agent already holds a live key")
	// ErrRequestPending reports a request for an agent whose pending
	// request says something else (name, description or callback URL).
	ErrRequestPending = errors.New("verify: another request of this agent is pending")
	// ErrTooManyRequests reports that the bound on pending requests, in
	// all or from the client's address, is reached.
	ErrTooManyRequests = errors.New("verify: too many pending access requests")
)

// A RequestStateError reports a decision asked for a request that is not
// pending: State is "approved", "denied" or "expired".
type RequestStateError struct {
	State string
}

func (e *RequestStateError) Error() string {
	return "verify: the access request is " + e.State + ", not pending"
}

// An AccessSpec is what an agent sends to ask for a key.
type AccessSpec struct {
	AgentID     string // required: 1 to 128 characters of A-Z a-z 0-9 . _ @ -
	Name        string // optional, at most 128 bytes of printable UTF-8
	Description string // optional, at most 1024 bytes of UTF-8 (newlines and tabs allowed)
	CallbackURL string // optional http or https URL; stored only, never called
	ClientAddr  string // the address the request came from (set by the transport)
}

// An AccessTicket answers an access request.
type AccessTicket struct {
	Request keystore.AccessRequest
	Token   string // the request token
	Repeat  bool   // the agent's pending request, asked again
}

// RequestAccess records an agent's request for a key, or, for an agent
// whose identical request is pending, answers that request again with the
// same token. It fails with an *InvalidSpecError for invalid input,
// ErrAgentHasKey, ErrRequestPending, or ErrTooManyRequests; nothing is
// written then. Requests are not audited: they are not administrative
// actions, and the request itself is the record.
func (m *Manager) RequestAccess(ctx context.Context, spec AccessSpec) (AccessTicket, error) {
	if problems := checkAccessSpec(spec); len(problems) > 0 {
		return AccessTicket{}, &InvalidSpecError{Problems: problems}
	}
	key, err := m.requestTokenKey(ctx)
	if err != nil {
		return AccessTicket{}, err
	}
	now := m.now().UTC()
	var t AccessTicket
	_, err = m.store.Apply(ctx, func(tx *keystore.Txn) error {
		recs, err := tx.List(spec.AgentID)
		if err != nil {
			return err
		}
		for i := range recs {
			if recs[i].Kind == keystore.KindAgent && live(&recs[i], now) {
				return ErrAgentHasKey
			}
		}
		prev, ok, err := tx.AgentRequest(spec.AgentID)
		if err != nil {
			return err
		}
		if ok && prev.PendingAt(now) {
			if prev.Name != spec.Name || prev.Description != spec.Description || prev.CallbackURL != spec.CallbackURL {
				return ErrRequestPending
			}
			t = AccessTicket{Request: prev, Token: requestToken(key, prev.AgentID, prev.Nonce), Repeat: true}
			return nil
		}
		total, fromAddr := tx.PendingRequests(spec.ClientAddr, now)
		switch {
		case fromAddr >= m.requests.MaxPendingPerAddress:
			return fmt.Errorf("%w from this address (at most %d); wait for decisions or their expiry", ErrTooManyRequests, m.requests.MaxPendingPerAddress)
		case total >= m.requests.MaxPending:
			return fmt.Errorf("%w (at most %d); retry later", ErrTooManyRequests, m.requests.MaxPending)
		}
		r := keystore.AccessRequest{
			AgentID: spec.AgentID, Name: spec.Name, Description: spec.Description, CallbackURL: spec.CallbackURL,
			ClientAddr: spec.ClientAddr, Status: keystore.RequestPending,
			CreatedAt: now, ExpiresAt: now.Add(m.requests.TTL), ForgetAt: now.Add(2 * m.requests.TTL),
		}
		if _, err := rand.Read(r.Nonce[:]); err != nil {
			return err
		}
		token := requestToken(key, r.AgentID, r.Nonce)
		r.TokenDigest = keystore.Sum(token)
		r.ID = requestID(r.TokenDigest)
		stored, err := tx.PutRequest(r)
		t = AccessTicket{Request: stored, Token: token}
		return err
	})
	if err != nil {
		return AccessTicket{}, err
	}
	return t, nil
}

// live reports whether r is a credential that still verifies at now.
func live(r *keystore.Record, now time.Time) bool {
	return !r.Revoked() && (r.ExpiresAt.IsZero() || now.Before(r.ExpiresAt))
}

// checkAccessSpec reports every problem with what an agent sent.
func checkAccessSpec(s AccessSpec) []string {
	var p []string
	if s.AgentID == "" || len(s.AgentID) > MaxAgentIDLen || strings.IndexFunc(s.AgentID, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("._@-", r))
	}) >= 0 {
		p = append(p, fmt.Sprintf("agent_id is required: 1 to %d characters of A-Z a-z 0-9 . _ @ -", MaxAgentIDLen))
	}
	if len(s.Name) > MaxRequestNameLen || !printable(s.Name, "") {
		p = append(p, fmt.Sprintf("name must be at most %d bytes of printable UTF-8", MaxRequestNameLen))
	}
	if len(s.Description) > MaxRequestDescription || !printable(s.Description, "\n\t") {
		p = append(p, fmt.Sprintf("description must be at most %d bytes of printable UTF-8 (newlines and tabs allowed)", MaxRequestDescription))
	}
	if s.CallbackURL != "" {
		if msg := checkCallbackURL(s.CallbackURL); msg != "" {
			p = append(p, "callback_url "+msg)
		}
	}
	if len(s.ClientAddr) > keystore.MaxTextLen || !printable(s.ClientAddr, "") {
		p = append(p, "the client address is not printable")
	}
	return p
}

// printable reports whether s is valid UTF-8 of printable characters and
// those of extra.
func printable(s, extra string) bool {
	return utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool {
		return !unicode.IsPrint(r) && !strings.ContainsRune(extra, r)
	}) < 0
}

// checkCallbackURL returns what is wrong with a callback URL, or "".
func checkCallbackURL(s string) string {
	if len(s) > MaxRequestCallbackURL {
		return fmt.Sprintf("is longer than %d bytes", MaxRequestCallbackURL)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return "must be printable ASCII without spaces (percent-encode the rest)"
		}
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "is not a URL"
	case u.Scheme != "http" && u.Scheme != "https":
		return "must be an http or https URL"
	case u.Host == "" || u.Hostname() == "":
		return "has no host"
	case u.User != nil:
		return "must not carry user information (a password would be stored)"
	case u.Fragment != "" || strings.Contains(s, "#"):
		return "must not have a fragment"
	}
	return ""
}

// requestToken derives the request token of a request of agentID with
// nonce, under key.
func requestToken(key []byte, agentID string, nonce [16]byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(requestTokenDerivation))
	mac.Write(nonce[:])
	mac.Write([]byte(agentID))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// requestID returns the ID of the request whose token has digest d.
func requestID(d keystore.Digest) string {
	return base64.RawURLEncoding.EncodeToString(d[:16])
}

// requestTokenKey returns the deployment's request token key, creating it
// on first use. It must not be called inside a transaction.
func (m *Manager) requestTokenKey(ctx context.Context) ([]byte, error) {
	m.requestKeyMu.Lock()
	defer m.requestKeyMu.Unlock()
	if m.requestKey != nil {
		return m.requestKey, nil
	}
	k, err := m.store.Meta(ctx, metaRequestTokenKey, func() ([]byte, error) {
		k := make([]byte, 32)
		_, err := rand.Read(k)
		return k, err
	})
	if err != nil {
		return nil, err
	}
	if len(k) != 32 {
		return nil, fmt.Errorf("verify: the stored request token key has %d bytes, want 32", len(k))
	}
	m.requestKey = k
	return k, nil
}

// isBase64URL reports whether s is n characters of the base64url alphabet.
func isBase64URL(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// RequestState returns the state of r now: "pending", "approved", "denied"
// or "expired" (pending past its ExpiresAt).
func (m *Manager) RequestState(r *keystore.AccessRequest) string {
	return requestState(r, m.now())
}

func requestState(r *keystore.AccessRequest, now time.Time) string {
	if r.Status == keystore.RequestPending && !r.PendingAt(now) {
		return "expired"
	}
	return r.Status.String()
}

// RequestStatus returns the request whose token is token, or
// ErrRequestNotFound (also for a string that cannot be a token, a request
// ID included: the agents' side knows requests by their tokens only).
func (m *Manager) RequestStatus(token string) (keystore.AccessRequest, error) {
	if !isBase64URL(token, requestTokenLen) {
		return keystore.AccessRequest{}, ErrRequestNotFound
	}
	return m.GetRequest(token)
}

// GetRequest returns the request ref names (its ID or its token), or
// ErrRequestNotFound.
func (m *Manager) GetRequest(ref string) (keystore.AccessRequest, error) {
	id, d, ok := resolveRequest(ref)
	if !ok {
		return keystore.AccessRequest{}, ErrRequestNotFound
	}
	r, err := m.store.GetRequest(id)
	if errors.Is(err, keystore.ErrNotFound) || err == nil && d != nil && subtle.ConstantTimeCompare(r.TokenDigest[:], d[:]) != 1 {
		return keystore.AccessRequest{}, ErrRequestNotFound
	}
	return r, err
}

// resolveRequest returns the ID a reference names: a request ID (22
// characters) or a request token (43), whose digest is then returned too.
func resolveRequest(ref string) (id string, d *keystore.Digest, ok bool) {
	switch {
	case isBase64URL(ref, requestIDLen):
		return ref, nil, true
	case isBase64URL(ref, requestTokenLen):
		sum := keystore.Sum(ref)
		return requestID(sum), &sum, true
	}
	return "", nil, false
}

// ListRequests returns the requests in state ("pending", "approved",
// "denied", "expired"; "" or "all" for every one), oldest first.
func (m *Manager) ListRequests(state string) ([]keystore.AccessRequest, error) {
	switch state {
	case "", "all", "pending", "approved", "denied", "expired":
	default:
		return nil, &InvalidSpecError{Problems: []string{fmt.Sprintf("status %q is not pending, approved, denied, expired or all", state)}}
	}
	now := m.now()
	return m.store.ListRequests(func(r *keystore.AccessRequest) bool {
		return state == "" || state == "all" || requestState(r, now) == state
	})
}

// A Grant is what an approval gives the agent's key; nil lists take the
// configured defaults ([RequestOptions]), a zero ExpiresIn the configured
// validity.
type Grant struct {
	Roles     []string
	Scopes    []string
	ExpiresIn time.Duration
}

// An Approval is the outcome of [Manager.ApproveRequest]: the decided
// request, the agent's new key, and its secret, shown this once.
type Approval struct {
	Request keystore.AccessRequest
	Key     keystore.Record
	Secret  string
}

// ApproveRequest approves the pending request ref names (its ID or its
// token) and creates the agent's key (kind agent, subject the agent's ID)
// in the same synced batch as the decision and its audit entry
// (request.approve). It fails with ErrRequestNotFound, a
// *RequestStateError for a request that is not pending (approving twice,
// or after a denial or expiry), or an *InvalidSpecError for an invalid
// grant; nothing is written then, and the failure is audited.
func (m *Manager) ApproveRequest(ctx context.Context, ref string, g Grant) (Approval, error) {
	var a Approval
	r, err := m.decide(ctx, ActionRequestApprove, ref, func(tx *keystore.Txn, r *keystore.AccessRequest, e *keystore.AuditEntry) error {
		spec := KeySpec{
			Subject: r.AgentID, Kind: keystore.KindAgent, Name: r.Name, Description: r.Description,
			Roles: g.Roles, Scopes: g.Scopes, ExpiresIn: g.ExpiresIn, Creator: "admin",
			Metadata: map[string]string{"access_request": r.ID},
		}
		if spec.Roles == nil {
			spec.Roles = m.requests.DefaultRoles
		}
		if spec.Scopes == nil {
			spec.Scopes = fillSub(m.requests.DefaultScopes, r.AgentID)
		}
		if spec.ExpiresIn == 0 {
			spec.ExpiresIn = m.requests.KeyValidity
		}
		if problems := checkSpec(spec); len(problems) > 0 {
			return &InvalidSpecError{Problems: problems}
		}
		id, err := credential.NewID()
		if err != nil {
			return err
		}
		secret, err := credential.NewAgentKey()
		if err != nil {
			return err
		}
		key, err := tx.Create(m.record(id, spec, secret))
		if err != nil {
			return err
		}
		r.Status, r.KeyID = keystore.RequestApproved, id
		e.Detail = "agent=" + auditText(r.AgentID) + " key=" + id
		a = Approval{Key: key, Secret: secret}
		return nil
	})
	if err != nil {
		return Approval{}, err
	}
	a.Request = r
	return a, nil
}

// DenyRequest denies the pending request ref names (its ID or its token),
// with the errors of ApproveRequest. The denial is audited (request.deny).
func (m *Manager) DenyRequest(ctx context.Context, ref string) (keystore.AccessRequest, error) {
	return m.decide(ctx, ActionRequestDeny, ref, func(_ *keystore.Txn, r *keystore.AccessRequest, e *keystore.AuditEntry) error {
		r.Status = keystore.RequestDenied
		e.Detail = "agent=" + auditText(r.AgentID)
		return nil
	})
}

// decide decides the pending request ref names: it resolves the reference,
// checks that the request is pending, lets fn decide (set Status and what
// goes with it, stage what the decision creates, fill in the audit
// detail), stamps the decision, and stores the request with its audit
// entry in one synced batch.
func (m *Manager) decide(ctx context.Context, action, ref string, fn func(*keystore.Txn, *keystore.AccessRequest, *keystore.AuditEntry) error) (keystore.AccessRequest, error) {
	e := m.entry(ctx, action, "")
	id, d, ok := resolveRequest(ref)
	if !ok {
		return keystore.AccessRequest{}, m.fail(ctx, e, ErrRequestNotFound)
	}
	e.Target = id
	var out keystore.AccessRequest
	err := m.audited(ctx, &e, func(tx *keystore.Txn) error {
		r, err := tx.Request(id)
		switch {
		case errors.Is(err, keystore.ErrNotFound):
			return ErrRequestNotFound
		case err != nil:
			return err
		case d != nil && subtle.ConstantTimeCompare(r.TokenDigest[:], d[:]) != 1:
			return ErrRequestNotFound
		}
		now := m.now().UTC()
		if st := requestState(&r, now); st != "pending" {
			return &RequestStateError{State: st}
		}
		if err := fn(tx, &r, &e); err != nil {
			return err
		}
		r.DecidedAt, r.DecidedBy, r.ForgetAt = now, e.Actor, now.Add(m.requests.TTL)
		out, err = tx.PutRequest(r)
		return err
	})
	return out, err
}

// RevokeAgent revokes every live key of the agent agentID (every key whose
// subject it is), in one synced batch with its audit entry
// (agent.revoke), and returns the keys it revoked. An agent without any
// key is keystore.ErrNotFound. Once it returns, the agent may ask for a
// key again.
func (m *Manager) RevokeAgent(ctx context.Context, agentID string) ([]keystore.Record, error) {
	e := m.entry(ctx, ActionAgentRevoke, agentID)
	var revoked []keystore.Record
	err := m.audited(ctx, &e, func(tx *keystore.Txn) error {
		recs, err := tx.List(agentID)
		if err != nil {
			return err
		}
		if agentID == "" || len(recs) == 0 {
			return keystore.ErrNotFound
		}
		now := m.now().UTC()
		for i := range recs {
			if !live(&recs[i], now) {
				continue
			}
			r, err := tx.Update(recs[i].ID, func(r *keystore.Record) error {
				r.RevokedAt = now
				return nil
			})
			if err != nil {
				return err
			}
			revoked = append(revoked, r)
		}
		e.Detail = fmt.Sprintf("revoked %d live keys of %d", len(revoked), len(recs))
		return nil
	})
	return revoked, err
}
