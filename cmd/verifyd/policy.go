package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verifyd/verifyd/ipc/httpapi"
	"github.com/verifyd/verifyd/rbac"
	"github.com/verifyd/verifyd/verify"
)

// Results of a policy reload: the label values of
// verifyd_policy_reloads_total.
const (
	reloadChanged   = "changed"   // a new policy is in force
	reloadUnchanged = "unchanged" // the file holds the policy in force
	reloadInvalid   = "invalid"   // the file is not a valid policy; the old one serves
	reloadError     = "error"     // the file could not be read; the old one serves
)

// policyLoader reads the authorization policy file and keeps the verifier's
// policy in step with it: at start, on SIGHUP, when the file changes, and on
// POST /v1/admin/policy/reload. An invalid or unreadable file leaves the
// policy in force serving. It implements httpapi.PolicyAdmin and is safe
// for concurrent use.
type policyLoader struct {
	path string // absolute; "" when no policy file is configured
	log  *slog.Logger

	reloads map[string]prometheus.Counter // by result
	info    *prometheus.GaugeVec          // {mode}, 1 for the mode in force
	// auditor records the reloads of SIGHUP and file changes in the audit
	// trail (the API's are recorded by the HTTP server); set before watch
	// starts, nil for none.
	auditor *verify.Manager

	// mu serializes loads and guards the fields below.
	mu         sync.Mutex
	verifier   *verify.Verifier // whose policy reloads replace
	loadedAt   time.Time        // when the policy in force was put in force
	lastReload time.Time        // the last reload, zero before the first
	lastErr    error            // of the last reload (or start load)
	seen       fileID           // the file as last read (or found missing)

	// publish, in replicated mode, shares a policy document with every
	// node (committed to etcd and applied here before it returns); nil in
	// single-node mode. shared is the document last shared or adopted.
	publish func(doc []byte) error
	shared  []byte
}

// fileID identifies a version of the policy file: a change of any field
// means the file may hold something else.
type fileID struct {
	exists      bool
	dev, ino    uint64
	size, mtime int64
}

func fileIDOf(fi os.FileInfo) fileID {
	id := fileID{exists: true, size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.dev, id.ino = uint64(st.Dev), st.Ino
	}
	return id
}

// newPolicyLoader returns the loader of path ("" for none), registering its
// metrics with reg. It loads nothing yet: see load; and it reloads nothing
// before its verifier is set.
func newPolicyLoader(path string, reg prometheus.Registerer, log *slog.Logger) (*policyLoader, error) {
	if path != "" {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, fmt.Errorf("policy file %s: %w", path, err)
		}
		path = abs
	}
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "verifyd",
		Subsystem: "policy",
		Name:      "reloads_total",
		Help:      "Authorization policy reloads (SIGHUP, file change, admin API) by result: changed, unchanged, invalid (the old policy serves), error (the file could not be read).",
	}, []string{"result"})
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "verifyd",
		Subsystem: "policy",
		Name:      "info",
		Help:      "The authorization policy in force: 1 for its mode (deny_all, rbac or none).",
	}, []string{"mode"})
	for _, c := range []prometheus.Collector{reloads, info} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	l := &policyLoader{path: path, log: log.With(slog.String("component", "policy")), reloads: map[string]prometheus.Counter{}, info: info}
	for _, r := range []string{reloadChanged, reloadUnchanged, reloadInvalid, reloadError} {
		l.reloads[r] = reloads.WithLabelValues(r)
	}
	return l, nil
}

// load loads the policy at start and returns it, for the verifier to
// start with; the default policy (deny_all) without a policy file. An
// error means the daemon must not start; a *rbac.PolicyError lists every
// problem of the file. The verifier must be set (setVerifier) before any
// reload.
func (l *policyLoader) load() (*rbac.Policy, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.loadedAt = time.Now()
	if l.path == "" {
		p := rbac.DefaultPolicy()
		l.log.Info("no policy file configured: mode deny_all, only the scopes a credential carries itself grant")
		l.inForce(p)
		return p, nil
	}
	p, _, id, err := readPolicy(l.path)
	l.seen = id
	if err != nil {
		return nil, err
	}
	l.inForce(p)
	l.log.Info("policy loaded", summaryAttrs(l.path, p)...)
	return p, nil
}

// adoptShared makes doc, the policy document the cluster shares, the one
// to start with, in place of the file's (replicated mode: the cluster's
// policy is the one in force on every node). It returns the policy, or nil
// and the error when doc is not a valid policy, which is logged: the node
// then starts with its own.
func (l *policyLoader) adoptShared(doc []byte) (*rbac.Policy, error) {
	p, err := rbac.ParsePolicy(doc)
	if err != nil {
		l.log.Error("the cluster's policy is invalid; this node starts with its own", "err", err)
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.shared = doc
	l.inForce(p)
	l.log.Info("policy adopted from the cluster", summaryAttrs(l.path, p)...)
	return p, nil
}

// applyShared puts doc, a policy document another node shared, in force
// unless it is the policy in force. An invalid one (which a node never
// shares) is logged and ignored.
func (l *policyLoader) applyShared(doc []byte) {
	p, err := rbac.ParsePolicy(doc)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.log.Error("ignoring an invalid policy from the cluster; the policy in force is unchanged", "err", err)
		return
	}
	l.shared = doc
	if l.verifier == nil || p.Equal(l.verifier.Policy()) {
		return
	}
	l.verifier.SetPolicy(p)
	l.loadedAt = time.Now()
	l.reloads[reloadChanged].Inc()
	l.inForce(p)
	l.log.Info("policy replaced by the cluster's", summaryAttrs(l.path, p)...)
}

// setVerifier names the verifier whose policy reloads replace; it must
// have been created with the policy load returned.
func (l *policyLoader) setVerifier(v *verify.Verifier) {
	l.mu.Lock()
	l.verifier = v
	l.mu.Unlock()
}

// inForce notes p as the policy in force: the info metric, and the warning
// of mode none. mu must be held.
func (l *policyLoader) inForce(p *rbac.Policy) {
	l.info.Reset()
	l.info.WithLabelValues(p.Mode().String()).Set(1)
	if p.Mode() == rbac.None {
		l.log.Warn("!!! " + httpapi.NoneModeWarning + " !!!")
	}
}

func summaryAttrs(path string, p *rbac.Policy) []any {
	s := p.Summary()
	return []any{"file", path, "mode", s.Mode.String(), "roles", s.Roles, "patterns", s.Patterns, "subjects", s.Subjects, "acls", s.ACLs, "streams", s.Streams}
}

// readPolicy reads and parses the file at path, and returns the policy
// and the document it was parsed from. The returned fileID is that of the
// file read (from the open file, so that it names what was read even if
// the path is replaced meanwhile), or of no file.
func readPolicy(path string) (*rbac.Policy, []byte, fileID, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fileID{}, fmt.Errorf("cannot read the policy file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fileID{}, fmt.Errorf("cannot read the policy file: %w", err)
	}
	id := fileIDOf(fi)
	if !fi.Mode().IsRegular() {
		return nil, nil, id, fmt.Errorf("cannot read the policy file: %s is not a regular file", path)
	}
	// One byte more than the limit, so that ParsePolicy reports a file
	// that is too large rather than reading a truncated one.
	data, err := io.ReadAll(io.LimitReader(f, rbac.MaxPolicySize+1))
	if err != nil {
		return nil, nil, id, fmt.Errorf("cannot read the policy file: %w", err)
	}
	p, err := rbac.ParsePolicy(data)
	return p, data, id, err
}

// reload reads the file again and puts its policy in force unless it is
// Equal to the policy in force. trigger names the cause for the log. On
// error the policy in force keeps serving.
func (l *policyLoader) reload(trigger string) (httpapi.PolicyStatus, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.path == "" {
		return l.status(false), httpapi.ErrNoPolicyFile
	}
	l.lastReload = time.Now()
	p, doc, id, err := readPolicy(l.path)
	l.seen = id
	l.lastErr = err
	var pe *rbac.PolicyError
	switch {
	case errors.As(err, &pe):
		l.reloads[reloadInvalid].Inc()
		l.log.Error("policy reload refused: the file is invalid; the policy in force is unchanged", "file", l.path, "trigger", trigger, "problems", len(pe.Problems))
		for _, prob := range pe.Problems {
			l.log.Error("policy problem", "file", l.path, "problem", prob.String())
		}
		return l.status(false), err
	case err != nil:
		l.reloads[reloadError].Inc()
		l.log.Error("policy reload failed; the policy in force is unchanged", "file", l.path, "trigger", trigger, "err", err)
		return l.status(false), err
	}
	if p.Equal(l.verifier.Policy()) && (l.publish == nil || bytes.Equal(doc, l.shared)) {
		l.reloads[reloadUnchanged].Inc()
		l.log.Info("policy reloaded: unchanged", "file", l.path, "trigger", trigger)
		return l.status(false), nil
	}
	if l.publish != nil {
		// Shared first: the node that published it applies it like every
		// other (the change comes back through the feed), and puts it in
		// force here at once.
		if err := l.publish(doc); err != nil {
			l.lastErr = err
			l.reloads[reloadError].Inc()
			l.log.Error("policy reload failed: the policy could not be shared with the cluster; the policy in force is unchanged", "file", l.path, "trigger", trigger, "err", err)
			return l.status(false), err
		}
		l.shared = doc
	}
	l.verifier.SetPolicy(p)
	l.loadedAt = l.lastReload
	l.reloads[reloadChanged].Inc()
	l.inForce(p)
	l.log.Info("policy reloaded", append(summaryAttrs(l.path, p), "trigger", trigger)...)
	return l.status(true), nil
}

// status reports the policy in force. mu must be held.
func (l *policyLoader) status(changed bool) httpapi.PolicyStatus {
	return httpapi.PolicyStatus{
		Policy:     l.verifier.Policy(),
		File:       l.path,
		LoadedAt:   l.loadedAt,
		LastReload: l.lastReload,
		LastError:  l.lastErr,
		Changed:    changed,
	}
}

// ReloadPolicy implements httpapi.PolicyAdmin.
func (l *policyLoader) ReloadPolicy() (httpapi.PolicyStatus, error) { return l.reload("api") }

// PolicyStatus implements httpapi.PolicyAdmin.
func (l *policyLoader) PolicyStatus() httpapi.PolicyStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.status(false)
}

var _ httpapi.PolicyAdmin = (*policyLoader)(nil)

// watch reloads the policy whenever hup delivers a signal, and, when
// interval is positive, whenever the file's inode, size or modification
// time differs from the version last read (checked every interval). A file
// that disappears is reported once and keeps the policy in force; it is
// loaded again when it comes back. It returns when ctx ends.
func (l *policyLoader) watch(ctx context.Context, hup <-chan os.Signal, interval time.Duration) error {
	var tick <-chan time.Time
	if l.path != "" && interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			if l.path == "" {
				l.log.Info("SIGHUP: no policy file is configured; nothing to reload")
				continue
			}
			st, err := l.reload("sighup")
			l.auditReload("sighup", st, err)
		case <-tick:
			l.check()
		}
	}
}

// check reloads the file when it changed since it was last read.
func (l *policyLoader) check() {
	var id fileID
	fi, err := os.Stat(l.path)
	if err == nil {
		id = fileIDOf(fi)
	}
	l.mu.Lock()
	seen := l.seen
	if id == seen {
		l.mu.Unlock()
		return
	}
	if !id.exists {
		// Gone: say so once, and serve on.
		l.seen = id
		l.mu.Unlock()
		l.log.Warn("the policy file has disappeared; the policy in force is unchanged", "file", l.path, "err", err)
		return
	}
	l.mu.Unlock()
	st, err := l.reload("file_change")
	l.auditReload("file_change", st, err)
}
