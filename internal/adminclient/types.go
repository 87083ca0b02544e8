package adminclient

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// Credential kinds, as used in [Key.Kind], [KeySpec.Kind] and
// [VerifyResult.Kind].
const (
	KindAPIKey   = "api_key"  // a generated vk_ key; the default for create
	KindAgent    = "agent"    // an AgentMsg-style 43-character bearer token
	KindPAT      = "pat"      // a personal access token, pat_<id>_<secret>
	KindImported = "imported" // a key migrated from another system
)

// Key statuses, as used in [Key.Status].
const (
	KeyActive  = "active"
	KeyRevoked = "revoked"
	KeyExpired = "expired"
)

// Decision statuses, as used in [VerifyResult.Status].
const (
	StatusOK           = "ok"
	StatusMalformed    = "malformed"
	StatusUnknown      = "unknown"
	StatusExpired      = "expired"
	StatusRevoked      = "revoked"
	StatusForbidden    = "forbidden"
	StatusUnavailable  = "unavailable"
	StatusInvalidScope = "invalid_scope"
	// The statuses below concern JWTs only.
	StatusBadSignature  = "bad_signature"
	StatusNotYetValid   = "not_yet_valid"
	StatusUntrustedKey  = "untrusted_key"
	StatusInvalidClaims = "invalid_claims"
	// StatusRateLimited comes with HTTP 429 (see the daemon's throttle):
	// [Client.Verify] reports it as an [*APIError] with code
	// [CodeRateLimited].
	StatusRateLimited = "rate_limited"
)

// Error codes, as used in [APIError.Code] and [VerifyResult.Code]. Each goes
// with one HTTP status, named in its comment; the lower-case form of the code
// is the accompanying "error" member.
const (
	CodeBadRequest         = "BAD_REQUEST"         // 400
	CodeUnauthorized       = "UNAUTHORIZED"        // 401
	CodeForbidden          = "FORBIDDEN"           // 403
	CodeNotFound           = "NOT_FOUND"           // 404
	CodeConflict           = "CONFLICT"            // 409
	CodeRateLimited        = "RATE_LIMITED"        // 429
	CodeServiceUnavailable = "SERVICE_UNAVAILABLE" // 503
)

// Duration is a time.Duration that travels in JSON as a Go duration string
// such as "720h0m0s" or "10m" (see [time.ParseDuration]). The zero value is
// omitted from requests and means "the daemon's default".
type Duration time.Duration

// MarshalText encodes d as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(time.Duration(d).String()), nil
}

// UnmarshalText decodes a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("adminclient: invalid duration %q", b)
	}
	*d = Duration(v)
	return nil
}

// A Key is a credential record as the daemon returns it. It never holds the
// secret except in the answer to a create or rotate, where [Key.Secret] is
// set and shown only that once.
//
// Timestamps are UTC; the optional ones are zero when unset and are then
// omitted from the JSON.
type Key struct {
	ID           string              `json:"id"`                      // 22-character record id
	Kind         string              `json:"kind"`                    // one of the Kind constants
	Subject      string              `json:"subject"`                 // who the credential belongs to
	Name         string              `json:"name"`                    // short label chosen by the operator
	Description  string              `json:"description"`             // free text
	Scopes       []string            `json:"scopes,omitempty"`        // granted scope patterns
	Roles        []string            `json:"roles,omitempty"`         // global roles
	ProjectRoles map[string][]string `json:"project_roles,omitempty"` // roles per project, domain or realm
	Metadata     map[string]string   `json:"metadata,omitempty"`      // small operator-defined map
	Creator      string              `json:"creator"`                 // who created the record
	Status       string              `json:"status"`                  // one of the Key status constants
	Version      uint64              `json:"version"`                 // record version, bumped by every change

	CreatedAt          time.Time `json:"created_at"`
	ExpiresAt          time.Time `json:"expires_at,omitzero"`           // zero: never expires
	RevokedAt          time.Time `json:"revoked_at,omitzero"`           // zero: not revoked
	LastUsedAt         time.Time `json:"last_used_at,omitzero"`         // zero: never used (or not yet recorded)
	PreviousValidUntil time.Time `json:"previous_valid_until,omitzero"` // after a rotation with grace: when the old secret stops

	// Secret is the plaintext credential, set only in the answer to a create
	// or a rotate. It is never stored by the daemon and cannot be fetched
	// again.
	Secret string `json:"secret,omitempty"`
}

// LogValue implements [slog.LogValuer]. It logs the record's identity and
// never the secret.
func (k Key) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("id", k.ID),
		slog.String("kind", k.Kind),
		slog.String("subject", k.Subject),
		slog.String("status", k.Status),
	}
	if k.Secret != "" {
		attrs = append(attrs, slog.String("secret", "REDACTED"))
	}
	return slog.GroupValue(attrs...)
}

// A KeySpec describes a key to create: the body of POST /v1/admin/keys.
// Only Subject is required.
type KeySpec struct {
	Subject      string              `json:"subject"`
	Kind         string              `json:"kind,omitempty"` // empty: api_key for create, imported for import
	Name         string              `json:"name,omitempty"`
	Description  string              `json:"description,omitempty"`
	Scopes       []string            `json:"scopes,omitempty"`
	Roles        []string            `json:"roles,omitempty"`
	ProjectRoles map[string][]string `json:"project_roles,omitempty"`
	Metadata     map[string]string   `json:"metadata,omitempty"`
	ExpiresIn    Duration            `json:"expires_in,omitzero"` // zero: the daemon's default validity for the kind
}

// An ImportRequest is the body of POST /v1/admin/keys/import: a [KeySpec]
// plus the existing secret to store (its hash, on the daemon's side).
type ImportRequest struct {
	KeySpec
	Secret string `json:"secret"`
}

// LogValue implements [slog.LogValuer]. It never logs the secret.
func (r ImportRequest) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("subject", r.Subject),
		slog.String("kind", r.Kind),
		slog.String("secret", "REDACTED"),
	)
}

// A RotateRequest is the body of POST /v1/admin/keys/{id}/rotate.
type RotateRequest struct {
	// Grace is how long the old secret keeps working after the rotation.
	// Zero means it stops at once.
	Grace Duration `json:"grace,omitzero"`
}

// A KeyList is the body of the answer to GET /v1/admin/keys.
type KeyList struct {
	Keys []Key `json:"keys"`
}

// A JWTRevocation revokes JWTs, which the daemon does not store: one token
// by its "jti" claim, or every token of a subject issued before a time. As
// the body of POST /v1/admin/revocations it sets exactly one of TokenID
// (with an optional ExpiresAt) and Subject (with an optional NotBefore);
// CreatedAt and Creator are set by the daemon in its answers.
//
// Timestamps are UTC in answers; the optional ones are zero when unset and
// are then omitted from the JSON.
type JWTRevocation struct {
	TokenID   string    `json:"jti,omitempty"`       // the revoked token's jti
	Subject   string    `json:"subject,omitempty"`   // the subject whose earlier tokens are revoked
	ExpiresAt time.Time `json:"expires_at,omitzero"` // jti only: when the daemon may forget the revocation (the token's exp); zero: never
	NotBefore time.Time `json:"not_before,omitzero"` // subject only: tokens issued (iat) before it are revoked; zero in a request: now
	CreatedAt time.Time `json:"created_at,omitzero"` // set by the daemon
	Creator   string    `json:"creator,omitempty"`   // set by the daemon
}

// A RevocationList is the body of the answer to GET /v1/admin/revocations:
// the revocations in effect, token revocations sorted by jti and subject
// revocations by subject.
type RevocationList struct {
	Tokens   []JWTRevocation `json:"tokens"`
	Subjects []JWTRevocation `json:"subjects"`
}

// A TrustSource is one of the daemon's JWT trust sources as
// GET /v1/admin/trust reports it: where its keys come from, how many it
// contributes, and how its last load or fetch went.
//
// LastSuccess is zero when the source never loaded or fetched a key set, and
// is then omitted from the JSON.
type TrustSource struct {
	Name        string    `json:"name"`                  // as in the daemon's configuration
	Type        string    `json:"type"`                  // jwks_file, jwks_url, oidc_issuer or hs256
	Keys        int       `json:"keys"`                  // keys the source currently contributes
	SkippedKeys int       `json:"skipped_keys"`          // keys of its key set that are not ES256 verification keys
	LastSuccess time.Time `json:"last_success,omitzero"` // the last good load or fetch; zero: none
	LastError   string    `json:"last_error,omitempty"`  // the error of the last load or fetch; empty: it succeeded

	// Stale is true while a fetched source (jwks_url, oidc_issuer) serves no
	// keys because its last good fetch is older than the daemon's maximum
	// staleness, or it never had one. A stale source verifies no token.
	Stale bool `json:"stale"`
}

// A TrustSourceList is the body of the answer to GET /v1/admin/trust: the
// trust sources in the order of the daemon's configuration, none when it has
// no trust source configured.
type TrustSourceList struct {
	Sources []TrustSource `json:"sources"`
}

// A VerifyRequest is the body of POST /v1/verify.
type VerifyRequest struct {
	Token string `json:"token"`
	Scope string `json:"scope,omitempty"` // empty: check the credential only
}

// LogValue implements [slog.LogValuer]. It logs the scope and never the
// token.
func (r VerifyRequest) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("token", "REDACTED"),
		slog.String("scope", r.Scope),
	)
}

// A VerifyResult is the daemon's decision on a token: the body of every
// answer to POST /v1/verify. An allowed token (HTTP 200) fills the identity
// fields; a refused one (401, 403, or 400 and 503 for the invalid_scope and
// unavailable statuses) fills Code, Error and Message instead.
type VerifyResult struct {
	Allow   bool     `json:"allow"`
	Status  string   `json:"status"`            // one of the Status constants
	Subject string   `json:"subject,omitempty"` // set when allowed
	Kind    string   `json:"kind,omitempty"`    // set when allowed
	KeyID   string   `json:"key_id,omitempty"`  // set when allowed: the stored key's id, or a JWT's jti
	Source  string   `json:"source,omitempty"`  // a JWT's trust source
	Realm   string   `json:"realm,omitempty"`   // a JWT's realm, when its claims name one
	Roles   []string `json:"roles,omitempty"`   // set when allowed
	Scopes  []string `json:"scopes,omitempty"`  // the scopes the credential carries itself
	Grant   string   `json:"grant,omitempty"`   // the pattern that granted the requested scope
	// Reason says why: the policy's reason when it decided a scope (one of
	// the Reason constants), "authenticated" when no scope was asked, and
	// otherwise the Status (the credential was refused before the policy
	// was asked).
	Reason string `json:"reason,omitempty"`
	// Matched says what granted an allowed scope; nil for a denial and
	// when no scope was asked.
	Matched    *PolicyMatch `json:"matched,omitempty"`
	ExpiresAt  time.Time    `json:"expires_at,omitzero"`   // zero: the credential does not expire
	CacheTTLMS int64        `json:"cache_ttl_ms,omitzero"` // how long, in milliseconds, the caller may cache an allow
	Code       string       `json:"code,omitempty"`        // set when refused: one of the Code constants
	Error      string       `json:"error,omitempty"`       // set when refused: Code in lower case
	Message    string       `json:"message,omitempty"`     // set when refused: human-readable reason
}

// Policy reasons, as used in [VerifyResult.Reason] and
// [PolicyDecision.Reason]: why the authorization policy allowed or denied
// a scope.
const (
	ReasonGranted             = "granted"              // a pattern of the credential's own scopes or of a role matched
	ReasonUnrestricted        = "unrestricted"         // the policy's mode is none
	ReasonStreamOpen          = "stream_open"          // the stream requires no authentication
	ReasonStreamAuthenticated = "stream_authenticated" // the stream lets any authenticated principal read
	ReasonStreamRole          = "stream_role"          // a stream role matched in its realm
	ReasonStreamAdmin         = "stream_admin"         // an admin role of the policy matched
	ReasonNoGrant             = "no_grant"             // nothing grants the scope
	ReasonNotOnACL            = "not_on_acl"           // a grant matched, but the scope's ACL does not list the subject
	ReasonAuthRequired        = "auth_required"        // the stream requires authentication
	ReasonStreamForbidden     = "stream_forbidden"     // the stream requires a role the principal lacks, or reserves writes to admins
	ReasonAuthenticated       = "authenticated"        // no scope was asked; the credential is valid
)

// A PolicyMatch says what granted an allowed scope.
type PolicyMatch struct {
	Role    string `json:"role"`    // the granting role; "" for the credential's own scopes
	Project string `json:"project"` // the project, domain or realm the role holds in; "" for a global one
	Pattern string `json:"pattern"` // the pattern that matched, templates filled; "" for a stream rule
}

// A PolicyStatus describes the daemon's authorization policy: the body of
// the answers to GET /v1/admin/policy and POST /v1/admin/policy/reload.
type PolicyStatus struct {
	Mode     string        `json:"mode"`               // deny_all, rbac or none
	File     string        `json:"file"`               // the policy file; "" when none is configured
	LoadedAt time.Time     `json:"loaded_at,omitzero"` // when the policy in force was put in force
	Summary  PolicySummary `json:"summary"`            // what the policy holds
	Changed  *bool         `json:"changed,omitempty"`  // reloads only: whether the reload put a new policy in force
	// LastReload is when the policy file was last reloaded, successfully
	// or not; zero when it was not since the daemon started.
	LastReload time.Time       `json:"last_reload,omitzero"`
	LastError  string          `json:"last_error,omitempty"` // the error of the last reload; empty when it succeeded
	Problems   []PolicyProblem `json:"problems,omitempty"`   // of LastError, for an invalid file
}

// A PolicySummary counts what a policy holds.
type PolicySummary struct {
	Roles     int `json:"roles"`      // roles declared
	Patterns  int `json:"patterns"`   // patterns declared by all roles
	Subjects  int `json:"subjects"`   // subjects with assignments
	ACLs      int `json:"acls"`       // resource/action pairs with an ACL
	Streams   int `json:"streams"`    // streams with rules
	BoundSets int `json:"bound_sets"` // compiled role sets currently memoised
}

// A PolicyProblem is one thing wrong with a policy file.
type PolicyProblem struct {
	Line    int    `json:"line,omitempty"`   // 1-based; 0 when unknown
	Column  int    `json:"column,omitempty"` // 1-based; 0 when unknown
	Path    string `json:"path,omitempty"`   // where in the document, e.g. roles.developer.inherits[0]
	Message string `json:"message"`
	Text    string `json:"text"` // "line:column: path: message"
}

// A PolicyExplainRequest names the principal and scope of an explanation:
// either Token (the principal of that credential, as verification sees
// it), or KeyID (a stored key's principal), or Subject with optional Realm
// and Roles (global ones, or, with Project, held in that project), or
// nothing but Scope for an anonymous request.
type PolicyExplainRequest struct {
	Token   string
	Subject string
	Project string
	Realm   string
	Roles   []string
	KeyID   string
	Scope   string // required
}

// A PolicyExplanation accounts for one decision of the policy in force:
// the decision and every candidate grant considered.
type PolicyExplanation struct {
	Scope     string         `json:"scope"`
	Mode      string         `json:"mode"`
	Subject   string         `json:"subject,omitempty"`
	Anonymous bool           `json:"anonymous"`
	Decision  PolicyDecision `json:"decision"`
	Steps     []PolicyStep   `json:"steps"`
	Text      string         `json:"text"` // the whole explanation, one line per step
}

// A PolicyDecision is the policy's answer for one scope.
type PolicyDecision struct {
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason"` // one of the Reason constants
	Role    string `json:"role,omitempty"`
	Project string `json:"project,omitempty"`
	Pattern string `json:"pattern,omitempty"`
	Text    string `json:"text"` // e.g. "allow (granted, role publisher in p2, pattern projects/p2/topics/*:publish)"
}

// A PolicyStep is one candidate considered for a decision.
type PolicyStep struct {
	Kind    string `json:"kind"` // scope, mode, own, role, stream, admin or acl
	Role    string `json:"role,omitempty"`
	Via     string `json:"via,omitempty"` // the inheritance chain, "developer > viewer"
	Project string `json:"project,omitempty"`
	Pattern string `json:"pattern,omitempty"`
	Filled  string `json:"filled,omitempty"` // Pattern with its templates filled
	Matched bool   `json:"matched"`
	Note    string `json:"note,omitempty"`
	Text    string `json:"text"` // the step on one line
}

// APIError is a daemon error answer: any 4xx or 5xx status, with the body
// {"code","error","message"}. When the body is not such an object (an error
// page from a proxy, say), Code, Err and Message are empty and only Status is
// set.
type APIError struct {
	Status  int    `json:"-"`       // HTTP status code
	Code    string `json:"code"`    // one of the Code constants
	Err     string `json:"error"`   // Code in lower case
	Message string `json:"message"` // human-readable, safe to show to the operator
	// Problems lists every problem of an invalid policy file, when a
	// policy reload was refused (400).
	Problems []PolicyProblem `json:"problems,omitempty"`
}

// Error returns "adminclient: <status> <code>: <message>", leaving out what
// the daemon did not send and falling back to the HTTP status text.
func (e *APIError) Error() string {
	head := fmt.Sprintf("adminclient: %d", e.Status)
	if e.Code != "" {
		head += " " + e.Code
	}
	switch {
	case e.Message != "":
		return head + ": " + e.Message
	case e.Code != "":
		return head
	default:
		return head + " " + http.StatusText(e.Status)
	}
}
