package verify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/rbac"
	"github.com/verifyd/verifyd/verify/credential"
)

// Personal access tokens (PATs) follow SuperMQ's model: a PAT belongs to a
// subject, has a name, a description and an expiry, and grants scopes
// given as tuples (domain, entity type, operation, entity id or "*"). Each
// tuple grants the pattern [rbac.PATScope] maps it onto; the record's
// Scopes hold those patterns, so that a PAT is verified like any other
// credential, and a change to its scopes reaches cached answers at once
// (every record write invalidates the entries of its digests).
//
// The tuples themselves are kept in the record's metadata, because the
// mapping is not invertible ("view" and "read", a channel's "publish" and
// the "messages" entity's, a domain's id and "*" give the same pattern):
// entries named "pat.scopes.0", "pat.scopes.1", ..., each at most
// keystore.MaxMetadataValLen bytes of tuples, one per line, their four
// fields separated by single spaces (no field can hold a space or a line
// break), in the order they were added. They are rewritten whole with the
// patterns, in the same synced write.

// PAT durations and limits.
const (
	// DefaultPATDuration is the validity of a PAT whose creation or reset
	// names no duration.
	DefaultPATDuration = 720 * time.Hour
	// DefaultPATMaxDuration is the longest validity a PAT may be given,
	// unless SetPATMaxDuration sets another.
	DefaultPATMaxDuration = 8760 * time.Hour
	// MaxPATScopes is the largest number of scope tuples one PAT holds,
	// and of tuples one request may add or remove.
	MaxPATScopes = keystore.MaxListLen
)

// patScopesKey prefixes the metadata entries that hold a PAT's tuples.
const patScopesKey = "pat.scopes."

// ErrPATScopesUnreadable is returned when a PAT's metadata entries named
// "pat.scopes.N" do not hold scope tuples: they were written outside the
// PAT API (as metadata of POST /v1/admin/keys). The PAT's scopes cannot be
// changed; its patterns still apply.
var ErrPATScopesUnreadable = errors.New("verify: the PAT's scope tuples cannot be read")

// A PATScope is one scope of a PAT in SuperMQ's form. It grants the
// pattern [rbac.PATScope] maps it onto.
type PATScope struct {
	Domain     string // the domain id (SuperMQ's optional_domain_id); required, as every pattern lies inside a domain
	EntityType string // clients, channels, groups, dashboards, messages or domains
	Operation  string // create, list, read (or view), update, delete, share, unshare, publish, subscribe
	EntityID   string // one entity's id, or "*" for every entity
}

// Pattern returns the scope pattern s grants.
func (s PATScope) Pattern() (string, error) {
	return rbac.PATScope(s.Domain, s.EntityType, s.Operation, s.EntityID)
}

// A PATSpec describes a PAT to create.
type PATSpec struct {
	Subject     string        // the owner (required)
	Name        string        // required
	Description string        // free text
	Duration    time.Duration // validity; zero means DefaultPATDuration
	Scopes      []PATScope    // initial scopes, may be empty
	Creator     string        // who asked, recorded on the PAT
}

// SetPATMaxDuration sets the longest validity a PAT may be created or
// reset with; d <= 0 means DefaultPATMaxDuration.
func (m *Manager) SetPATMaxDuration(d time.Duration) {
	m.patMaxDuration.Store(int64(max(d, 0)))
}

// PATMaxDuration returns the longest validity a PAT may be given.
func (m *Manager) PATMaxDuration() time.Duration {
	if d := time.Duration(m.patMaxDuration.Load()); d > 0 {
		return d
	}
	return DefaultPATMaxDuration
}

// The audit actions of PAT changes (see [Manager.AuditLog]).
const (
	ActionPATCreate      = "pat.create"
	ActionPATScopeAdd    = "pat.scope_add"
	ActionPATScopeRemove = "pat.scope_remove"
	ActionPATRevoke      = "pat.revoke"
	ActionPATReset       = "pat.reset"
)

// CreatePAT creates a PAT and returns its record and its secret
// ("pat_<id>_<secret>"), which is not stored and cannot be shown again.
// An invalid spec is an *InvalidSpecError listing every problem; nothing
// is written then. The creation, or its failure, is audited (pat.create).
func (m *Manager) CreatePAT(ctx context.Context, spec PATSpec) (keystore.Record, string, error) {
	e := m.entry(ctx, ActionPATCreate, "")
	e.Detail = keyDetail(keystore.KindPAT, spec.Subject)
	if spec.Duration == 0 {
		spec.Duration = DefaultPATDuration
	}
	problems := m.checkPATDuration(spec.Duration)
	if spec.Name == "" {
		problems = append(problems, "name is required")
	}
	patterns, p := patPatterns(spec.Scopes)
	problems = append(problems, p...)
	ks := KeySpec{
		Subject:     spec.Subject,
		Kind:        keystore.KindPAT,
		Name:        spec.Name,
		Description: spec.Description,
		Scopes:      uniq(patterns),
		ExpiresIn:   spec.Duration,
		Creator:     spec.Creator,
	}
	problems = append(problems, checkSpec(ks)...)
	if len(problems) > 0 {
		return keystore.Record{}, "", m.fail(ctx, e, &InvalidSpecError{Problems: problems})
	}
	id, err := credential.NewID()
	if err != nil {
		return keystore.Record{}, "", m.fail(ctx, e, err)
	}
	secret, err := credential.NewPAT(id)
	if err != nil {
		return keystore.Record{}, "", m.fail(ctx, e, err)
	}
	rec := m.record(id, ks, secret)
	if err := setPATScopes(&rec, uniq(spec.Scopes)); err != nil {
		return keystore.Record{}, "", m.fail(ctx, e, err)
	}
	e.Target = id
	e.Detail += " duration=" + spec.Duration.String()
	err = m.audited(ctx, &e, func(tx *keystore.Txn) (err error) {
		rec, err = tx.Create(rec)
		return err
	})
	if err != nil {
		return keystore.Record{}, "", err
	}
	return rec, secret, nil
}

// ListPATs returns the PATs of subject, or every PAT when subject is
// empty, sorted by id.
func (m *Manager) ListPATs(subject string) ([]keystore.Record, error) {
	recs, err := m.store.List(subject)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(recs, func(r keystore.Record) bool { return r.Kind != keystore.KindPAT }), nil
}

// GetPAT returns the PAT id of owner (of any subject when owner is empty).
// Another subject's PAT, and a credential of another kind, is
// keystore.ErrNotFound, as an unknown id is: nobody learns that it exists.
func (m *Manager) GetPAT(owner, id string) (keystore.Record, error) {
	r, err := m.store.Get(id)
	if err != nil {
		return keystore.Record{}, err
	}
	if !ownsPAT(&r, owner) {
		return keystore.Record{}, keystore.ErrNotFound
	}
	return r, nil
}

// AddPATScopes adds scopes to the PAT id of owner (any subject when owner
// is empty) and returns the PAT as it now is. A tuple the PAT holds already
// is not added twice. If any tuple is invalid, the error (an
// *InvalidSpecError) names each problem and nothing changes. A revoked PAT
// is ErrRevoked. The change is audited (pat.scope_add).
func (m *Manager) AddPATScopes(ctx context.Context, owner, id string, scopes []PATScope) (keystore.Record, error) {
	return m.updatePAT(ctx, ActionPATScopeAdd, owner, id, func(r *keystore.Record) (string, error) {
		if r.Revoked() {
			return "", ErrRevoked
		}
		patterns, err := patChange(scopes)
		if err != nil {
			return "", err
		}
		held, err := PATScopes(r)
		if err != nil {
			return "", err
		}
		for i, sc := range scopes {
			if !slices.Contains(held, sc) {
				held = append(held, sc)
			}
			if !slices.Contains(r.Scopes, patterns[i]) {
				r.Scopes = append(r.Scopes, patterns[i])
			}
		}
		return "patterns=" + strings.Join(uniq(patterns), " "), setPATScopes(r, held)
	})
}

// RemovePATScopes removes the grants of scopes from the PAT id of owner
// (any subject when owner is empty) and returns the PAT as it now is.
// Removing a tuple removes its pattern, and with it every tuple the PAT
// holds that maps onto the same pattern (a "view" with a "read", a
// "messages" publish with the channel's): after the call, the PAT grants
// none of the patterns of scopes. A tuple whose pattern the PAT does not
// grant changes nothing. Invalid tuples and revoked PATs fail as in
// AddPATScopes. The change is audited (pat.scope_remove).
func (m *Manager) RemovePATScopes(ctx context.Context, owner, id string, scopes []PATScope) (keystore.Record, error) {
	return m.updatePAT(ctx, ActionPATScopeRemove, owner, id, func(r *keystore.Record) (string, error) {
		if r.Revoked() {
			return "", ErrRevoked
		}
		patterns, err := patChange(scopes)
		if err != nil {
			return "", err
		}
		held, err := PATScopes(r)
		if err != nil {
			return "", err
		}
		held = slices.DeleteFunc(held, func(sc PATScope) bool {
			p, _ := sc.Pattern() // held tuples are valid: PATScopes checks them
			return slices.Contains(patterns, p)
		})
		r.Scopes = slices.DeleteFunc(r.Scopes, func(p string) bool { return slices.Contains(patterns, p) })
		return "patterns=" + strings.Join(uniq(patterns), " "), setPATScopes(r, held)
	})
}

// RevokePAT revokes the PAT id of owner (any subject when owner is empty)
// and returns it as it now is. Once it returns, no verification that
// starts later accepts the PAT. Revoking a revoked PAT changes nothing
// and succeeds. The revocation is audited (pat.revoke).
func (m *Manager) RevokePAT(ctx context.Context, owner, id string) (keystore.Record, error) {
	return m.updatePAT(ctx, ActionPATRevoke, owner, id, func(r *keystore.Record) (string, error) {
		if r.RevokedAt.IsZero() {
			r.RevokedAt = m.now().UTC()
		}
		return "", nil
	})
}

// ResetPAT gives the PAT id of owner (any subject when owner is empty) a
// new secret, keeping its id, name and scopes, and a new expiry duration
// from now (zero: DefaultPATDuration). The old secret stops working at
// once, even during a rotation grace. An expired PAT may be reset; a
// revoked one is ErrRevoked. The reset is audited (pat.reset).
func (m *Manager) ResetPAT(ctx context.Context, owner, id string, duration time.Duration) (keystore.Record, string, error) {
	if duration == 0 {
		duration = DefaultPATDuration
	}
	var secret string
	rec, err := m.updatePAT(ctx, ActionPATReset, owner, id, func(r *keystore.Record) (string, error) {
		detail := "duration=" + duration.String()
		if problems := m.checkPATDuration(duration); len(problems) > 0 {
			return detail, &InvalidSpecError{Problems: problems}
		}
		if r.Revoked() {
			return detail, ErrRevoked
		}
		s, err := credential.NewPAT(r.ID)
		if err != nil {
			return detail, err
		}
		secret = s
		r.Digest = keystore.Sum(s)
		r.PrevDigest, r.PrevNotAfter = keystore.Digest{}, time.Time{}
		r.ExpiresAt = m.now().Add(duration).UTC()
		return detail, nil
	})
	if err != nil {
		return keystore.Record{}, "", err
	}
	return rec, secret, nil
}

// updatePAT applies fn to the PAT id of owner (any subject when owner is
// empty) in one store transaction, and audits the change as action, with
// the detail fn returns. A record that is not such a PAT is
// keystore.ErrNotFound. If fn fails, nothing is written but the audit
// entry of the failure.
func (m *Manager) updatePAT(ctx context.Context, action, owner, id string, fn func(*keystore.Record) (string, error)) (keystore.Record, error) {
	e := m.entry(ctx, action, id)
	var rec keystore.Record
	err := m.audited(ctx, &e, func(tx *keystore.Txn) (err error) {
		rec, err = tx.Update(id, func(r *keystore.Record) error {
			if !ownsPAT(r, owner) {
				return keystore.ErrNotFound
			}
			e.Detail = keyDetail(r.Kind, r.Subject)
			detail, err := fn(r)
			if detail != "" {
				e.Detail += " " + auditText(detail)
			}
			return err
		})
		return err
	})
	return rec, err
}

// ownsPAT reports whether r is a PAT of owner (of anyone when owner is
// empty).
func ownsPAT(r *keystore.Record, owner string) bool {
	return r.Kind == keystore.KindPAT && (owner == "" || r.Subject == owner)
}

// checkPATDuration reports what is wrong with d as a PAT's validity.
func (m *Manager) checkPATDuration(d time.Duration) []string {
	switch limit := m.PATMaxDuration(); {
	case d < 0:
		return []string{"duration must be positive"}
	case d > limit:
		return []string{fmt.Sprintf("duration %v is longer than the maximum of %v", d, limit)}
	}
	return nil
}

// patChange checks the tuples of a scope change and returns their
// patterns, or an *InvalidSpecError naming every problem.
func patChange(scopes []PATScope) ([]string, error) {
	var problems []string
	switch {
	case len(scopes) == 0:
		problems = append(problems, `scopes is required: at least one {"optional_domain_id", "entity_type", "operation", "entity_id"}`)
	case len(scopes) > MaxPATScopes:
		problems = append(problems, fmt.Sprintf("at most %d scopes per request", MaxPATScopes))
	}
	patterns, p := patPatterns(scopes)
	if problems = append(problems, p...); len(problems) > 0 {
		return nil, &InvalidSpecError{Problems: problems}
	}
	return patterns, nil
}

// patPatterns returns the pattern of each tuple and a problem for each
// invalid one, named by its index.
func patPatterns(scopes []PATScope) ([]string, []string) {
	var problems []string
	patterns := make([]string, len(scopes))
	for i, sc := range scopes {
		var missing []string
		for _, f := range [...]struct{ name, v string }{
			{"optional_domain_id", sc.Domain}, {"entity_type", sc.EntityType}, {"operation", sc.Operation}, {"entity_id", sc.EntityID},
		} {
			if f.v == "" {
				missing = append(missing, f.name)
			}
		}
		if len(missing) > 0 {
			problems = append(problems, fmt.Sprintf("scopes[%d]: %s required (entity_id \"*\" means every entity)", i, strings.Join(missing, ", ")))
			continue
		}
		p, err := sc.Pattern()
		if err != nil {
			problems = append(problems, fmt.Sprintf("scopes[%d]: %s", i, strings.TrimPrefix(err.Error(), "rbac: ")))
			continue
		}
		if len(sc.line()) > keystore.MaxMetadataValLen {
			problems = append(problems, fmt.Sprintf("scopes[%d]: the tuple is longer than %d bytes", i, keystore.MaxMetadataValLen))
			continue
		}
		patterns[i] = p
	}
	return patterns, problems
}

// line is the stored form of s.
func (s PATScope) line() string {
	return s.Domain + " " + s.EntityType + " " + s.Operation + " " + s.EntityID
}

// PATScopes returns the scope tuples of the PAT r, in the order they were
// added. A PAT created with patterns only (through POST /v1/admin/keys)
// has none. Entries that do not hold valid tuples are
// ErrPATScopesUnreadable.
func PATScopes(r *keystore.Record) ([]PATScope, error) {
	var out []PATScope
	for i := 0; ; i++ {
		key := patScopesKey + strconv.Itoa(i)
		v, ok := r.Metadata[key]
		if !ok {
			return out, nil
		}
		for line := range strings.SplitSeq(v, "\n") {
			f := strings.Split(line, " ")
			if len(f) != 4 {
				return nil, fmt.Errorf("%w: PAT %s: metadata entry %q holds %.64q", ErrPATScopesUnreadable, r.ID, key, line)
			}
			sc := PATScope{Domain: f[0], EntityType: f[1], Operation: f[2], EntityID: f[3]}
			if _, err := sc.Pattern(); err != nil {
				return nil, fmt.Errorf("%w: PAT %s: metadata entry %q: %v", ErrPATScopesUnreadable, r.ID, key, err)
			}
			out = append(out, sc)
		}
	}
}

// setPATScopes replaces the tuples stored in r's metadata by scopes, valid
// tuples at most keystore.MaxMetadataValLen bytes long each. It checks
// the limits of the tuples and of the patterns, which the caller has
// updated, and reports an *InvalidSpecError when they are exceeded.
func setPATScopes(r *keystore.Record, scopes []PATScope) error {
	for k := range r.Metadata {
		if strings.HasPrefix(k, patScopesKey) {
			delete(r.Metadata, k)
		}
	}
	var chunks []string
	var b strings.Builder
	for _, sc := range scopes {
		line := sc.line()
		if b.Len() > 0 && b.Len()+1+len(line) > keystore.MaxMetadataValLen {
			chunks = append(chunks, b.String())
			b.Reset()
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(line)
	}
	if b.Len() > 0 {
		chunks = append(chunks, b.String())
	}
	var problems []string
	if len(scopes) > MaxPATScopes {
		problems = append(problems, fmt.Sprintf("a PAT holds at most %d scopes; this change would leave %d", MaxPATScopes, len(scopes)))
	}
	if len(r.Scopes) > keystore.MaxListLen {
		problems = append(problems, fmt.Sprintf("a PAT grants at most %d patterns; this change would leave %d", keystore.MaxListLen, len(r.Scopes)))
	}
	if n := len(r.Metadata) + len(chunks); n > keystore.MaxMetadata {
		problems = append(problems, fmt.Sprintf("the PAT's scopes take %d metadata entries of %d bytes, and only %d of %d are free", len(chunks), keystore.MaxMetadataValLen, keystore.MaxMetadata-len(r.Metadata), keystore.MaxMetadata))
	}
	if len(problems) > 0 {
		return &InvalidSpecError{Problems: problems}
	}
	if len(chunks) > 0 && r.Metadata == nil {
		r.Metadata = make(map[string]string, len(chunks))
	}
	for i, c := range chunks {
		r.Metadata[patScopesKey+strconv.Itoa(i)] = c
	}
	return nil
}

// uniq returns s without repeated elements, keeping the first of each.
func uniq[T comparable](s []T) []T {
	var out []T
	for _, v := range s {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}
