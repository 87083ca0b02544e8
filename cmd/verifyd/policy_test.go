package main

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/verifyd/verifyd/ipc/httpapi"
	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/rbac"
	"github.com/verifyd/verifyd/verify"
	"github.com/verifyd/verifyd/verify/credential"
)

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newTestLoader returns a loader of file, loaded, over a real verifier.
func newTestLoader(t *testing.T, file string) (*policyLoader, *verify.Verifier, *syncBuffer, *prometheus.Registry) {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	reg := prometheus.NewRegistry()
	l, err := newPolicyLoader(file, reg, log)
	if err != nil {
		t.Fatal(err)
	}
	p, err := l.load()
	if err != nil {
		t.Fatal(err)
	}
	store, err := keystore.Open(t.TempDir(), &keystore.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ck, _ := credential.NewChecksumKey()
	minter, err := credential.NewMinter(ck)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(store, minter, &verify.Options{Logger: log, Policy: p})
	if err != nil {
		t.Fatal(err)
	}
	l.setVerifier(v)
	return l, v, logs, reg
}

func TestPolicyLoaderFileChecks(t *testing.T) {
	file := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(file, []byte(agentPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	l, v, logs, reg := newTestLoader(t, file)
	first := v.Policy()
	if first.Mode() != rbac.RBAC {
		t.Fatalf("mode %v", first.Mode())
	}
	if got := value(l.info.WithLabelValues("rbac")); got != 1 {
		t.Errorf("policy info %v", got)
	}

	// Nothing changed: no reload.
	l.check()
	if st := l.PolicyStatus(); !st.LastReload.IsZero() || v.Policy() != first {
		t.Fatalf("a check of an unchanged file reloaded: %+v", st)
	}

	// The file disappears: reported once, the policy stays.
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	l.check()
	l.check()
	if n := strings.Count(logs.String(), "disappeared"); n != 1 || v.Policy() != first {
		t.Fatalf("a missing file: %d warnings, policy kept %v:\n%s", n, v.Policy() == first, logs)
	}

	// It comes back, changed: loaded.
	writePolicy(t, file, readOnlyPolicy)
	l.check()
	if v.Policy() == first || l.PolicyStatus().LastError != nil {
		t.Fatalf("the file that came back was not loaded: %+v", l.PolicyStatus())
	}
	if got := value(l.reloads[reloadChanged]); got != 1 {
		t.Errorf("changed reloads %v", got)
	}

	// An unreadable file is an error, not an invalid policy.
	if err := os.Chmod(file, 0); err == nil && os.Getuid() != 0 {
		st, err := l.reload("test")
		if err == nil || st.LastError == nil || value(l.reloads[reloadError]) != 1 {
			t.Errorf("unreadable file: %v %+v", err, st)
		}
		var pe *rbac.PolicyError
		if errors.As(err, &pe) {
			t.Errorf("unreadable file reported as invalid: %v", err)
		}
		os.Chmod(file, 0o600)
	}

	// The mode info follows the policy in force.
	writePolicy(t, file, "mode: none\n")
	if _, err := l.reload("test"); err != nil {
		t.Fatal(err)
	}
	if got := value(l.info.WithLabelValues("none")); got != 1 {
		t.Errorf("policy info none %v", got)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "verifyd_policy_info" && len(mf.GetMetric()) != 1 {
			t.Errorf("%d policy info series, want 1", len(mf.GetMetric()))
		}
	}
	if !strings.Contains(logs.String(), "mode none") {
		t.Errorf("no warning for mode none:\n%s", logs)
	}
}

func TestPolicyLoaderWithoutFile(t *testing.T) {
	l, v, _, _ := newTestLoader(t, "")
	if v.Policy().Mode() != rbac.DenyAll {
		t.Fatalf("mode %v", v.Policy().Mode())
	}
	if _, err := l.reload("test"); !errors.Is(err, httpapi.ErrNoPolicyFile) {
		t.Fatalf("reload without a file: %v", err)
	}
}

// value reads a counter or gauge.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}
