package adminclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultAddr is the daemon address used when New is given an empty one.
const DefaultAddr = "http://127.0.0.1:8080"

// DefaultTimeout bounds each request when New is given a zero timeout.
const DefaultTimeout = 10 * time.Second

// MaxResponseBytes is the largest response body the client reads. A longer
// answer fails the call rather than growing memory without bound.
const MaxResponseBytes = 16 << 20

// MaxIDLen is the longest key id the client sends. Ids are 22 characters
// today; the bound leaves room without letting a path grow without limit.
const MaxIDLen = 128

// ErrNoAdminKey is returned by the admin methods of a Client created without
// an admin key. No request is made.
var ErrNoAdminKey = errors.New("adminclient: no admin key")

// ErrInvalidArgument is wrapped by the errors of New and of methods whose
// arguments cannot be sent (an empty or malformed key id, a negative
// duration, an empty token). No request is made.
var ErrInvalidArgument = errors.New("adminclient: invalid argument")

// A Client talks to one verifyd daemon over HTTP. Create it with New. It is
// safe for concurrent use by multiple goroutines.
type Client struct {
	base     string // scheme://host[:port][/prefix], no trailing slash
	adminKey string
	hc       *http.Client
}

// New returns a client for the daemon at addr.
//
// addr is a URL with scheme http or https ("https://verifyd.internal:8443"),
// optionally with a path prefix, or a bare "host:port", which means http.
// An empty addr means [DefaultAddr]. User information, queries and fragments
// are refused.
//
// adminKey is sent as the X-Admin-Key header on admin calls; it may be empty
// for a client that only verifies, in which case admin calls fail with
// [ErrNoAdminKey]. It must be printable ASCII without spaces.
//
// timeout bounds each whole request, reading the answer included; zero means
// [DefaultTimeout]. The context passed to each method can shorten it.
//
// Errors wrap [ErrInvalidArgument]. They never contain the admin key.
func New(addr, adminKey string, timeout time.Duration) (*Client, error) {
	base, err := parseAddr(addr)
	if err != nil {
		return nil, err
	}
	for i := 0; i < len(adminKey); i++ {
		if c := adminKey[i]; c <= ' ' || c >= 0x7f {
			return nil, fmt.Errorf("%w: admin key contains a character not allowed in a header (space, control or non-ASCII)", ErrInvalidArgument)
		}
	}
	switch {
	case timeout < 0:
		return nil, fmt.Errorf("%w: negative timeout %v", ErrInvalidArgument, timeout)
	case timeout == 0:
		timeout = DefaultTimeout
	}
	return &Client{
		base:     base,
		adminKey: adminKey,
		hc: &http.Client{
			Timeout: timeout,
			// Never follow a redirect: it would replay X-Admin-Key to
			// whatever address the answer names.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// parseAddr turns the addr argument of New into a base URL.
func parseAddr(addr string) (string, error) {
	if addr == "" {
		addr = DefaultAddr
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		return "", fmt.Errorf("%w: address %q is not a URL or host:port", ErrInvalidArgument, addr)
	}
	switch {
	case u.User != nil:
		// Not echoed: the user information may hold a password.
		return "", fmt.Errorf("%w: address must not contain user information", ErrInvalidArgument)
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%w: address %q: scheme must be http or https", ErrInvalidArgument, addr)
	case u.Hostname() == "":
		return "", fmt.Errorf("%w: address %q has no host", ErrInvalidArgument, addr)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", fmt.Errorf("%w: address %q must not contain a query or fragment", ErrInvalidArgument, addr)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}

// BaseURL returns the normalized daemon address the client sends requests
// to, for example "http://127.0.0.1:8080".
func (c *Client) BaseURL() string { return c.base }

// CreateKey creates a key with POST /v1/admin/keys. The returned Key carries
// the new secret in [Key.Secret]; the daemon shows it only this once.
func (c *Client) CreateKey(ctx context.Context, spec KeySpec) (Key, error) {
	if err := checkSpec(spec); err != nil {
		return Key{}, err
	}
	var k Key
	if err := c.admin(ctx, http.MethodPost, "/v1/admin/keys", nil, spec, &k); err != nil {
		return Key{}, err
	}
	if k.Secret == "" {
		return Key{}, errors.New("adminclient: daemon created a key but returned no secret")
	}
	return k, nil
}

// ImportKey stores an existing secret as a key with
// POST /v1/admin/keys/import. The daemon does not echo the secret back.
func (c *Client) ImportKey(ctx context.Context, spec KeySpec, secret string) (Key, error) {
	if err := checkSpec(spec); err != nil {
		return Key{}, err
	}
	if secret == "" {
		return Key{}, fmt.Errorf("%w: empty secret", ErrInvalidArgument)
	}
	var k Key
	err := c.admin(ctx, http.MethodPost, "/v1/admin/keys/import", nil, ImportRequest{KeySpec: spec, Secret: secret}, &k)
	k.Secret = ""
	return k, err
}

// ListKeys lists keys with GET /v1/admin/keys, those of one subject when
// subject is not empty. Secrets are never listed.
func (c *Client) ListKeys(ctx context.Context, subject string) ([]Key, error) {
	var q url.Values
	if subject != "" {
		q = url.Values{"subject": {subject}}
	}
	var l KeyList
	if err := c.admin(ctx, http.MethodGet, "/v1/admin/keys", q, nil, &l); err != nil {
		return nil, err
	}
	return l.Keys, nil
}

// GetKey fetches one key with GET /v1/admin/keys/{id}. An unknown id is an
// [*APIError] with Status 404.
func (c *Client) GetKey(ctx context.Context, id string) (Key, error) {
	if err := checkID(id); err != nil {
		return Key{}, err
	}
	var k Key
	err := c.admin(ctx, http.MethodGet, "/v1/admin/keys/"+id, nil, nil, &k)
	return k, err
}

// RevokeKey revokes a key with DELETE /v1/admin/keys/{id} and returns the
// record as it now is.
func (c *Client) RevokeKey(ctx context.Context, id string) (Key, error) {
	if err := checkID(id); err != nil {
		return Key{}, err
	}
	var k Key
	err := c.admin(ctx, http.MethodDelete, "/v1/admin/keys/"+id, nil, nil, &k)
	return k, err
}

// RotateKey gives a key a new secret, keeping its id, with
// POST /v1/admin/keys/{id}/rotate. The old secret keeps working for grace
// (zero: it stops at once). The returned Key carries the new secret in
// [Key.Secret]; the daemon shows it only this once.
func (c *Client) RotateKey(ctx context.Context, id string, grace time.Duration) (Key, error) {
	if err := checkID(id); err != nil {
		return Key{}, err
	}
	if grace < 0 {
		return Key{}, fmt.Errorf("%w: negative grace %v", ErrInvalidArgument, grace)
	}
	var k Key
	if err := c.admin(ctx, http.MethodPost, "/v1/admin/keys/"+id+"/rotate", nil, RotateRequest{Grace: Duration(grace)}, &k); err != nil {
		return Key{}, err
	}
	if k.Secret == "" {
		return Key{}, errors.New("adminclient: daemon rotated a key but returned no secret")
	}
	return k, nil
}

// RevokeJWT revokes JWTs with POST /v1/admin/revocations: the token whose
// jti is r.TokenID, or every token of r.Subject issued before r.NotBefore
// (zero: the daemon's now). Exactly one of TokenID and Subject must be set,
// else the call fails with [ErrInvalidArgument]; CreatedAt and Creator are
// not sent. It returns the revocation in effect, which may be wider than r
// (a later expiry or not-before already in place). When it returns without
// error, the revocation is durable on the daemon and in effect there.
func (c *Client) RevokeJWT(ctx context.Context, r JWTRevocation) (JWTRevocation, error) {
	switch {
	case r.TokenID == "" && r.Subject == "":
		return JWTRevocation{}, fmt.Errorf("%w: a jti or a subject is required", ErrInvalidArgument)
	case r.TokenID != "" && r.Subject != "":
		return JWTRevocation{}, fmt.Errorf("%w: give a jti or a subject, not both", ErrInvalidArgument)
	}
	r.CreatedAt, r.Creator = time.Time{}, ""
	var got JWTRevocation
	if err := c.admin(ctx, http.MethodPost, "/v1/admin/revocations", nil, r, &got); err != nil {
		return JWTRevocation{}, err
	}
	if got.TokenID != r.TokenID || got.Subject != r.Subject {
		return JWTRevocation{}, errors.New("adminclient: daemon answered a revocation other than the one requested")
	}
	return got, nil
}

// ListRevocations lists the JWT revocations in effect with
// GET /v1/admin/revocations.
func (c *Client) ListRevocations(ctx context.Context) (RevocationList, error) {
	var l RevocationList
	if err := c.admin(ctx, http.MethodGet, "/v1/admin/revocations", nil, nil, &l); err != nil {
		return RevocationList{}, err
	}
	return l, nil
}

// TrustStatus lists the daemon's JWT trust sources with
// GET /v1/admin/trust: for each, its key count, the time of its last good
// load or fetch, its last error and whether it is stale. A daemon without
// trust sources answers an empty list.
func (c *Client) TrustStatus(ctx context.Context) ([]TrustSource, error) {
	var l TrustSourceList
	if err := c.admin(ctx, http.MethodGet, "/v1/admin/trust", nil, nil, &l); err != nil {
		return nil, err
	}
	return l.Sources, nil
}

// PolicyStatus describes the daemon's authorization policy with
// GET /v1/admin/policy: its mode, file, summary, when it was loaded, and
// the error of the last reload if that failed.
func (c *Client) PolicyStatus(ctx context.Context) (PolicyStatus, error) {
	var st PolicyStatus
	if err := c.admin(ctx, http.MethodGet, "/v1/admin/policy", nil, nil, &st); err != nil {
		return PolicyStatus{}, err
	}
	return st, nil
}

// ReloadPolicy makes the daemon read its policy file again, with
// POST /v1/admin/policy/reload, and returns the policy then in force;
// [PolicyStatus.Changed] says whether the file held a new one. An invalid
// file is an [*APIError] with status 400 whose Problems list every
// problem; the daemon keeps its policy. A daemon without a policy file
// answers 409.
func (c *Client) ReloadPolicy(ctx context.Context) (PolicyStatus, error) {
	var st PolicyStatus
	if err := c.admin(ctx, http.MethodPost, "/v1/admin/policy/reload", nil, nil, &st); err != nil {
		return PolicyStatus{}, err
	}
	return st, nil
}

// ExplainPolicy asks the daemon, with /v1/admin/policy/explain, how its
// policy decides r.Scope for the principal r describes, and why. A token
// is sent in the body of a POST, never in the URL.
func (c *Client) ExplainPolicy(ctx context.Context, r PolicyExplainRequest) (PolicyExplanation, error) {
	if r.Scope == "" {
		return PolicyExplanation{}, fmt.Errorf("%w: a scope is required", ErrInvalidArgument)
	}
	var e PolicyExplanation
	if r.Token != "" {
		body := map[string]string{"token": r.Token, "scope": r.Scope}
		if err := c.admin(ctx, http.MethodPost, "/v1/admin/policy/explain", nil, body, &e); err != nil {
			return PolicyExplanation{}, err
		}
		return e, nil
	}
	if r.KeyID != "" {
		if err := checkID(r.KeyID); err != nil {
			return PolicyExplanation{}, err
		}
	}
	q := url.Values{"scope": {r.Scope}}
	for name, v := range map[string]string{"subject": r.Subject, "project": r.Project, "realm": r.Realm, "key_id": r.KeyID} {
		if v != "" {
			q.Set(name, v)
		}
	}
	for _, role := range r.Roles {
		q.Add("role", role)
	}
	if err := c.admin(ctx, http.MethodGet, "/v1/admin/policy/explain", q, nil, &e); err != nil {
		return PolicyExplanation{}, err
	}
	return e, nil
}

// Verify asks the daemon, with POST /v1/verify, whether token is valid and,
// when scope is not empty, whether it grants scope. It needs no admin key.
//
// A decision is returned with a nil error: Allow true for an allowed token
// (200), false for a refused one (401 or 403). Any other error status is an
// [*APIError]; the VerifyResult then holds whatever decision body the daemon
// sent with it (Status "invalid_scope" with 400, "unavailable" with 503).
func (c *Client) Verify(ctx context.Context, token, scope string) (VerifyResult, error) {
	if token == "" {
		return VerifyResult{}, fmt.Errorf("%w: empty token", ErrInvalidArgument)
	}
	status, body, err := c.do(ctx, http.MethodPost, "/v1/verify", nil, false, VerifyRequest{Token: token, Scope: scope})
	if err != nil {
		return VerifyResult{}, err
	}
	var r VerifyResult
	switch status {
	case http.StatusOK, http.StatusUnauthorized, http.StatusForbidden:
		if err := json.Unmarshal(body, &r); err != nil || r.Status == "" {
			return VerifyResult{}, fmt.Errorf("adminclient: verify: status %d without a decision body", status)
		}
		if r.Allow != (status == http.StatusOK) {
			return VerifyResult{}, fmt.Errorf("adminclient: verify: status %d contradicts allow=%t", status, r.Allow)
		}
		return r, nil
	}
	if status >= 400 {
		_ = json.Unmarshal(body, &r) // best effort: the APIError is the answer
		r.Allow = false
		return r, apiError(status, body)
	}
	return VerifyResult{}, fmt.Errorf("adminclient: verify: unexpected status %d", status)
}

// admin makes an admin call and decodes a 2xx answer into out.
func (c *Client) admin(ctx context.Context, method, path string, q url.Values, in, out any) error {
	if c.adminKey == "" {
		return ErrNoAdminKey
	}
	status, body, err := c.do(ctx, method, path, q, true, in)
	if err != nil {
		return err
	}
	switch {
	case status >= 200 && status < 300:
		if err := json.Unmarshal(body, out); err != nil {
			return fmt.Errorf("adminclient: %s %s: undecodable answer: %w", method, path, err)
		}
		return nil
	case status >= 400:
		return apiError(status, body)
	default:
		return fmt.Errorf("adminclient: %s %s: unexpected status %d", method, path, status)
	}
}

// do sends one request and returns the status and the whole body.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, withKey bool, in any) (int, []byte, error) {
	target := c.base + path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, nil, fmt.Errorf("adminclient: encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return 0, nil, fmt.Errorf("adminclient: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if withKey {
		req.Header.Set("X-Admin-Key", c.adminKey)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("adminclient: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return 0, nil, fmt.Errorf("adminclient: %s %s: read answer: %w", method, path, err)
	}
	if len(b) > MaxResponseBytes {
		return 0, nil, fmt.Errorf("adminclient: %s %s: answer larger than %d bytes", method, path, MaxResponseBytes)
	}
	return resp.StatusCode, b, nil
}

// apiError decodes an error answer. A body that is not the contract's error
// object leaves only the status set.
func apiError(status int, body []byte) *APIError {
	e := &APIError{Status: status}
	if json.Unmarshal(body, e) != nil {
		e = &APIError{Status: status}
	}
	return e
}

// checkID rejects key ids that could not name a record: empty, too long, or
// with characters outside the URL-safe base64 alphabet the daemon uses.
func checkID(id string) error {
	if id == "" || len(id) > MaxIDLen {
		return fmt.Errorf("%w: key id must be 1 to %d characters", ErrInvalidArgument, MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%w: key id %q: only letters, digits, '-' and '_' are allowed", ErrInvalidArgument, id)
		}
	}
	return nil
}

// checkSpec rejects a KeySpec the daemon would refuse for reasons known here.
func checkSpec(spec KeySpec) error {
	if spec.Subject == "" {
		return fmt.Errorf("%w: subject is required", ErrInvalidArgument)
	}
	if spec.ExpiresIn < 0 {
		return fmt.Errorf("%w: negative expiry %v", ErrInvalidArgument, time.Duration(spec.ExpiresIn))
	}
	return nil
}
