package admintest

import (
	"os"
	"sync"
	"time"

	"github.com/verifyd/verifyd/ipc/httpapi"
	"github.com/verifyd/verifyd/rbac"
	"github.com/verifyd/verifyd/verify"
)

// policyFile reloads the verifier's policy from a file on request, the way
// the daemon does on POST /v1/admin/policy/reload.
type policyFile struct {
	path string
	v    *verify.Verifier

	mu         sync.Mutex
	loadedAt   time.Time
	lastReload time.Time
	lastErr    error
}

var _ httpapi.PolicyAdmin = (*policyFile)(nil)

func (f *policyFile) ReloadPolicy() (httpapi.PolicyStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if !f.loadedAt.IsZero() {
		f.lastReload = now
	}
	data, err := os.ReadFile(f.path)
	var p *rbac.Policy
	if err == nil {
		p, err = rbac.ParsePolicy(data)
	}
	f.lastErr = err
	if err != nil {
		return f.status(false), err
	}
	changed := f.loadedAt.IsZero() || !p.Equal(f.v.Policy())
	if changed {
		f.v.SetPolicy(p)
		f.loadedAt = now
	}
	return f.status(changed), nil
}

func (f *policyFile) PolicyStatus() httpapi.PolicyStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status(false)
}

// status reports the policy in force; f.mu must be held.
func (f *policyFile) status(changed bool) httpapi.PolicyStatus {
	return httpapi.PolicyStatus{
		Policy: f.v.Policy(), File: f.path, LoadedAt: f.loadedAt,
		LastReload: f.lastReload, LastError: f.lastErr, Changed: changed,
	}
}
