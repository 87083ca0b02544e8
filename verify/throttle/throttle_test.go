package throttle

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/verifyd/verifyd/rbac"
	"github.com/verifyd/verifyd/verify"
)

// clock is a fake clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeVerifier answers from a table of tokens and counts its calls. An
// unlisted token is unknown.
type fakeVerifier struct {
	mu      sync.Mutex
	answers map[string]verify.Result
	calls   int
}

func (f *fakeVerifier) Verify(token, scope string) verify.Result {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if r, ok := f.answers[token]; ok {
		return r
	}
	return verify.Result{Reason: verify.Unknown}
}

func (f *fakeVerifier) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// valid is the answer for a valid credential of key id id.
func valid(id string, roles ...string) verify.Result {
	return verify.Result{Reason: verify.OK, Principal: &rbac.Principal{Subject: "s-" + id, KeyID: id, Profile: &rbac.Profile{Kind: "api_key", Roles: roles}}}
}

// Two PATs: the same id prefix pattern a PAT token has, with canonical
// base64url ids and secrets.
const (
	patA      = "pat_AAAAAAAAAAAAAAAAAAAAAA_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	patAOther = "pat_AAAAAAAAAAAAAAAAAAAAAA_BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	patB      = "pat_BAAAAAAAAAAAAAAAAAAAAA_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
)

type fixture struct {
	clock *clock
	v     *fakeVerifier
	l     *Limiter
	g     *Gate
	reg   *prometheus.Registry
}

func newFixture(t *testing.T, edit func(*Config)) *fixture {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Failures, cfg.KeyFailures = 5, 5
	cfg.Entries, cfg.Credentials = 1024, 1024
	if edit != nil {
		edit(&cfg)
	}
	f := &fixture{clock: newClock(), v: &fakeVerifier{answers: map[string]verify.Result{}}, reg: prometheus.NewRegistry()}
	l, err := New(cfg, &Options{Now: f.clock.Now, Registerer: f.reg, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	f.l, f.g = l, l.Gate(f.v, "http")
	return f
}

func addr(s string) Source { return AddrSource(netip.MustParseAddr(s)) }

func (f *fixture) verify(t *testing.T, src Source, token string, want verify.Reason) time.Duration {
	t.Helper()
	r, retry := f.g.Verify(src, token, "")
	if r.Reason != want {
		t.Fatalf("%s from %v: got %v, want %v", token, src, r.Reason, want)
	}
	if (want == verify.RateLimited) != (retry > 0) {
		t.Fatalf("%s from %v: %v with retry %v", token, src, r.Reason, retry)
	}
	return retry
}

func (f *fixture) rejected(reason string) float64 {
	return counter(f.l.rejected.WithLabelValues("http", reason))
}

func counter(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

func TestSourceCooldownTripsAndRecovers(t *testing.T) {
	f := newFixture(t, nil)
	f.v.answers["good"] = valid("k1")
	attacker, other := addr("192.0.2.7"), addr("198.51.100.1")
	for i := 0; i < 5; i++ {
		f.verify(t, attacker, fmt.Sprintf("guess-%d", i), verify.Unknown)
	}
	calls := f.v.callCount()
	// In the cool-down: refused without asking the verifier, even with a
	// valid credential.
	if retry := f.verify(t, attacker, "good", verify.RateLimited); retry != time.Minute {
		t.Errorf("retry %v, want the whole cool-down", retry)
	}
	f.verify(t, attacker, "guess-x", verify.RateLimited)
	if f.v.callCount() != calls {
		t.Error("the verifier was asked for a source in a cool-down")
	}
	// Everyone else is served.
	f.verify(t, other, "good", verify.OK)
	f.verify(t, Source{}, "good", verify.OK)
	f.clock.Add(59 * time.Second)
	if retry := f.verify(t, attacker, "good", verify.RateLimited); retry != time.Second {
		t.Errorf("retry %v, want 1s", retry)
	}
	f.clock.Add(time.Second)
	f.verify(t, attacker, "good", verify.OK)
	// The count started afresh: 4 more failures do not trip it.
	for i := 0; i < 4; i++ {
		f.verify(t, attacker, "guess", verify.Unknown)
	}
	f.verify(t, attacker, "good", verify.OK)
	if got := f.rejected("source"); got != 3 {
		t.Errorf("rejected{reason=source} = %v, want 3", got)
	}
	if got := counter(f.l.cooldowns.WithLabelValues("http", "source")); got != 1 {
		t.Errorf("cooldowns{kind=source} = %v, want 1", got)
	}
}

func TestFailuresOutsideTheWindowDoNotTrip(t *testing.T) {
	f := newFixture(t, nil)
	f.v.answers["good"] = valid("k1")
	src := addr("192.0.2.7")
	for i := 0; i < 12; i++ {
		f.verify(t, src, "guess", verify.Unknown)
		if i%4 == 3 {
			f.clock.Add(10 * time.Second) // a new window
		}
	}
	f.verify(t, src, "good", verify.OK)
}

func TestOnlyGuessingCounts(t *testing.T) {
	counted := map[verify.Reason]bool{verify.Malformed: true, verify.Unknown: true, verify.BadSignature: true}
	for _, reason := range verify.Reasons() {
		if reason == verify.RateLimited {
			continue
		}
		t.Run(reason.String(), func(t *testing.T) {
			f := newFixture(t, nil)
			f.v.answers["tok"] = verify.Result{Reason: reason}
			if reason == verify.OK || reason == verify.Forbidden {
				f.v.answers["tok"] = verify.Result{Reason: reason, Principal: &rbac.Principal{KeyID: "k", Profile: &rbac.Profile{}}}
			}
			src := addr("192.0.2.7")
			for i := 0; i < 5; i++ {
				f.verify(t, src, "tok", reason)
			}
			want := reason
			if counted[reason] {
				want = verify.RateLimited
			}
			f.verify(t, src, "tok", want)
		})
	}
}

func TestSocketPeerSources(t *testing.T) {
	f := newFixture(t, nil)
	f.v.answers["good"] = valid("k1")
	for i := 0; i < 5; i++ {
		f.verify(t, UIDSource(1000), "guess", verify.Unknown)
	}
	f.verify(t, UIDSource(1000), "good", verify.RateLimited)
	f.verify(t, UIDSource(1001), "good", verify.OK)
	if s := UIDSource(1000).String(); s != "uid 1000" {
		t.Errorf("String = %q", s)
	}
}

func TestIPv6CountsPer64(t *testing.T) {
	f := newFixture(t, nil)
	f.v.answers["good"] = valid("k1")
	for i := 0; i < 5; i++ {
		f.verify(t, addr(fmt.Sprintf("2001:db8:1:2::%x", i+1)), "guess", verify.Unknown)
	}
	f.verify(t, addr("2001:db8:1:2:ffff::1"), "good", verify.RateLimited)
	f.verify(t, addr("2001:db8:1:3::1"), "good", verify.OK)
	if s := addr("2001:db8:1:2::9").String(); s != "2001:db8:1:2::/64" {
		t.Errorf("String = %q", s)
	}
	// An IPv4-mapped address is the IPv4 client.
	if addr("::ffff:192.0.2.7") != addr("192.0.2.7") {
		t.Error("an IPv4-mapped address is another source")
	}
}

func TestPATIDCooldown(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Failures = 0 })
	f.v.answers[patA] = valid("AAAAAAAAAAAAAAAAAAAAAA")
	f.v.answers[patB] = valid("BAAAAAAAAAAAAAAAAAAAAA")
	// Guesses at PAT A's secret, each from another address.
	for i := 0; i < 5; i++ {
		f.verify(t, addr(fmt.Sprintf("192.0.2.%d", i+1)), patAOther, verify.Unknown)
	}
	calls := f.v.callCount()
	f.verify(t, addr("203.0.113.9"), patA, verify.RateLimited)
	if f.v.callCount() != calls {
		t.Error("the verifier was asked for a PAT id in a cool-down")
	}
	f.verify(t, addr("203.0.113.9"), patB, verify.OK)
	f.verify(t, addr("192.0.2.1"), "good-enough-imported-key", verify.Unknown) // sources are not counted here
	f.clock.Add(time.Minute)
	f.verify(t, addr("203.0.113.9"), patA, verify.OK)
	if got := f.rejected("key"); got != 1 {
		t.Errorf("rejected{reason=key} = %v, want 1", got)
	}
}

func TestDisabled(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Enabled = false
	if l, err := New(cfg, nil); l != nil || err != nil {
		t.Fatalf("New(disabled) = %v, %v", l, err)
	}
	f := newFixture(t, func(c *Config) { c.Failures, c.KeyFailures = 0, 0 })
	for i := 0; i < 50; i++ {
		f.verify(t, addr("192.0.2.7"), patAOther, verify.Unknown)
	}
}

func TestCredentialRateLimit(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.RoleRateLimits = map[string]string{"free": "2/s", "paid": "5/s", "slow": "1/h"} })
	own := valid("own", "paid")
	own.Principal.RateLimit = "3/s"
	f.v.answers["own"] = own
	f.v.answers["roles"] = valid("roles", "free", "paid", "other")
	f.v.answers["free"] = valid("free", "free")
	f.v.answers["none"] = valid("none", "other")
	forbidden := valid("free2", "free")
	forbidden.Reason = verify.Forbidden
	f.v.answers["forbidden"] = forbidden
	bad := valid("bad", "free")
	bad.Principal.RateLimit = "lots"
	f.v.answers["bad"] = bad
	src := addr("192.0.2.7")

	burst := func(token string, n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			r, _ := f.g.Verify(src, token, "")
			if r.Reason == verify.RateLimited {
				t.Fatalf("%s: rate limited after %d requests, want %d", token, i, n)
			}
		}
		if retry := f.verify(t, src, token, verify.RateLimited); retry <= 0 || retry > time.Second {
			t.Fatalf("%s: retry %v", token, retry)
		}
	}
	burst("own", 3)            // its own limit, not its role's
	burst("roles", 5)          // the highest of its roles
	burst("free", 2)           // its one role
	burst("forbidden", 2)      // a forbidden scope still uses the credential
	burst("bad", 2)            // an invalid own limit counts as none: its role's applies
	for i := 0; i < 100; i++ { // no limit at all
		f.verify(t, src, "none", verify.OK)
	}
	// Each request frees up after Per/Count.
	f.clock.Add(time.Second / 3)
	f.verify(t, src, "own", verify.OK)
	f.verify(t, src, "own", verify.RateLimited)
	// Another source shares the credential's bucket; a spent bucket is not
	// a failure of the source.
	f.verify(t, addr("198.51.100.1"), "own", verify.RateLimited)
	f.clock.Add(time.Second)
	for i := 0; i < 3; i++ {
		f.verify(t, src, "own", verify.OK)
	}
	if got := f.rejected("credential"); got != 7 {
		t.Errorf("rejected{reason=credential} = %v, want 7", got)
	}
}

func TestJWTBuckets(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.RoleRateLimits = map[string]string{"r": "1/m"} })
	jwt := func(source, jti, sub string) verify.Result {
		return verify.Result{Reason: verify.OK, Principal: &rbac.Principal{KeyID: jti, Subject: sub, Profile: &rbac.Profile{Kind: "jwt", Source: source, Roles: []string{"r"}}}}
	}
	f.v.answers["t1"] = jwt("idp", "j1", "alice")
	f.v.answers["t1-again"] = jwt("idp", "j1", "alice") // the same jti: the same bucket
	f.v.answers["t2"] = jwt("idp", "j2", "alice")
	f.v.answers["t3"] = jwt("other", "j1", "alice") // another source's j1
	f.v.answers["n1"] = jwt("idp", "", "bob")       // no jti: per subject
	f.v.answers["n2"] = jwt("idp", "", "bob")
	f.v.answers["key"] = valid("j1", "r") // a stored key whose id is j1
	src := addr("192.0.2.7")
	f.verify(t, src, "t1", verify.OK)
	f.verify(t, src, "t1-again", verify.RateLimited)
	f.verify(t, src, "t2", verify.OK)
	f.verify(t, src, "t3", verify.OK)
	f.verify(t, src, "key", verify.OK)
	f.verify(t, src, "n1", verify.OK)
	f.verify(t, src, "n2", verify.RateLimited)
}

// TestFloodKeepsCooldowns floods a small table with far more sources than
// it holds: memory stays what New allocated, and a source in a cool-down
// stays in it, since entries in a cool-down are displaced last.
func TestFloodKeepsCooldowns(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Entries = minEntries })
	f.v.answers["good"] = valid("k1")
	attacker := addr("192.0.2.7")
	for i := 0; i < 5; i++ {
		f.verify(t, attacker, "guess", verify.Unknown)
	}
	size := func() (n int) {
		for i := range f.l.sources.shards {
			n += cap(f.l.sources.shards[i].entries)
		}
		return n
	}
	before := size()
	for i := 0; i < 100000; i++ {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		f.g.Verify(AddrSource(a), "guess", "")
		if i%1000 == 0 {
			f.clock.Add(time.Millisecond)
		}
	}
	if size() != before {
		t.Errorf("the table grew from %d to %d entries", before, size())
	}
	f.verify(t, attacker, "good", verify.RateLimited)
}

func TestForwardedSource(t *testing.T) {
	xff, err := New(func() Config { c := DefaultConfig(); c.TrustedProxies = []string{"10.0.0.0/8", "::1"}; return c }(), nil)
	if err != nil {
		t.Fatal(err)
	}
	realIP, err := New(func() Config {
		c := DefaultConfig()
		c.TrustedProxies, c.ClientIPHeader = []string{"10.0.0.1"}, "X-Real-IP"
		return c
	}(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		l     *Limiter
		value string
		want  string
	}{
		{xff, "192.0.2.7", "192.0.2.7"},
		{xff, "198.51.100.1, 192.0.2.7", "192.0.2.7"},           // the rightmost: appended by the proxy
		{xff, "198.51.100.1, 192.0.2.7, 10.1.2.3", "192.0.2.7"}, // skipping trusted hops
		{xff, " 192.0.2.7 ,10.1.2.3,::1", "192.0.2.7"},
		{xff, "192.0.2.7:4711", "192.0.2.7"},
		{xff, "[2001:db8::1]:443", "2001:db8::/64"},
		{xff, "::ffff:192.0.2.7", "192.0.2.7"},
		{xff, "", "none"},
		{xff, "10.1.1.1, ::1", "none"},             // only trusted hops
		{xff, "192.0.2.7, not-an-address", "none"}, // what is left of garbage is not believed
		{xff, "192.0.2.7,", "none"},
		{realIP, "192.0.2.7", "192.0.2.7"},
		{realIP, "198.51.100.1, 192.0.2.7", "none"}, // one address only
		{realIP, "10.0.0.1", "none"},
	} {
		if got := tc.l.ForwardedSource(tc.value).String(); got != tc.want {
			t.Errorf("%s %q: got %s, want %s", tc.l.ClientIPHeader(), tc.value, got, tc.want)
		}
	}
	for a, want := range map[string]bool{"10.9.9.9": true, "::1": true, "::ffff:10.0.0.1": true, "127.0.0.1": false, "192.0.2.7": false} {
		if got := xff.TrustedProxy(netip.MustParseAddr(a)); got != want {
			t.Errorf("TrustedProxy(%s) = %v", a, got)
		}
	}
	if !AddrSource(netip.Addr{}).IsZero() {
		t.Error("the zero address is a source")
	}
}

func TestParseRate(t *testing.T) {
	for s, want := range map[string]Rate{
		"100/s": {100, time.Second}, "600/m": {600, time.Minute}, "1/h": {1, time.Hour}, "1000000000/s": {1e9, time.Second},
	} {
		got, err := ParseRate(s)
		if err != nil || got != want || got.String() != s {
			t.Errorf("ParseRate(%q) = %v %v, String %q", s, got, err, got.String())
		}
	}
	for _, s := range []string{"", "100", "100/", "/s", "0/s", "-1/s", "+1/s", "1.5/s", "1/d", "1/S", " 1/s", "1000000001/s", "1/s/s", "1e3/s"} {
		if r, err := ParseRate(s); err == nil {
			t.Errorf("ParseRate(%q) = %v, want an error", s, r)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	def := DefaultConfig()
	if err := def.Validate(); err != nil {
		t.Fatalf("default: %v", err)
	}
	bad := Config{
		Enabled: true, Failures: -1, KeyFailures: -1, Entries: 1, Credentials: 1 << 30,
		TrustedProxies: []string{"10.0.0.0/33", "nope"}, ClientIPHeader: "X Forwarded",
		RoleRateLimits: map[string]string{"": "1/s", "r": "fast"},
	}
	err := bad.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"throttle.failures", "throttle.key_failures", "throttle.window", "throttle.cooldown", "throttle.entries",
		"throttle.credentials", `"10.0.0.0/33"`, `"nope"`, "client_ip_header", "empty role name", "role_rate_limits.r"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	off := bad
	off.Enabled = false
	if err := off.Validate(); err != nil {
		t.Errorf("a disabled section is checked: %v", err)
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int{0: 1, time.Millisecond: 1, time.Second: 1, 1001 * time.Millisecond: 2, time.Minute: 60} {
		if got := RetryAfterSeconds(d); got != want {
			t.Errorf("RetryAfterSeconds(%v) = %d, want %d", d, got, want)
		}
	}
}

// TestConcurrentGates runs gates of two interfaces over one limiter from
// many goroutines, for the race detector: an attacker trips its cool-down
// while valid credentials from other sources are all answered.
func TestConcurrentGates(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.RoleRateLimits = map[string]string{"r": "1000000/s"} })
	f.v.answers["good"] = valid("k1", "r")
	socket := f.l.Gate(f.v, "socket")
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := f.g
			if w%2 == 1 {
				g = socket
			}
			for i := 0; i < 2000; i++ {
				g.Verify(addr("192.0.2.7"), "guess", "")
				if r, _ := g.Verify(addr(fmt.Sprintf("198.51.100.%d", w)), "good", ""); r.Reason != verify.OK {
					errs <- fmt.Sprintf("worker %d: a valid credential from another source got %v", w, r.Reason)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	f.verify(t, addr("192.0.2.7"), "good", verify.RateLimited)
}
