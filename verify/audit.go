package verify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/rbac"
)

// The actions of the audit trail, as recorded in [keystore.AuditEntry]
// Action.
const (
	ActionKeyCreate        = "key.create"
	ActionKeyImport        = "key.import"
	ActionKeyRotate        = "key.rotate"
	ActionKeyRevoke        = "key.revoke"
	ActionJWTRevokeToken   = "jwt.revoke_token"
	ActionJWTRevokeSubject = "jwt.revoke_subject"
	ActionRequestApprove   = "request.approve"
	ActionRequestDeny      = "request.deny"
	ActionAgentRevoke      = "agent.revoke"
	ActionPolicyReload     = "policy.reload"
)

// The outcomes of audited actions: [OutcomeOK], or the class of the error,
// as [Outcome] derives it.
const (
	OutcomeOK       = "ok"
	OutcomeInvalid  = "invalid"   // the request was refused as invalid; nothing changed
	OutcomeNotFound = "not_found" // the object does not exist; nothing changed
	OutcomeConflict = "conflict"  // the object's state forbids it (revoked, decided); nothing changed
	OutcomeError    = "error"     // an I/O or internal failure; nothing was acknowledged
)

// ActorSystem is the actor of actions verifyd takes by itself, and of
// Manager calls whose context names no actor.
const ActorSystem = "system"

type actorKey struct{}

// WithActor returns a copy of ctx naming actor as the one on whose behalf
// the Manager calls made with it act; the audit trail records it. The
// actor is request-scoped identity, which is what context values are for:
// the Manager's signatures stay those of its callers' operations.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorFrom returns the actor ctx names, or [ActorSystem].
func ActorFrom(ctx context.Context) string {
	if a, ok := ctx.Value(actorKey{}).(string); ok && a != "" {
		return a
	}
	return ActorSystem
}

// AdminActor returns the audit actor of the admin key whose SHA-256 is
// adminDigest: "admin:" and 8 hexadecimal characters of a hash of the
// digest. It is stable while the admin key stays the same, changes when
// the key is reset, and tells nothing about the key.
func AdminActor(adminDigest keystore.Digest) string {
	h := sha256.New()
	h.Write([]byte("verifyd audit actor\x00"))
	h.Write(adminDigest[:])
	return "admin:" + hex.EncodeToString(h.Sum(nil)[:4])
}

// SubjectActor returns the audit actor of an owner acting with their own
// credential: "subject:" and the subject.
func SubjectActor(subject string) string { return "subject:" + auditText(subject) }

// AdminActor returns the audit actor of the admin key the Manager checks.
func (m *Manager) AdminActor() string { return m.adminActor }

// An AuditSink receives each audit entry once it is durable in the store:
// the daemon mirrors them to a file. WriteAudit must be safe for concurrent
// use and must not call the Manager; it reports its own failures (the
// store holds the entry regardless).
type AuditSink interface {
	WriteAudit(keystore.AuditEntry)
}

// Outcome returns the audit outcome of an action that ended with err:
// [OutcomeOK] for nil, otherwise the class of the error.
func Outcome(err error) string {
	var spec *InvalidSpecError
	var state *RequestStateError
	switch {
	case err == nil:
		return OutcomeOK
	case errors.As(err, &spec), errors.Is(err, keystore.ErrInvalidRecord), errors.Is(err, keystore.ErrInvalidRevocation):
		return OutcomeInvalid
	case errors.Is(err, keystore.ErrNotFound), errors.Is(err, ErrRequestNotFound):
		return OutcomeNotFound
	case errors.Is(err, ErrRevoked), errors.Is(err, keystore.ErrDigestInUse), errors.Is(err, keystore.ErrExists), errors.Is(err, keystore.ErrConflict),
		errors.As(err, &state), errors.Is(err, ErrAgentHasKey), errors.Is(err, ErrRequestPending):
		return OutcomeConflict
	}
	return OutcomeError
}

// ReloadOutcome returns the audit outcome of a policy reload that ended
// with err: [OutcomeInvalid] for a file that is not a valid policy,
// [OutcomeError] for one that could not be read.
func ReloadOutcome(err error) string {
	var pe *rbac.PolicyError
	switch {
	case err == nil:
		return OutcomeOK
	case errors.As(err, &pe):
		return OutcomeInvalid
	}
	return OutcomeError
}

// entry starts the audit entry of action on target by the actor ctx names.
func (m *Manager) entry(ctx context.Context, action, target string) keystore.AuditEntry {
	return keystore.AuditEntry{Time: m.now(), Actor: auditText(ActorFrom(ctx)), Action: action, Target: auditTarget(target)}
}

// audited runs fn in one store transaction and stages *e, with outcome ok,
// in its batch when fn succeeds: the change and its entry are durable
// together or not at all. fn may fill in e's Target and Detail. When fn or
// the commit fails, nothing changed, and *e is recorded with the error's
// outcome on its own right after (see fail).
func (m *Manager) audited(ctx context.Context, e *keystore.AuditEntry, fn func(*keystore.Txn) error) error {
	entries, err := m.store.Apply(ctx, func(tx *keystore.Txn) error {
		if err := fn(tx); err != nil {
			return err
		}
		e.Outcome = OutcomeOK
		tx.Audit(*e)
		return nil
	})
	if err != nil {
		return m.fail(ctx, *e, err)
	}
	m.mirror(entries)
	return nil
}

// fail records e with the outcome of err, synced, and returns err. A
// not-found outcome drops the target: a reference that named nothing is
// not recorded, since an operator may have pasted a secret where an ID was
// due. If the entry cannot be written (the store failed, which is likely
// why the action failed), the failure is logged and the entry is lost:
// the action changed nothing.
func (m *Manager) fail(ctx context.Context, e keystore.AuditEntry, err error) error {
	e.Outcome = Outcome(err)
	if e.Outcome == OutcomeNotFound {
		e.Target = ""
	}
	if errors.Is(err, keystore.ErrUnavailable) {
		// The entry would wait for the same unreachable shared store: the
		// log is its only record.
		m.log.Error("audit entry not written: the shared store is unavailable", slog.String("action", e.Action),
			slog.String("actor", e.Actor), slog.String("target", e.Target), slog.String("outcome", e.Outcome))
		return err
	}
	m.writeEntry(context.WithoutCancel(ctx), e)
	return err
}

// writeEntry writes e on its own, synced, and mirrors it.
func (m *Manager) writeEntry(ctx context.Context, e keystore.AuditEntry) {
	entries, err := m.store.Audit(ctx, e)
	if err != nil {
		m.log.Error("cannot write an audit entry", slog.String("action", e.Action), slog.String("outcome", e.Outcome), slog.Any("err", err))
		return
	}
	m.mirror(entries)
}

// mirror hands committed entries to the sink.
func (m *Manager) mirror(entries []keystore.AuditEntry) {
	if m.sink == nil {
		return
	}
	for _, e := range entries {
		m.sink.WriteAudit(e)
	}
}

// Audit records an action the Manager does not carry out itself (a policy
// reload) with the actor ctx names: action, its target, the outcome (one of
// the Outcome constants) and a short non-secret detail. The entry is
// synced before Audit returns.
func (m *Manager) Audit(ctx context.Context, action, target, outcome, detail string) error {
	e := m.entry(ctx, action, target)
	e.Outcome, e.Detail = outcome, auditText(detail)
	entries, err := m.store.Audit(ctx, e)
	if err != nil {
		return err
	}
	m.mirror(entries)
	return nil
}

// AuditLog returns the audit entries q selects and where to continue (see
// [keystore.Store.ListAudit]).
func (m *Manager) AuditLog(q keystore.AuditQuery) ([]keystore.AuditEntry, *keystore.AuditPos, error) {
	return m.store.ListAudit(q)
}

// maxAuditText is the longest text an audit entry keeps from its input;
// longer text is cut and quoted.
const maxAuditText = 256

// auditText returns s if it is short printable UTF-8, and otherwise a
// quoted, ASCII-only form of its first maxAuditText bytes, so that an entry
// is always valid whatever input named its object.
func auditText(s string) string {
	if len(s) <= maxAuditText && utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0 {
		return s
	}
	if len(s) > maxAuditText {
		return strconv.QuoteToASCII(s[:maxAuditText]) + "..."
	}
	return strconv.QuoteToASCII(s)
}

// auditTarget is auditText of a target, except that a target shaped like a
// credential (a JWT, an API key, a PAT) is recorded as the first 8
// hexadecimal characters of its SHA-256: an operator who pasted a token
// where an identifier was due must not find it in the audit trail.
func auditTarget(s string) string {
	if strings.HasPrefix(s, "vk_") || strings.HasPrefix(s, "pat_") || strings.HasPrefix(s, "ey") && strings.Count(s, ".") == 2 {
		return "sha256:" + keystore.Sum(s).String()
	}
	return auditText(s)
}
