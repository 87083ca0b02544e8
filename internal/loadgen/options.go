package loadgen

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/verifyd/verifyd/internal/adminclient"
)

// Limits of Options.
const (
	// MaxDuration bounds Options.Duration: every run ends.
	MaxDuration = time.Hour
	// MaxWarmup bounds Options.Warmup.
	MaxWarmup = 10 * time.Minute
	// MaxRequests bounds Options.Requests.
	MaxRequests = 1_000_000_000
	// MaxConns bounds Options.Conns.
	MaxConns = 1024
	// MaxDepth bounds Options.Depth; a socket run is further bounded by the
	// server's max_in_flight.
	MaxDepth = 4096
	// MaxKeys bounds Options.Keys.
	MaxKeys = 10_000_000
	// MaxTokens bounds Options.JWTTokens and Options.ColdTokens.
	MaxTokens = 5_000_000
	// MaxSetupConns bounds Options.SetupConns; the binary raises the HTTP
	// client's idle connections per host to it.
	MaxSetupConns = 256
)

// Defaults of Options.
const (
	DefaultConns      = 16               // Options.Conns
	DefaultDepth      = 1                // Options.Depth
	DefaultWarmup     = 2 * time.Second  // Options.Warmup
	DefaultKeys       = 1000             // Options.Keys
	DefaultJWTTokens  = 1000             // Options.JWTTokens
	DefaultSetupConns = 32               // Options.SetupConns
	DefaultTimeout    = 10 * time.Second // Options.Timeout
	// DefaultScope is the scope every key and token grants and the
	// requests ask for; DefaultForbiddenScope is one they do not grant.
	DefaultScope          = "bench:data:read"
	DefaultForbiddenScope = "bench:admin:write"
)

// Sizes of what a run makes.
const (
	// grantedPattern is the pattern the keys and tokens carry.
	grantedPattern = "bench:data:*"
	// coldTokensPerSecond bounds the default supply of cold tokens per
	// second of a timed run: ES256 verification costs the daemon about
	// 65 µs of CPU, so two cores cannot verify many more.
	coldTokensPerSecond = 20_000
	// assumedRate is the request rate the default supply of cold tokens
	// is sized for, before that bound.
	assumedRate = 1_000_000
	// maxDefaultColdTokens bounds the default supply of cold tokens.
	maxDefaultColdTokens = 1_000_000
)

// Options configures a run. Zero fields take their defaults
// (EnsureDefaults); Validate reports every problem.
type Options struct {
	// Socket is the path of the daemon's Unix socket. Exactly one of
	// Socket and Addr is set.
	Socket string
	// Addr is the daemon's HTTP address, "http://127.0.0.1:8080": requests
	// go to POST /v1/verify.
	Addr string
	// AdminAddr is the address of the admin API, where keys are created and
	// revoked. The default value is Addr, or adminclient.DefaultAddr for
	// a socket run.
	AdminAddr string
	// AdminKey is the daemon's admin key. It is needed to create keys (not
	// with KeysFrom) and to revoke them.
	AdminKey string

	// Conns is the number of connections. The default value is 16.
	Conns int
	// Depth is the number of requests in flight on each connection
	// (pipelining). The default value is 1.
	Depth int
	// Duration is how long the measured part of the run lasts; Requests
	// is how many requests it sends. Exactly one is set, except for a run
	// that only creates keys (SaveKeys set, neither set).
	Duration time.Duration
	Requests int64
	// Warmup is how long requests are sent before the measured part; they
	// are not counted. The default value is 2s; negative means none.
	Warmup time.Duration
	// Timeout is how long a connection may wait for an answer before the
	// run gives it up as failed. The default value is 10s.
	Timeout time.Duration

	// Mix is the weight of each kind of request. The zero value means
	// DefaultMix.
	Mix Mix
	// Keys is the number of API keys created for OpaqueHit, Forged and
	// Forbidden requests. The default value is 1000.
	Keys int
	// KeysFrom is a file written by an earlier run's SaveKeys: its keys are
	// used instead of creating new ones, and they are never revoked.
	KeysFrom string
	// SaveKeys is a file (created with mode 0600; it must not exist) to
	// which the created keys, secrets included, are written. They are then
	// kept (as with Keep).
	SaveKeys string
	// Keep leaves the created keys valid at the end. By default they are
	// revoked.
	Keep bool
	// SetupConns is the number of admin calls made at once while creating
	// and revoking keys. The default value is 32.
	SetupConns int

	// JWKSListen is the loopback address (host:port) on which the run
	// serves the ES256 key set its tokens are signed with. The daemon must
	// trust it: TrustSnippet returns the configuration. Required when the
	// mix sends JWTs.
	JWKSListen string
	// JWTTokens is the number of tokens of the JWTHit set. The default
	// value is 1000.
	JWTTokens int
	// ColdTokens is the number of tokens minted for JWTCold requests. The
	// default value is, for a run of Requests, exactly what it sends; for
	// a timed run, the mix's share of 1M requests/s, at most 20k/s, over
	// Duration, at most 1M. A timed run that uses them all ends early and
	// says so.
	ColdTokens int

	// Scope is the scope the requests ask for; keys and tokens grant
	// bench:data:*. The default value is "bench:data:read".
	Scope string
	// ForbiddenScope is the scope Forbidden requests ask for. The default
	// value is "bench:admin:write".
	ForbiddenScope string

	// ServerPID, when not 0, is the daemon's process id: the report then
	// says how much CPU time it used during the measurement (read from
	// /proc, Linux only).
	ServerPID int

	// Progress, when not nil, receives a line of progress every second,
	// each overwriting the last (carriage return), meant for a terminal.
	Progress io.Writer
	// Logger receives the steps of the setup. nil means slog.Default().
	Logger *slog.Logger
}

// EnsureDefaults fills in the defaults of unset fields.
func (o *Options) EnsureDefaults() {
	if o.AdminAddr == "" {
		o.AdminAddr = o.Addr
		if o.AdminAddr == "" {
			o.AdminAddr = adminclient.DefaultAddr
		}
	}
	setDefault(&o.Conns, DefaultConns)
	setDefault(&o.Depth, DefaultDepth)
	setDefault(&o.Keys, DefaultKeys)
	setDefault(&o.JWTTokens, DefaultJWTTokens)
	setDefault(&o.SetupConns, DefaultSetupConns)
	if o.Warmup == 0 {
		o.Warmup = DefaultWarmup
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Mix.total() == 0 {
		o.Mix, _ = ParseMix(DefaultMix)
	}
	if o.Scope == "" {
		o.Scope = DefaultScope
	}
	if o.ForbiddenScope == "" {
		o.ForbiddenScope = DefaultForbiddenScope
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

func setDefault(p *int, v int) {
	if *p == 0 {
		*p = v
	}
}

// setupOnly reports whether the run only creates and saves keys.
func (o *Options) setupOnly() bool {
	return o.SaveKeys != "" && o.Duration == 0 && o.Requests == 0
}

// Validate reports every problem with o, after EnsureDefaults.
func (o *Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("loadgen: "+format, args...)) }
	switch {
	case (o.Socket == "") == (o.Addr == ""):
		bad("give exactly one target: a socket path (--socket) or an HTTP address (--addr)")
	case o.Addr != "":
		if u, err := url.Parse(o.Addr); err != nil || u.Scheme != "http" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			bad("HTTP address %q: want http://host:port (https is not supported)", o.Addr)
		}
	}
	switch {
	case o.setupOnly():
	case o.Duration != 0 && o.Requests != 0:
		bad("give a duration or a number of requests, not both")
	case o.Duration == 0 && o.Requests == 0:
		bad("every run is bounded: give a duration (--duration 10s) or a number of requests (--requests 100000)")
	case o.Duration < 0 || o.Duration > MaxDuration:
		bad("duration %v is not between 0 and %v", o.Duration, MaxDuration)
	case o.Requests < 0 || o.Requests > MaxRequests:
		bad("requests %d is not between 1 and %d", o.Requests, MaxRequests)
	}
	if o.Warmup > MaxWarmup {
		bad("warm-up %v is longer than %v", o.Warmup, MaxWarmup)
	}
	if o.ServerPID < 0 {
		bad("server pid %d is negative", o.ServerPID)
	}
	if o.Timeout < 0 {
		bad("timeout %v is negative", o.Timeout)
	}
	if o.Conns < 1 || o.Conns > MaxConns {
		bad("conns %d is not between 1 and %d", o.Conns, MaxConns)
	}
	if o.Depth < 1 || o.Depth > MaxDepth {
		bad("depth %d is not between 1 and %d", o.Depth, MaxDepth)
	}
	if o.Keys < 1 || o.Keys > MaxKeys {
		bad("keys %d is not between 1 and %d", o.Keys, MaxKeys)
	}
	if o.KeysFrom != "" && o.SaveKeys != "" {
		bad("give --keys-from or --save-keys, not both")
	}
	if o.SetupConns < 1 || o.SetupConns > MaxSetupConns {
		bad("setup conns %d is not between 1 and %d", o.SetupConns, MaxSetupConns)
	}
	if o.JWTTokens < 1 || o.JWTTokens > MaxTokens {
		bad("JWT tokens %d is not between 1 and %d", o.JWTTokens, MaxTokens)
	}
	if o.ColdTokens < 0 || o.ColdTokens > MaxTokens {
		bad("cold tokens %d is not between 0 and %d", o.ColdTokens, MaxTokens)
	}
	if o.Mix.needsJWT() && !o.setupOnly() {
		if o.JWKSListen == "" {
			bad("the mix sends JWTs (%s): give --jwks-listen 127.0.0.1:PORT and trust it in the daemon (--print-trust shows how)", o.Mix)
		}
	}
	if o.JWKSListen != "" {
		if err := checkLoopback(o.JWKSListen); err != nil {
			bad("jwks-listen: %v", err)
		}
	}
	for _, s := range []string{o.Scope, o.ForbiddenScope} {
		if s == "" || strings.ContainsAny(s, " *") {
			bad("scope %q must be a literal scope", s)
		}
	}
	return errors.Join(errs...)
}

// checkLoopback accepts host:port with a loopback IP and a port.
func checkLoopback(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: want 127.0.0.1:PORT", addr)
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q: the key set is served on a loopback address only", addr)
	}
	if port == "" || port == "0" {
		return fmt.Errorf("%q: the daemon is configured with the port: give a fixed one", addr)
	}
	return nil
}
