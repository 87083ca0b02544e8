package trust

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"time"

	"github.com/verifyd/verifyd/verify/jwt"
)

// source is one configured trust source and its state.
type source struct {
	index   int
	name    string
	typ     SourceType
	refresh time.Duration
	profile *jwt.Profile
	url     string       // jwks_url, or the OIDC issuer
	paths   []string     // the files watched: the key set file, or the secret files
	secrets []secretSpec // hs256 sources
	log     *slog.Logger
	m       sourceMetrics

	// Guarded by Registry.mu.
	keys        []*jwt.Key
	skipped     int
	lastSuccess time.Time
	lastError   string
	stale       bool
	kidRefresh  time.Time     // the last refresh caused by an unknown kid
	flight      *flight       // the refresh in flight, if any
	stats       []os.FileInfo // of paths, at the last load; nil entries for failed stats
	jwksURI     string        // OIDC: from the last discovery, "" to discover again
	discovered  time.Time     // OIDC: when jwksURI was discovered
}

// secretSpec is one HS256 secret of a source.
type secretSpec struct {
	kid    string
	file   string   // when the secret is in a file
	env    string   // when it is in an environment variable
	envKey *jwt.Key // the key made from env, read once in New
}

func (r *Registry) newSource(i int, c *Source) *source {
	typ := c.Type()
	id := r.cfg.Identity.merge(c.Identity)
	issuer := c.Issuer
	if typ == TypeOIDC && issuer == "" {
		issuer = c.OIDCIssuer
	}
	s := &source{
		index:   i,
		name:    c.Name,
		typ:     typ,
		refresh: c.Refresh,
		profile: &jwt.Profile{
			Source:        c.Name,
			Issuer:        issuer,
			Audience:      c.Audience,
			Leeway:        r.cfg.Leeway,
			AllowNoExp:    c.AllowMissingExp,
			SubjectClaims: id.SubjectClaims,
			RolesClaim:    id.RolesClaim,
			RealmClaim:    id.RealmClaim,
			ScopeClaims:   id.ScopeClaims,
		},
		m: r.metrics.forSource(c.Name),
	}
	attrs := []any{slog.String("source", c.Name)}
	switch typ {
	case TypeJWKSFile:
		s.paths = []string{c.JWKSFile}
		attrs = append(attrs, slog.String("path", c.JWKSFile))
	case TypeJWKSURL:
		s.url = c.JWKSURL
		attrs = append(attrs, slog.String("url", redactURL(c.JWKSURL)))
	case TypeOIDC:
		s.url = c.OIDCIssuer
		attrs = append(attrs, slog.String("issuer", redactURL(c.OIDCIssuer)))
	case TypeHS256:
		for _, sec := range c.HS256 {
			s.secrets = append(s.secrets, secretSpec{kid: sec.Kid, file: sec.SecretFile, env: sec.SecretEnv})
			if sec.SecretFile != "" {
				s.paths = append(s.paths, sec.SecretFile)
			}
		}
	}
	s.log = r.log.With(attrs...)
	if typ.fetched() {
		s.stale = true // until the first good fetch
		s.m.stale.Set(1)
		if plainHTTP(s.url) {
			s.log.Warn("keys are fetched over plain http from a host that is not loopback: anyone on the path can replace them")
		}
	}
	return s
}

// loadStatic loads the key set file or the secrets of s, in New.
func (r *Registry) loadStatic(s *source, getenv func(string) string) error {
	var errs []error
	for j := range s.secrets {
		sec := &s.secrets[j]
		if sec.env == "" {
			continue
		}
		v := getenv(sec.env)
		if v == "" {
			errs = append(errs, fmt.Errorf("hs256[%d]: environment variable %s is empty or unset", j, sec.env))
			continue
		}
		k, err := parseSecret([]byte(v), sec.kid, s.profile)
		if err != nil {
			errs = append(errs, fmt.Errorf("hs256[%d]: %w", j, err))
			continue
		}
		sec.envKey = k
	}
	stats := statFiles(s.paths)
	keys, skipped, err := r.readFiles(s)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	r.mu.Lock()
	s.stats = stats
	r.mu.Unlock()
	if _, err = r.commit(s, keys, skipped, r.now()); err != nil {
		return err
	}
	logSkipped(s, skipped)
	return nil
}

// refreshSource fetches s, or reloads its files if they changed. It runs in
// a flight: at most one at a time per source.
func (r *Registry) refreshSource(s *source) error {
	if !s.typ.fetched() {
		return r.refreshFiles(s)
	}
	data, err := r.fetchSet(s)
	var (
		keys    []*jwt.Key
		skipped []skippedKey
	)
	if err == nil {
		keys, skipped, err = parseJWKS(data, s.profile)
	}
	if err != nil && s.typ == TypeOIDC {
		// The jwks_uri may have moved: discover it again next time.
		r.mu.Lock()
		s.jwksURI = ""
		r.mu.Unlock()
	}
	return r.finish(s, keys, skipped, err)
}

// refreshFiles reloads the files of s if any changed (path, modification
// time, size or identity) since the last load.
func (r *Registry) refreshFiles(s *source) error {
	stats := statFiles(s.paths)
	r.mu.Lock()
	prev := s.stats
	r.mu.Unlock()
	changed := len(prev) != len(stats)
	for i := 0; !changed && i < len(stats); i++ {
		changed = fileChanged(prev[i], stats[i])
	}
	if !changed {
		return nil
	}
	keys, skipped, err := r.readFiles(s)
	r.mu.Lock()
	s.stats = stats
	r.mu.Unlock()
	return r.finish(s, keys, skipped, err)
}

// readFiles reads and parses the key set file or the secrets of s.
func (r *Registry) readFiles(s *source) ([]*jwt.Key, []skippedKey, error) {
	if s.typ == TypeJWKSFile {
		data, err := readCapped(s.paths[0], r.cfg.MaxJWKSBytes)
		if err != nil {
			return nil, nil, err
		}
		return parseJWKS(data, s.profile)
	}
	keys := make([]*jwt.Key, 0, len(s.secrets))
	var errs []error
	for j, sec := range s.secrets {
		if sec.file == "" {
			keys = append(keys, sec.envKey)
			continue
		}
		data, err := readCapped(sec.file, maxSecretFileBytes)
		if err == nil {
			var k *jwt.Key
			k, err = parseSecret(data, sec.kid, s.profile)
			keys = append(keys, k)
		}
		clear(data)
		if err != nil {
			errs = append(errs, fmt.Errorf("hs256[%d]: %w", j, err))
		}
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	return keys, nil, nil
}

// finish records the outcome of a refresh of s: the new keys, or err.
func (r *Registry) finish(s *source, keys []*jwt.Key, skipped []skippedKey, err error) error {
	now := r.now()
	if err == nil {
		var c change
		if c, err = r.commit(s, keys, skipped, now); err == nil {
			c.log(s)
			logSkipped(s, skipped)
			return nil
		}
	}
	r.fail(s, err, now)
	return err
}

// change describes what a commit did, for the log.
type change struct {
	keys, added, removed int
	restored             bool
}

func (c change) log(s *source) {
	if c.restored {
		s.log.Info("source restored: a fetch succeeded again", slog.Int("keys", c.keys))
	} else if c.added > 0 || c.removed > 0 {
		s.log.Info("key set changed", slog.Int("added", c.added), slog.Int("removed", c.removed))
	}
}

// commit makes keys the keys of s, if no other source has one of their
// kids. A key of the new set with the same material as a current one is
// replaced by the current one, so that a key keeps its identity while it
// stays published; the current keys that are not kept are retired once the
// new snapshot is published.
func (r *Registry) commit(s *source, keys []*jwt.Key, skipped []skippedKey, now time.Time) (change, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.conflictLocked(s, keys); err != nil {
		return change{}, err
	}
	current := make(map[string]*jwt.Key, len(s.keys)) // kids are unique within a source
	for _, cur := range s.keys {
		current[cur.ID()] = cur
	}
	kept := make(map[*jwt.Key]bool, len(s.keys))
	for i, k := range keys {
		if cur := current[k.ID()]; cur != nil && !kept[cur] && cur.SameMaterial(k) {
			keys[i] = cur
			kept[cur] = true
		}
	}
	old := s.keys
	c := change{
		keys:     len(keys),
		added:    len(keys) - len(kept),
		removed:  len(old) - len(kept),
		restored: s.stale && !s.lastSuccess.IsZero(),
	}
	s.keys, s.skipped = keys, len(skipped)
	s.lastSuccess, s.lastError, s.stale = now, "", false
	r.publishLocked()
	for _, k := range old {
		if !kept[k] {
			k.Retire()
		}
	}
	s.m.ok.Inc()
	s.m.skipped.Set(float64(len(skipped)))
	s.m.lastSuccess.Set(float64(now.UnixNano()) / 1e9)
	s.m.stale.Set(0)
	return c, nil
}

// logSkipped logs, at Debug, the keys of a set that were skipped.
func logSkipped(s *source, skipped []skippedKey) {
	if len(skipped) == 0 || !s.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	for _, sk := range skipped {
		s.log.Debug("key skipped: not an ES256 verification key",
			slog.Int("index", sk.index), slog.String("kty", safeText(sk.kty)), slog.String("reason", sk.reason))
	}
}

// conflictLocked reports a kid of keys that another source already has.
// It requires r.mu.
func (r *Registry) conflictLocked(s *source, keys []*jwt.Key) error {
	kids := make(map[string]bool, len(keys))
	for _, k := range keys {
		if k.ID() != "" {
			kids[k.ID()] = true
		}
	}
	for _, o := range r.sources {
		if o == s {
			continue
		}
		for _, ok := range o.keys {
			if kids[ok.ID()] {
				return fmt.Errorf("kid %s is already a key of source %s", safeKid(ok.ID()), o.name)
			}
		}
	}
	return nil
}

// fail records a failed refresh of s: the last good keys stay, unless s is
// fetched and its last good fetch is older than MaxStaleness; then its keys
// are retired and removed until a fetch succeeds.
func (r *Registry) fail(s *source, err error, now time.Time) {
	r.mu.Lock()
	s.lastError = err.Error()
	wentStale := false
	if s.typ.fetched() && !s.stale && now.Sub(s.lastSuccess) > r.cfg.MaxStaleness {
		old := s.keys
		s.keys, s.skipped, s.stale = nil, 0, true
		r.publishLocked()
		for _, k := range old {
			k.Retire()
		}
		wentStale = true
	}
	keys, last := len(s.keys), s.lastSuccess
	r.mu.Unlock()

	s.m.errors.Inc()
	if errors.Is(err, errPrivateKey) {
		s.log.Error("key set rejected: it publishes a private key; keeping the last good set", slog.Int("keys", keys), slog.Any("err", err))
	} else {
		s.log.Warn("key set refresh failed; keeping the last good set", slog.Int("keys", keys), slog.Any("err", err))
	}
	if wentStale {
		s.m.stale.Set(1)
		s.m.skipped.Set(0)
		s.log.Error("source is stale: its keys are retired until a fetch succeeds",
			slog.Time("last_success", last), slog.Duration("max_staleness", r.cfg.MaxStaleness))
	}
}

// statFiles stats every path; a failed stat gives a nil entry.
func statFiles(paths []string) []os.FileInfo {
	stats := make([]os.FileInfo, len(paths))
	for i, p := range paths {
		if fi, err := os.Stat(p); err == nil {
			stats[i] = fi
		}
	}
	return stats
}

// fileChanged reports whether a file changed between two stats.
func fileChanged(a, b os.FileInfo) bool {
	if a == nil || b == nil {
		return a != b
	}
	return !os.SameFile(a, b) || !a.ModTime().Equal(b.ModTime()) || a.Size() != b.Size()
}

// readCapped reads the file at path, refusing one longer than limit bytes.
func readCapped(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		clear(data)
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return data, nil
}

// jitter returns d plus up to 10% of random extra.
func jitter(d time.Duration) time.Duration {
	if d < 10 {
		return d
	}
	return d + rand.N(d/10)
}
