// Package admintest provides an in-memory verifyd HTTP API for tests of
// [adminclient] and of the verifyctl command.
//
// A [Server] implements the admin key endpoints and /v1/verify of the HTTP
// contract, with the contract's status codes and JSON bodies, over a real
// loopback listener. It keeps keys in memory, hashes secrets with SHA-256 and
// checks scopes with the real rbac matcher, but it is not the daemon: there
// is no persistence, no cache and no policy (roles grant nothing), so tests
// built on it exercise clients, not verifyd's decisions.
//
// A Server is safe for concurrent use.
package admintest

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/verifyd/verifyd/internal/adminclient"
	"github.com/verifyd/verifyd/rbac"
)

// maxBody bounds request bodies.
const maxBody = 1 << 20

// Import bounds for secrets, as for the daemon's imported keys.
const (
	minImportedSecret = 16
	maxImportedSecret = 512
)

// A Server is an in-memory implementation of the daemon's HTTP API on a
// loopback address. Create it with NewServer and stop it with Close.
type Server struct {
	// URL is the base address of the server, "http://127.0.0.1:port".
	URL string

	srv      *httptest.Server
	adminKey []byte
	requests atomic.Int64

	mu      sync.Mutex             // guards keys and byHash
	keys    map[string]*record     // by id
	byHash  map[[32]byte]string    // SHA-256 of a current or grace-period secret -> id
	expired map[[32]byte]time.Time // SHA-256 of a rotated-out secret -> end of its grace
}

// record is a stored key. Guarded by Server.mu.
type record struct {
	key  adminclient.Key // never holds a secret
	hash [32]byte        // SHA-256 of the current secret
}

// NewServer starts a Server that accepts adminKey in the X-Admin-Key header
// of admin requests. The caller must call Close.
func NewServer(adminKey string) *Server {
	s := &Server{
		adminKey: []byte(adminKey),
		keys:     make(map[string]*record),
		byHash:   make(map[[32]byte]string),
		expired:  make(map[[32]byte]time.Time),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/admin/keys", s.admin(s.create))
	mux.HandleFunc("POST /v1/admin/keys/import", s.admin(s.importKey))
	mux.HandleFunc("GET /v1/admin/keys", s.admin(s.list))
	mux.HandleFunc("GET /v1/admin/keys/{id}", s.admin(s.get))
	mux.HandleFunc("DELETE /v1/admin/keys/{id}", s.admin(s.revoke))
	mux.HandleFunc("POST /v1/admin/keys/{id}/rotate", s.admin(s.rotate))
	mux.HandleFunc("POST /v1/verify", s.verify)
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		mux.ServeHTTP(w, r)
	}))
	s.URL = s.srv.URL
	return s
}

// Close shuts the server down and waits for outstanding requests.
func (s *Server) Close() { s.srv.Close() }

// Requests returns how many HTTP requests the server has received.
func (s *Server) Requests() int { return int(s.requests.Load()) }

// now is the server's clock, truncated to seconds so that timestamps read
// like the daemon's.
func now() time.Time { return time.Now().UTC().Truncate(time.Second) }

// admin wraps a handler with the X-Admin-Key check.
func (s *Server) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		got := r.Header.Get("X-Admin-Key")
		if got == "" {
			writeError(w, http.StatusUnauthorized, adminclient.CodeUnauthorized, "admin key required")
			return
		}
		if subtle.ConstantTimeCompare([]byte(got), s.adminKey) != 1 {
			writeError(w, http.StatusUnauthorized, adminclient.CodeUnauthorized, "invalid admin key")
			return
		}
		h(w, r)
	}
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	var spec adminclient.KeySpec
	if !decode(w, r, &spec) {
		return
	}
	if spec.Kind == "" {
		spec.Kind = adminclient.KindAPIKey
	}
	if !slices.Contains([]string{adminclient.KindAPIKey, adminclient.KindAgent, adminclient.KindPAT}, spec.Kind) {
		writeError(w, http.StatusBadRequest, adminclient.CodeBadRequest, fmt.Sprintf("kind %q cannot be created; use api_key, agent or pat", spec.Kind))
		return
	}
	if msg := checkSpec(spec); msg != "" {
		writeError(w, http.StatusBadRequest, adminclient.CodeBadRequest, msg)
		return
	}
	secret := newSecret(spec.Kind)
	k := s.store(spec, secret)
	k.Secret = secret
	writeJSON(w, http.StatusCreated, k)
}

func (s *Server) importKey(w http.ResponseWriter, r *http.Request) {
	var req adminclient.ImportRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Kind == "" {
		req.Kind = adminclient.KindImported
	}
	if msg := checkSpec(req.KeySpec); msg != "" {
		writeError(w, http.StatusBadRequest, adminclient.CodeBadRequest, msg)
		return
	}
	if n := len(req.Secret); n < minImportedSecret || n > maxImportedSecret || strings.ContainsFunc(req.Secret, func(c rune) bool { return c <= ' ' || c >= 0x7f }) {
		writeError(w, http.StatusBadRequest, adminclient.CodeBadRequest, fmt.Sprintf("secret must be %d to %d printable ASCII characters", minImportedSecret, maxImportedSecret))
		return
	}
	s.mu.Lock()
	_, taken := s.byHash[sha256.Sum256([]byte(req.Secret))]
	s.mu.Unlock()
	if taken {
		writeError(w, http.StatusBadRequest, adminclient.CodeBadRequest, "secret already in use")
		return
	}
	writeJSON(w, http.StatusCreated, s.store(req.KeySpec, req.Secret))
}

// store records a new key and returns it without its secret.
func (s *Server) store(spec adminclient.KeySpec, secret string) adminclient.Key {
	t := now()
	k := adminclient.Key{
		ID:           newID(),
		Kind:         spec.Kind,
		Subject:      spec.Subject,
		Name:         spec.Name,
		Description:  spec.Description,
		Scopes:       spec.Scopes,
		Roles:        spec.Roles,
		ProjectRoles: spec.ProjectRoles,
		Metadata:     spec.Metadata,
		Creator:      "admin",
		Status:       adminclient.KeyActive,
		Version:      1,
		CreatedAt:    t,
	}
	if spec.ExpiresIn > 0 {
		k.ExpiresAt = t.Add(time.Duration(spec.ExpiresIn))
	}
	h := sha256.Sum256([]byte(secret))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[k.ID] = &record{key: k, hash: h}
	s.byHash[h] = k.ID
	return k
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	subject := r.URL.Query().Get("subject")
	s.mu.Lock()
	keys := make([]adminclient.Key, 0, len(s.keys))
	for _, rec := range s.keys {
		if subject == "" || rec.key.Subject == subject {
			keys = append(keys, current(rec.key))
		}
	}
	s.mu.Unlock()
	slices.SortFunc(keys, func(a, b adminclient.Key) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	writeJSON(w, http.StatusOK, adminclient.KeyList{Keys: keys})
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	rec, ok := s.keys[r.PathValue("id")]
	var k adminclient.Key
	if ok {
		k = current(rec.key)
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, adminclient.CodeNotFound, "no key with that id")
		return
	}
	writeJSON(w, http.StatusOK, k)
}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	rec, ok := s.keys[r.PathValue("id")]
	var k adminclient.Key
	if ok {
		if rec.key.Status != adminclient.KeyRevoked {
			rec.key.Status = adminclient.KeyRevoked
			rec.key.RevokedAt = now()
			rec.key.Version++
		}
		k = current(rec.key)
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, adminclient.CodeNotFound, "no key with that id")
		return
	}
	writeJSON(w, http.StatusOK, k)
}

func (s *Server) rotate(w http.ResponseWriter, r *http.Request) {
	var req adminclient.RotateRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Grace < 0 {
		writeError(w, http.StatusBadRequest, adminclient.CodeBadRequest, "grace must not be negative")
		return
	}
	s.mu.Lock()
	rec, ok := s.keys[r.PathValue("id")]
	if !ok {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, adminclient.CodeNotFound, "no key with that id")
		return
	}
	if current(rec.key).Status != adminclient.KeyActive {
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, adminclient.CodeBadRequest, "only an active key can be rotated")
		return
	}
	secret := newSecret(rec.key.Kind)
	delete(s.byHash, rec.hash)
	rec.key.PreviousValidUntil = time.Time{}
	if req.Grace > 0 {
		until := now().Add(time.Duration(req.Grace))
		s.expired[rec.hash] = until
		s.byHash[rec.hash] = rec.key.ID
		rec.key.PreviousValidUntil = until
	}
	rec.hash = sha256.Sum256([]byte(secret))
	s.byHash[rec.hash] = rec.key.ID
	rec.key.Version++
	k := current(rec.key)
	s.mu.Unlock()
	k.Secret = secret
	writeJSON(w, http.StatusOK, k)
}

func (s *Server) verify(w http.ResponseWriter, r *http.Request) {
	var req adminclient.VerifyRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Token == "" {
		deny(w, http.StatusUnauthorized, adminclient.StatusMalformed, "no token")
		return
	}
	if req.Scope != "" && rbac.ValidateScope(req.Scope) != nil {
		deny(w, http.StatusBadRequest, adminclient.StatusInvalidScope, "invalid scope")
		return
	}
	h := sha256.Sum256([]byte(req.Token))
	s.mu.Lock()
	id, found := s.byHash[h]
	var k adminclient.Key
	graceOver := false
	if found {
		k = current(s.keys[id].key)
		if until, old := s.expired[h]; old && !now().Before(until) {
			graceOver = true
		}
	}
	s.mu.Unlock()
	switch {
	case !found || graceOver:
		deny(w, http.StatusUnauthorized, adminclient.StatusUnknown, "unknown credential")
		return
	case k.Status == adminclient.KeyRevoked:
		deny(w, http.StatusUnauthorized, adminclient.StatusRevoked, "credential revoked")
		return
	case k.Status == adminclient.KeyExpired:
		deny(w, http.StatusUnauthorized, adminclient.StatusExpired, "credential expired")
		return
	}
	res := adminclient.VerifyResult{
		Allow:      true,
		Status:     adminclient.StatusOK,
		Subject:    k.Subject,
		Kind:       k.Kind,
		KeyID:      k.ID,
		Roles:      k.Roles,
		ExpiresAt:  k.ExpiresAt,
		CacheTTLMS: 5000,
	}
	if req.Scope != "" {
		m, err := rbac.Compile(k.Scopes)
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, adminclient.CodeServiceUnavailable, "stored scopes do not compile")
			return
		}
		grant, ok := m.Match(req.Scope)
		if !ok {
			deny(w, http.StatusForbidden, adminclient.StatusForbidden, "scope not granted")
			return
		}
		res.Grant = grant
	}
	writeJSON(w, http.StatusOK, res)
}

// current returns k with its status brought up to date with the clock.
func current(k adminclient.Key) adminclient.Key {
	if k.Status == adminclient.KeyActive && !k.ExpiresAt.IsZero() && !now().Before(k.ExpiresAt) {
		k.Status = adminclient.KeyExpired
	}
	return k
}

// checkSpec returns why spec is unacceptable, or "".
func checkSpec(spec adminclient.KeySpec) string {
	if spec.Subject == "" {
		return "subject is required"
	}
	if spec.ExpiresIn < 0 {
		return "expires_in must not be negative"
	}
	for _, p := range spec.Scopes {
		if err := rbac.ValidatePattern(p); err != nil {
			var pe *rbac.PatternError
			if errors.As(err, &pe) {
				return fmt.Sprintf("invalid scope %q: %s", pe.Pattern, pe.Reason)
			}
			return err.Error()
		}
	}
	for project, roles := range spec.ProjectRoles {
		if project == "" || len(roles) == 0 {
			return "project_roles needs a project name and at least one role"
		}
	}
	return ""
}

// newSecret returns a fresh secret in the format of kind.
func newSecret(kind string) string {
	switch kind {
	case adminclient.KindAgent:
		return random(32)
	case adminclient.KindPAT:
		return "pat_" + random(16) + "_" + random(32)
	default:
		return "vk_" + random(32)
	}
}

// newID returns a fresh 22-character record id.
func newID() string { return random(16) }

// random returns n random bytes in unpadded URL-safe base64.
func random(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decode reads a JSON body into v, answering 400 itself when it cannot.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	d := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, adminclient.CodeBadRequest, "invalid JSON body: "+err.Error())
		return false
	}
	return true
}

// deny writes a refused decision.
func deny(w http.ResponseWriter, status int, decision, msg string) {
	code := map[int]string{
		http.StatusBadRequest:   adminclient.CodeBadRequest,
		http.StatusUnauthorized: adminclient.CodeUnauthorized,
		http.StatusForbidden:    adminclient.CodeForbidden,
	}[status]
	writeJSON(w, status, adminclient.VerifyResult{
		Status:  decision,
		Code:    code,
		Error:   strings.ToLower(code),
		Message: msg,
	})
}

// writeError writes the contract's error body.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, &adminclient.APIError{Code: code, Err: strings.ToLower(code), Message: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
