package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verifyd/verifyd/ipc/httpapi"
	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/verify"
)

// auditFile mirrors the audit trail to a file, one JSON object per line
// (audit.file). Each entry is written with one write(2) to a file opened
// for appending, then synced, before the action it records is answered;
// the store holds the trail regardless, so a failed write is logged and
// counted (verifyd_audit_file_errors_total) and the action stands. SIGHUP
// reopens the file, so that a log rotator can rename it away and signal.
// It implements verify.AuditSink and is safe for concurrent use.
type auditFile struct {
	path   string
	log    *slog.Logger
	errors prometheus.Counter

	mu sync.Mutex // guards f and serializes lines
	f  *os.File
}

var _ verify.AuditSink = (*auditFile)(nil)

// auditLine is an entry as the file holds it: the shape of the entries of
// GET /v1/admin/audit.
type auditLine struct {
	Time    time.Time `json:"time"`
	Seq     uint64    `json:"seq"`
	Actor   string    `json:"actor"`
	Action  string    `json:"action"`
	Target  string    `json:"target,omitempty"`
	Outcome string    `json:"outcome"`
	Detail  string    `json:"detail,omitempty"`
}

// openAuditFile opens path for appending (creating it with mode 0600),
// registering the error counter with reg. It returns nil for an empty
// path.
func openAuditFile(path string, reg prometheus.Registerer, log *slog.Logger) (*auditFile, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit file: %w", err)
	}
	errs := prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "verifyd",
		Subsystem: "audit",
		Name:      "file_errors_total",
		Help:      "Audit entries that could not be written to audit.file (the store holds them regardless), and failed reopens.",
	})
	if err := reg.Register(errs); err != nil {
		f.Close()
		return nil, err
	}
	return &auditFile{path: path, log: log.With(slog.String("component", "audit"), slog.String("file", path)), errors: errs, f: f}, nil
}

// WriteAudit appends e as one line and syncs the file.
func (a *auditFile) WriteAudit(e keystore.AuditEntry) {
	b, err := json.Marshal(auditLine{Time: e.Time.UTC(), Seq: e.Seq, Actor: e.Actor, Action: e.Action, Target: e.Target, Outcome: e.Outcome, Detail: e.Detail})
	if err != nil {
		panic("audit: encode entry: " + err.Error()) // only our own strings
	}
	b = append(b, '\n')
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, err = a.f.Write(b); err == nil {
		err = a.f.Sync()
	}
	if err != nil {
		a.errors.Inc()
		a.log.Error("cannot write an audit entry to the audit file; the store keeps it", slog.Uint64("seq", e.Seq), slog.Any("err", err))
	}
}

// reopen opens the path again and swaps the new file in; on failure the
// old one stays in use.
func (a *auditFile) reopen() {
	f, err := os.OpenFile(a.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		a.errors.Inc()
		a.log.Error("cannot reopen the audit file; writing on to the old one", slog.Any("err", err))
		return
	}
	a.mu.Lock()
	old := a.f
	a.f = f
	a.mu.Unlock()
	if err := old.Close(); err != nil {
		a.log.Warn("closing the previous audit file", slog.Any("err", err))
	}
	a.log.Info("audit file reopened")
}

// watch reopens the file at every signal hup delivers, until ctx ends.
func (a *auditFile) watch(ctx context.Context, hup <-chan os.Signal) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			a.reopen()
		}
	}
}

// close closes the file; nothing is written after it.
func (a *auditFile) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.f.Close(); err != nil {
		a.log.Warn("closing the audit file", slog.Any("err", err))
	}
}

// auditReload records a reload the daemon made by itself (trigger sighup or
// file_change) with the actor "system:<trigger>". It is synced right after
// the reload: a crash in between loses the entry of a reload whose effect
// (the policy in memory) the crash ends too; the next start loads the file.
func (l *policyLoader) auditReload(trigger string, st httpapi.PolicyStatus, err error) {
	if l.auditor == nil {
		return
	}
	outcome, detail := verify.ReloadOutcome(err), "unchanged"
	switch {
	case err != nil:
		detail = "refused; the policy in force is unchanged"
	case st.Changed:
		detail = "changed"
	}
	if err == nil && st.Policy != nil {
		detail += " mode=" + st.Policy.Mode().String()
	}
	ctx, cancel := context.WithTimeout(verify.WithActor(context.Background(), "system:"+trigger), 30*time.Second)
	defer cancel()
	if err := l.auditor.Audit(ctx, verify.ActionPolicyReload, l.path, outcome, detail); err != nil {
		l.log.Error("cannot write the audit entry of a policy reload", "trigger", trigger, "err", err)
	}
}
