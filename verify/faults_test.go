package verify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/verify/jwt"
)

// The failure tests of SECURITY.md §3.3 that concern the verifier: clock
// jumps (7) and a slow disk (11). VERIFYD_FAULTS_LONG=1 also measures.

func faultsLong() bool { return os.Getenv("VERIFYD_FAULTS_LONG") == "1" }

// withJWT gives the fixture f a JWT front end with one ES256 and one HS256
// key, as newJWTFixture does for a fixture of its own.
func withJWT(t testing.TB, f *fixture) *jwtFixture {
	t.Helper()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	p := &jwt.Profile{Source: "gateway", Issuer: "https://issuer.example", Audience: []string{"verifyd"}, Leeway: time.Minute}
	es, err := jwt.NewES256Key("es-1", &ec.PublicKey, p)
	if err != nil {
		t.Fatal(err)
	}
	hs, err := jwt.NewHS256Key("hs-1", secret, p)
	if err != nil {
		t.Fatal(err)
	}
	jv, err := jwt.NewVerifier(&testKeys{keys: map[string]*jwt.Key{"es-1": es, "hs-1": hs}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.v, err = New(f.store, f.v.minter, &Options{Now: f.clock.Now, JWT: jv}); err != nil {
		t.Fatal(err)
	}
	return &jwtFixture{fixture: f, ec: ec, secret: secret, esKey: es, hsKey: hs, profile: p}
}

// TestFaultClockJumps moves the injected clock forward and back, by seconds
// and hours, past 2038 and back, and checks every credential at each step,
// twice (the second answer comes from the caches). Pass (SECURITY.md
// §3.3.7): a stored key is valid iff now < its expiry, a JWT iff now <
// exp+leeway and neither nbf nor iat is after now+leeway, whatever the
// caches hold; an allowed answer never lets a caller cache it past the
// credential's expiry (cache_ttl <= expiry-now), nor longer than the
// configured 5 s.
func TestFaultClockJumps(t *testing.T) {
	f := newJWTFixture(t)
	start := f.clock.Now()
	leeway := f.profile.Leeway

	type cred struct {
		name     string
		token    string
		expires  time.Time // zero: never
		nbf, iat time.Time // JWTs only; zero: absent
		jwt      bool
	}
	var creds []cred
	for _, ttl := range []time.Duration{0, 10 * time.Second, 10 * time.Minute, time.Hour, 26 * time.Hour} {
		rec, secret := f.create(t, KeySpec{Subject: "key-" + ttl.String(), ExpiresIn: ttl})
		creds = append(creds, cred{name: "key expiring in " + ttl.String(), token: secret, expires: rec.ExpiresAt})
	}
	rec, secret := f.create(t, KeySpec{Subject: "agent", Kind: keystore.KindAgent})
	creds = append(creds, cred{name: "agent key", token: secret, expires: rec.ExpiresAt})
	y2038 := time.Date(2038, 1, 19, 3, 14, 8, 0, time.UTC) // one second past int32 Unix time
	for i, c := range []struct{ exp, nbf time.Time }{
		{exp: start.Add(10 * time.Second)},
		{exp: start.Add(10 * time.Minute)},
		{exp: start.Add(2 * time.Hour), nbf: start.Add(30 * time.Minute)},
		{exp: y2038.Add(time.Hour)},
		{exp: time.Date(2040, 6, 1, 0, 0, 0, 0, time.UTC)},
	} {
		claims := f.claims(fmt.Sprint("jwt-", i))
		claims["exp"] = c.exp.Unix()
		if !c.nbf.IsZero() {
			claims["nbf"] = c.nbf.Unix()
		}
		alg := []string{"ES256", "HS256"}[i%2]
		creds = append(creds, cred{name: fmt.Sprintf("%s JWT expiring %s", alg, c.exp.Format(time.RFC3339)), token: f.sign(t, alg, claims),
			expires: c.exp, nbf: c.nbf, iat: time.Unix(start.Unix(), 0), jwt: true})
	}

	jumps := []time.Duration{time.Hour, -time.Hour, 59 * time.Minute, -2 * time.Hour, 9 * time.Second, time.Second,
		y2038.Sub(start), time.Hour, -time.Hour - time.Second, 3 * 365 * 24 * time.Hour, -y2038.Sub(start) - 3*365*24*time.Hour}
	rng := mrand.New(mrand.NewPCG(7, 7))
	steps := 300
	if faultsLong() {
		steps = 20000
	}
	for len(jumps) < steps {
		jumps = append(jumps, time.Duration(rng.Int64N(int64(6*time.Hour)))-3*time.Hour, time.Duration(rng.IntN(120)-60)*time.Second)
	}
	checks := 0
	for step, jump := range jumps {
		if step > 0 {
			f.clock.Advance(jump)
		}
		now := f.clock.Now()
		for _, c := range creds {
			valid := c.expires.IsZero() || now.Before(c.expires)
			if c.jwt {
				late := now.Add(leeway)
				valid = now.Before(c.expires.Add(leeway)) && !c.nbf.After(late) && !c.iat.After(late)
			}
			for pass := range 2 {
				r := f.v.Verify(c.token, "")
				checks++
				if r.Allowed() != valid {
					t.Fatalf("step %d (clock %s, jump %v), pass %d: %s answered %v, want valid=%v", step, now.Format(time.RFC3339), jump, pass, c.name, r.Reason, valid)
				}
				if !r.Allowed() {
					continue
				}
				if r.CacheTTL > 5*time.Second || r.CacheTTL < 0 {
					t.Fatalf("step %d: %s: cache_ttl %v outside [0, 5s]", step, c.name, r.CacheTTL)
				}
				if !c.expires.IsZero() && r.CacheTTL > max(c.expires.Sub(now), 0) {
					t.Fatalf("step %d (clock %s): %s may be cached for %v, past its expiry %s", step, now.Format(time.RFC3339), c.name, r.CacheTTL, c.expires.Format(time.RFC3339))
				}
			}
		}
	}
	t.Logf("%d clock jumps, %d checks of %d credentials", len(jumps), checks, len(creds))
}

// syncGate is a file system whose WAL syncs can be held: while closed, a
// sync of a .log file waits until the gate opens.
type syncGate struct {
	mu      sync.Mutex
	held    bool
	release chan struct{}
	stalled chan struct{} // closed by the first sync held
	once    sync.Once
	delay   atomic.Int64 // nanoseconds added to every WAL sync
}

func newSyncGate() *syncGate {
	return &syncGate{release: make(chan struct{}), stalled: make(chan struct{})}
}

func (g *syncGate) hold() { g.mu.Lock(); g.held = true; g.mu.Unlock() }

func (g *syncGate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.held {
		g.held = false
		close(g.release)
	}
}

func (g *syncGate) fs() vfs.FS {
	return errorfs.Wrap(vfs.NewMem(), errorfs.InjectorFunc(func(op errorfs.Op) error {
		switch op.Kind {
		case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
		default:
			return nil
		}
		if !strings.HasSuffix(op.Path, ".log") {
			return nil
		}
		time.Sleep(time.Duration(g.delay.Load()))
		g.mu.Lock()
		held, release := g.held, g.release
		g.mu.Unlock()
		if held {
			g.once.Do(func() { close(g.stalled) })
			<-release
		}
		return nil
	}))
}

// TestFaultSlowDisk holds the WAL sync of a key revocation and a JWT
// revocation, and meanwhile verifies other credentials: stored keys read
// from Pebble for the first time and from the cache, and JWTs verified
// afresh and from the cache. Pass (SECURITY.md §3.3.11): every one of them
// is answered, correctly, while the writes wait; they complete once the
// sync does. In long mode, a WAL sync slowed by 20 ms under a continuous
// writer leaves the p99 of cold verifications within 10 times that without
// writes (the figures are logged).
func TestFaultSlowDisk(t *testing.T) {
	gate := newSyncGate()
	f := newFixtureWith(t, &keystore.Options{FS: gate.fs(), CacheEntries: 1 << 12, NegativeEntries: 1 << 10})
	jf := withJWT(t, f)
	const keys, tokens = 100, 20
	secrets := make([]string, keys)
	for i := range secrets {
		_, secrets[i] = f.create(t, KeySpec{Subject: fmt.Sprint("user-", i), Scopes: []string{"tool:data:*"}})
	}
	jwts := make([]string, tokens)
	for i := range jwts {
		jwts[i] = jf.sign(t, []string{"ES256", "HS256"}[i%2], jf.claims(fmt.Sprint("jwt-user-", i)))
	}
	victim, victimSecret := f.create(t, KeySpec{Subject: "victim"})
	// Half of each warm in the caches; the other half is verified first
	// during the stall.
	for i := 0; i < keys; i += 2 {
		if r := f.v.Verify(secrets[i], "tool:data:read"); r.Reason != OK {
			t.Fatalf("key %d: %v", i, r.Reason)
		}
	}
	for i := 0; i < tokens; i += 2 {
		if r := f.v.Verify(jwts[i], ""); r.Reason != OK {
			t.Fatalf("JWT %d: %v", i, r.Reason)
		}
	}

	gate.hold()
	defer gate.open()
	writes := make(chan error, 2)
	go func() {
		_, err := f.m.RevokeKey(context.Background(), victim.ID)
		writes <- err
	}()
	select {
	case <-gate.stalled:
	case <-time.After(30 * time.Second):
		t.Fatal("the revocation never reached its WAL sync")
	}
	go func() {
		_, err := f.m.RevokeJWT(context.Background(), JWTRevocation{TokenID: "jti-unrelated"}, "admin")
		writes <- err
	}()

	answered := make(chan []string, 1)
	go func() {
		var wrong []string
		for i, s := range secrets {
			if r := f.v.Verify(s, "tool:data:read"); r.Reason != OK {
				wrong = append(wrong, fmt.Sprintf("key %d: %v", i, r.Reason))
			}
		}
		for i, tok := range jwts {
			if r := f.v.Verify(tok, ""); r.Reason != OK {
				wrong = append(wrong, fmt.Sprintf("JWT %d: %v", i, r.Reason))
			}
		}
		answered <- wrong
	}()
	select {
	case wrong := <-answered:
		if len(wrong) > 0 {
			t.Fatalf("answers during the stalled sync: %v", wrong)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("verifications wait for the WAL sync of an unrelated write")
	}
	select {
	case err := <-writes:
		t.Fatalf("a write returned (%v) while its WAL sync was held", err)
	default:
	}
	gate.open()
	for range 2 {
		if err := <-writes; err != nil {
			t.Fatalf("write after the sync: %v", err)
		}
	}
	if r := f.v.Verify(victimSecret, ""); r.Reason != Revoked {
		t.Errorf("the revoked key after the sync: %v", r.Reason)
	}

	if faultsLong() {
		measureSlowDisk(t, f, gate, secrets)
	}
}

// measureSlowDisk compares the p99 of verifications with and without a
// writer whose WAL syncs take 20 ms each: of stored keys (cache hits) and of
// unknown well-formed tokens (each one a read of Pebble).
func measureSlowDisk(t *testing.T, f *fixture, gate *syncGate, secrets []string) {
	rng := mrand.New(mrand.NewPCG(1, 1))
	unknown := func() string {
		b := make([]byte, 43)
		for i := range b {
			b[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[rng.IntN(64)]
		}
		return string(b)
	}
	p99 := func(lat []time.Duration) time.Duration {
		slices.Sort(lat)
		return lat[len(lat)*99/100]
	}
	measure := func(rounds int) (hit, cold time.Duration) {
		var hits, colds []time.Duration
		for range rounds {
			for _, s := range secrets {
				start := time.Now()
				if r := f.v.Verify(s, "tool:data:read"); r.Reason != OK {
					t.Fatalf("verify: %v", r.Reason)
				}
				hits = append(hits, time.Since(start))
				tok := unknown()
				start = time.Now()
				if r := f.v.Verify(tok, ""); r.Reason != Unknown && r.Reason != Malformed {
					t.Fatalf("verify of a random token: %v", r.Reason)
				}
				colds = append(colds, time.Since(start))
			}
		}
		return p99(hits), p99(colds)
	}
	quietHit, quietCold := measure(100)
	gate.delay.Store(int64(20 * time.Millisecond))
	stop := make(chan struct{})
	var writes atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, _, err := f.m.CreateKey(context.Background(), KeySpec{Subject: fmt.Sprint("writer-", i)}); err != nil {
				t.Errorf("writer: %v", err)
				return
			}
			writes.Add(1)
		}
	})
	busyHit, busyCold := measure(100)
	close(stop)
	wg.Wait()
	gate.delay.Store(0)
	t.Logf("verify p99 without writes: %v (cache hit), %v (Pebble read); with %d writes whose WAL sync took 20 ms: %v, %v",
		quietHit, quietCold, writes.Load(), busyHit, busyCold)
	for _, c := range []struct {
		what        string
		quiet, busy time.Duration
	}{{"cache hit", quietHit, busyHit}, {"Pebble read", quietCold, busyCold}} {
		if c.busy > 10*c.quiet+time.Millisecond {
			t.Errorf("verify p99 (%s) %v while writes wait on slow WAL syncs, %v without: verification depends on unrelated syncs", c.what, c.busy, c.quiet)
		}
	}
}
