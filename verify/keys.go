package verify

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/rbac"
	"github.com/verifyd/verifyd/verify/credential"
)

// DefaultAgentValidity is how long an agent key stays valid when its spec
// sets no expiry (the AgentMsg default).
const DefaultAgentValidity = 90 * 24 * time.Hour

// KeySpec describes a credential to create or import.
type KeySpec struct {
	Subject      string
	Kind         keystore.Kind // zero means KindAPIKey on create and KindImported on import
	Name         string
	Description  string
	Scopes       []string
	Roles        []string
	ProjectRoles map[string][]string
	Metadata     map[string]string
	ExpiresIn    time.Duration // zero means never (DefaultAgentValidity for agent keys)
	Creator      string        // who asked, recorded on the key
	Secret       string        // the presented secret, for imports only
}

// InvalidSpecError reports every problem found in a KeySpec. Nothing is
// written when it is returned.
type InvalidSpecError struct {
	Problems []string
}

func (e *InvalidSpecError) Error() string {
	return "verify: invalid key spec: " + strings.Join(e.Problems, "; ")
}

// Limits on the free-text fields of a key, in bytes or entries.
const (
	maxTextLen  = 256
	maxListLen  = 256
	maxMetaSize = 64
)

// ErrRevoked is returned when rotating a revoked credential.
var ErrRevoked = errors.New("verify: the key is revoked")

// Manager creates, imports, rotates and revokes credentials, runs the
// access-request flow, checks the admin key, and records every change it
// makes in the audit trail (see [WithActor]). It is safe for concurrent use.
type Manager struct {
	store       *keystore.Store
	minter      *credential.Minter
	now         func() time.Time
	adminDigest keystore.Digest
	// patMaxDuration is the longest validity of a PAT, in nanoseconds;
	// zero means DefaultPATMaxDuration. See SetPATMaxDuration.
	patMaxDuration atomic.Int64

	adminActor string
	requests   RequestOptions
	sink       AuditSink
	log        *slog.Logger

	requestKeyMu sync.Mutex
	requestKey   []byte // see requestTokenKey; nil until first needed
}

// ManagerOptions configures a Manager. A nil *ManagerOptions means all
// defaults.
type ManagerOptions struct {
	// Requests configures the access-request flow; zero fields take their
	// defaults (see [RequestOptions.EnsureDefaults]).
	Requests RequestOptions
	// AuditSink, when not nil, receives every audit entry once it is
	// durable (the daemon mirrors them to a file).
	AuditSink AuditSink
	// Now is the clock. nil means time.Now.
	Now func() time.Time
	// Logger receives operational faults. nil means slog.Default().
	Logger *slog.Logger
	// RequestTokenKey, when set (32 bytes), is the key access-request
	// tokens are derived with; replicated mode derives it from the
	// deployment secret, the same on every node. nil: a key generated on
	// first use and kept in the store.
	RequestTokenKey []byte
}

// NewManager returns a Manager over store with default options and the
// clock now (time.Now when nil). adminDigest is the SHA-256 of the admin
// key.
func NewManager(store *keystore.Store, minter *credential.Minter, adminDigest keystore.Digest, now func() time.Time) *Manager {
	m, err := NewManagerWith(store, minter, adminDigest, &ManagerOptions{Now: now})
	if err != nil {
		panic("verify: the default manager options are invalid: " + err.Error())
	}
	return m
}

// NewManagerWith returns a Manager over store configured by opts. It fails
// if opts.Requests is invalid.
func NewManagerWith(store *keystore.Store, minter *credential.Minter, adminDigest keystore.Digest, opts *ManagerOptions) (*Manager, error) {
	var o ManagerOptions
	if opts != nil {
		o = *opts
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Requests.EnsureDefaults()
	if err := o.Requests.Validate(); err != nil {
		return nil, err
	}
	if o.RequestTokenKey != nil && len(o.RequestTokenKey) != 32 {
		return nil, fmt.Errorf("verify: the request token key has %d bytes, want 32", len(o.RequestTokenKey))
	}
	return &Manager{
		store: store, minter: minter, now: o.Now, adminDigest: adminDigest, adminActor: AdminActor(adminDigest),
		requests: o.Requests, sink: o.AuditSink, log: o.Logger.With(slog.String("component", "manager")),
		requestKey: bytes.Clone(o.RequestTokenKey),
	}, nil
}

// IsAdmin reports, in constant time, whether presented is the admin key.
func (m *Manager) IsAdmin(presented string) bool {
	if presented == "" || len(presented) > credential.MaxLen {
		return false
	}
	d := keystore.Sum(presented)
	return subtle.ConstantTimeCompare(d[:], m.adminDigest[:]) == 1
}

// CreateKey creates a credential with a fresh secret and returns its record
// and the secret. The secret is not stored and cannot be shown again. The
// creation, or its failure, is audited (key.create).
func (m *Manager) CreateKey(ctx context.Context, spec KeySpec) (keystore.Record, string, error) {
	if spec.Kind == 0 {
		spec.Kind = keystore.KindAPIKey
	}
	e := m.entry(ctx, ActionKeyCreate, "")
	e.Detail = keyDetail(spec.Kind, spec.Subject)
	var problems []string
	switch spec.Kind {
	case keystore.KindAPIKey, keystore.KindAgent, keystore.KindPAT:
	default:
		problems = append(problems, fmt.Sprintf("kind %q cannot be created (use api_key, agent or pat; import existing secrets)", spec.Kind))
	}
	if spec.Secret != "" {
		problems = append(problems, "a secret cannot be chosen when creating a key (import it instead)")
	}
	problems = append(problems, checkSpec(spec)...)
	if len(problems) > 0 {
		return keystore.Record{}, "", m.fail(ctx, e, &InvalidSpecError{Problems: problems})
	}
	id, err := credential.NewID()
	if err != nil {
		return keystore.Record{}, "", m.fail(ctx, e, err)
	}
	secret, err := m.newSecret(spec.Kind, id)
	if err != nil {
		return keystore.Record{}, "", m.fail(ctx, e, err)
	}
	var rec keystore.Record
	err = m.audited(ctx, &e, func(tx *keystore.Txn) (err error) {
		rec, err = tx.Create(m.record(id, spec, secret))
		e.Target = rec.ID // none unless created
		return err
	})
	if err != nil {
		return keystore.Record{}, "", err
	}
	return rec, secret, nil
}

// ImportKey stores an existing secret (an AMS key, a legacy relay key) as a
// credential. The secret must be a valid imported key (see
// credential.ValidateImported). keystore.ErrDigestInUse reports a secret
// that is already stored. The import, or its failure, is audited
// (key.import); the secret never is.
func (m *Manager) ImportKey(ctx context.Context, spec KeySpec) (keystore.Record, error) {
	if spec.Kind == 0 {
		spec.Kind = keystore.KindImported
	}
	e := m.entry(ctx, ActionKeyImport, "")
	e.Detail = keyDetail(spec.Kind, spec.Subject)
	var problems []string
	switch spec.Kind {
	case keystore.KindImported, keystore.KindAPIKey, keystore.KindAgent:
	default:
		problems = append(problems, fmt.Sprintf("kind %q cannot be imported (use imported, api_key or agent)", spec.Kind))
	}
	if spec.Secret == "" {
		problems = append(problems, "secret is required")
	} else if err := credential.ValidateImported(spec.Secret); err != nil {
		problems = append(problems, "secret: "+strings.TrimPrefix(err.Error(), "credential: "))
	}
	problems = append(problems, checkSpec(spec)...)
	if len(problems) > 0 {
		return keystore.Record{}, m.fail(ctx, e, &InvalidSpecError{Problems: problems})
	}
	id, err := credential.NewID()
	if err != nil {
		return keystore.Record{}, m.fail(ctx, e, err)
	}
	var rec keystore.Record
	err = m.audited(ctx, &e, func(tx *keystore.Txn) (err error) {
		rec, err = tx.Create(m.record(id, spec, spec.Secret))
		e.Target = rec.ID // none unless created
		return err
	})
	return rec, err
}

// keyDetail is the audit detail of a key: its kind and subject.
func keyDetail(kind keystore.Kind, subject string) string {
	return "kind=" + kind.String() + " subject=" + auditText(subject)
}

// RevokeKey revokes the credential id. Once it returns, no verification that
// starts later accepts any of the credential's secrets. Revoking a revoked
// key changes nothing and succeeds. The revocation is audited (key.revoke).
func (m *Manager) RevokeKey(ctx context.Context, id string) (keystore.Record, error) {
	e := m.entry(ctx, ActionKeyRevoke, id)
	var rec keystore.Record
	err := m.audited(ctx, &e, func(tx *keystore.Txn) (err error) {
		rec, err = tx.Update(id, func(r *keystore.Record) error {
			e.Detail = keyDetail(r.Kind, r.Subject)
			if r.RevokedAt.IsZero() {
				r.RevokedAt = m.now().UTC()
			}
			return nil
		})
		return err
	})
	return rec, err
}

// RotateKey gives the credential id a fresh secret, keeping its id and
// grants, and returns the new secret. With grace > 0 the previous secret keeps
// working until grace has passed (a grace still running from an earlier
// rotation ends at once); otherwise it stops at once. The rotation is
// audited (key.rotate).
func (m *Manager) RotateKey(ctx context.Context, id string, grace time.Duration) (keystore.Record, string, error) {
	e := m.entry(ctx, ActionKeyRotate, id)
	if grace < 0 {
		return keystore.Record{}, "", m.fail(ctx, e, &InvalidSpecError{Problems: []string{"grace must not be negative"}})
	}
	var secret string
	var rec keystore.Record
	err := m.audited(ctx, &e, func(tx *keystore.Txn) (err error) {
		rec, err = tx.Update(id, func(r *keystore.Record) error {
			e.Detail = keyDetail(r.Kind, r.Subject) + " grace=" + grace.String()
			if !r.RevokedAt.IsZero() {
				return ErrRevoked
			}
			s, err := m.newSecret(r.Kind, r.ID)
			if err != nil {
				return err
			}
			secret = s
			r.PrevDigest, r.PrevNotAfter = keystore.Digest{}, time.Time{}
			if grace > 0 {
				r.PrevDigest, r.PrevNotAfter = r.Digest, m.now().Add(grace).UTC()
			}
			r.Digest = keystore.Sum(s)
			return nil
		})
		return err
	})
	if err != nil {
		return keystore.Record{}, "", err
	}
	return rec, secret, nil
}

// newSecret draws a secret in the presented format of kind. Imported keys
// are rotated to generated API keys.
func (m *Manager) newSecret(kind keystore.Kind, id string) (string, error) {
	switch kind {
	case keystore.KindAgent:
		return credential.NewAgentKey()
	case keystore.KindPAT:
		return credential.NewPAT(id)
	default:
		return m.minter.NewAPIKey()
	}
}

func (m *Manager) record(id string, spec KeySpec, secret string) keystore.Record {
	now := m.now().UTC()
	r := keystore.Record{
		ID:           id,
		Kind:         spec.Kind,
		Subject:      spec.Subject,
		Name:         spec.Name,
		Description:  spec.Description,
		Roles:        spec.Roles,
		ProjectRoles: spec.ProjectRoles,
		Scopes:       spec.Scopes,
		Creator:      spec.Creator,
		Metadata:     spec.Metadata,
		CreatedAt:    now,
		Digest:       keystore.Sum(secret),
	}
	ttl := spec.ExpiresIn
	if ttl == 0 && spec.Kind == keystore.KindAgent {
		ttl = DefaultAgentValidity
	}
	if ttl > 0 {
		r.ExpiresAt = now.Add(ttl)
	}
	return r
}

// checkSpec reports the problems common to created and imported keys.
func checkSpec(spec KeySpec) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	switch {
	case spec.Subject == "":
		add("subject is required")
	case len(spec.Subject) > maxTextLen:
		add("subject is longer than %d bytes", maxTextLen)
	}
	if len(spec.Name) > maxTextLen {
		add("name is longer than %d bytes", maxTextLen)
	}
	if len(spec.Description) > 4*maxTextLen {
		add("description is longer than %d bytes", 4*maxTextLen)
	}
	if spec.ExpiresIn < 0 {
		add("expires_in must not be negative")
	}
	if len(spec.Scopes) > maxListLen || len(spec.Roles) > maxListLen || len(spec.ProjectRoles) > maxListLen {
		add("at most %d scopes, roles and projects each", maxListLen)
	}
	for _, p := range spec.Scopes {
		if err := rbac.ValidatePattern(p); err != nil {
			var pe *rbac.PatternError
			if errors.As(err, &pe) {
				add("scope %q: %s", pe.Pattern, pe.Reason)
			} else {
				add("%v", err)
			}
		}
	}
	for _, r := range spec.Roles {
		if !validName(r) {
			add("role %q: must be 1-%d characters without spaces or control characters", r, maxTextLen)
		}
	}
	for p, roles := range spec.ProjectRoles {
		if !validName(p) {
			add("project %q: must be 1-%d characters without spaces or control characters", p, maxTextLen)
		}
		for _, r := range roles {
			if !validName(r) {
				add("role %q in project %q: must be 1-%d characters without spaces or control characters", r, p, maxTextLen)
			}
		}
	}
	if len(spec.Metadata) > maxMetaSize {
		add("at most %d metadata entries", maxMetaSize)
	}
	for k, v := range spec.Metadata {
		if k == "" || len(k) > maxTextLen || len(v) > maxTextLen {
			add("metadata entries need a key and both key and value at most %d bytes", maxTextLen)
			break
		}
	}
	return problems
}

// validName reports whether s is usable as a role or project name.
func validName(s string) bool {
	if s == "" || len(s) > maxTextLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return false
		}
	}
	return true
}

// GetKey returns the record of credential id (keystore.ErrNotFound if none).
func (m *Manager) GetKey(id string) (keystore.Record, error) { return m.store.Get(id) }

// ListKeys returns the records of subject's credentials, or of all
// credentials when subject is empty.
func (m *Manager) ListKeys(subject string) ([]keystore.Record, error) { return m.store.List(subject) }

// LastUsed returns when credential id was last used successfully, as far as
// the coalesced last-use records know.
func (m *Manager) LastUsed(id string) (time.Time, bool, error) { return m.store.LastUsed(id) }
