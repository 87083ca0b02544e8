package natscallout

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/rbac"
	"github.com/verifyd/verifyd/verify"
)

// The NATS server's side of the contract (nats-server auth_callout.go).
const (
	// CalloutSubject is the subject the server publishes requests on.
	CalloutSubject = "$SYS.REQ.USER.AUTH"
	// requestAudience is the audience of every authorization request.
	requestAudience = "nats-authorization-request"
	// xkeyHeader carries the server's curve public key on an encrypted
	// request.
	xkeyHeader = "Nats-Server-Xkey"
)

// maxSeedFileBytes bounds a password or seed file.
const maxSeedFileBytes = 4096

// Verifier verifies the credential a NATS client presents and gives the
// policy in force, from which its permissions are read. *verify.Verifier
// is one.
type Verifier interface {
	Verify(token, scope string) verify.Result
	Policy() *rbac.Policy
}

var _ Verifier = (*verify.Verifier)(nil)

// Options are the parts of a Service that do not come from the
// configuration file.
type Options struct {
	// Verifier decides; required.
	Verifier Verifier
	// Registerer receives the service's metrics. nil means no metrics.
	Registerer prometheus.Registerer
	// Logger receives connection events, invalid requests (Warn) and
	// refusals (Debug). nil means slog.Default().
	Logger *slog.Logger
	// Getenv reads the secrets named by the *_env fields. nil means
	// os.Getenv.
	Getenv func(string) string
	// ReconnectWait is the pause between connection attempts to the NATS
	// servers. The default value is 2s.
	ReconnectWait time.Duration
}

// Service answers a NATS server's auth callout requests: it connects as
// the callout user, subscribes to CalloutSubject and answers each request
// with a user JWT whose permissions come from the client's credential, or
// with an error. It is safe for concurrent use.
type Service struct {
	cfg       Config
	verifier  Verifier
	log       *slog.Logger
	nopts     nats.Options
	issuer    nkeys.KeyPair
	issuerPub string
	xkey      nkeys.KeyPair // nil: requests are not encrypted
	counts    map[string]prometheus.Counter
	acls      atomic.Pointer[policyACLs] // of the last policy seen

	startOnce sync.Once
	started   atomic.Bool
	connected chan struct{} // closed when the connection attempt returned
	closed    chan struct{} // closed when the connection is closed

	mu      sync.Mutex
	nc      *nats.Conn // guarded by mu; nil until the attempt returned
	closing bool       // guarded by mu
}

// The outcomes of a request, the label values of
// verifyd_nats_callout_requests_total besides the refusal reasons of
// verify.Reason.
const (
	outcomeAllowed = "allowed"
	outcomeNoToken = "no_token"        // the client presented no credential
	outcomeInvalid = "invalid_request" // a request that is not a valid one from the server
	outcomeFailed  = "failed"          // signing or sending the response failed
)

// New checks cfg, reads its secrets and returns a Service that is not
// connected yet; Start connects it.
func New(cfg Config, opts *Options) (*Service, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Verifier == nil {
		return nil, errors.New("natscallout: a verifier is required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.ReconnectWait <= 0 {
		o.ReconnectWait = 2 * time.Second
	}
	cfg.EnsureDefaults()
	if err := cfg.check(); err != nil {
		return nil, err
	}
	s := &Service{
		cfg:       cfg,
		verifier:  o.Verifier,
		log:       o.Logger,
		connected: make(chan struct{}),
		closed:    make(chan struct{}),
	}
	var err error
	if s.issuer, s.issuerPub, err = readKey(cfg.IssuerSeedFile, cfg.IssuerSeedEnv, "issuer", o.Getenv, nkeys.IsValidPublicAccountKey); err != nil {
		return nil, err
	}
	if cfg.XKeySeedFile != "" || cfg.XKeySeedEnv != "" {
		if s.xkey, _, err = readKey(cfg.XKeySeedFile, cfg.XKeySeedEnv, "xkey", o.Getenv, nkeys.IsValidPublicCurveKey); err != nil {
			return nil, err
		}
	}
	if s.nopts, err = s.natsOptions(o); err != nil {
		return nil, err
	}
	if s.counts, err = s.newMetrics(o.Registerer); err != nil {
		return nil, err
	}
	return s, nil
}

// IssuerPublicKey returns the public key of the issuer seed: the value of
// the server's auth_callout issuer.
func (s *Service) IssuerPublicKey() string { return s.issuerPub }

// readKey reads an nkey seed from file or from the environment variable
// env and checks that its public key is of the kind valid accepts.
func readKey(file, env, what string, getenv func(string) string, valid func(string) bool) (nkeys.KeyPair, string, error) {
	seed, err := readSecret(file, env, what+"_seed", getenv)
	if err != nil {
		return nil, "", err
	}
	defer clear(seed)
	kp, err := nkeys.FromSeed(seed)
	if err != nil {
		return nil, "", fmt.Errorf("natscallout: the %s seed is not an nkey seed (generate one with nsc or nk)", what)
	}
	pub, err := kp.PublicKey()
	if err != nil || !valid(pub) {
		want := "an account seed (SA...)"
		if what == "xkey" {
			want = "a curve seed (SX...)"
		}
		return nil, "", fmt.Errorf("natscallout: the %s seed is not %s", what, want)
	}
	return kp, pub, nil
}

// readSecret reads a secret from file, or from the environment variable
// env, without surrounding white space. name is the configuration key.
func readSecret(file, env, name string, getenv func(string) string) ([]byte, error) {
	if file == "" {
		v := strings.TrimSpace(getenv(env))
		if v == "" {
			return nil, fmt.Errorf("natscallout: nats_callout.%s_env: the environment variable %s is empty", name, env)
		}
		return []byte(v), nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("natscallout: nats_callout.%s_file: %w", name, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSeedFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("natscallout: nats_callout.%s_file: %w", name, err)
	}
	if len(data) > maxSeedFileBytes {
		clear(data)
		return nil, fmt.Errorf("natscallout: nats_callout.%s_file: %s is larger than %d bytes", name, file, maxSeedFileBytes)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("natscallout: nats_callout.%s_file: %s is empty", name, file)
	}
	return trimmed, nil
}

// natsOptions returns the connection's options: the callout user, endless
// reconnection, and handlers that log and close.
func (s *Service) natsOptions(o Options) (nats.Options, error) {
	no := nats.GetDefaultOptions()
	no.Servers = splitURLs(s.cfg.URL)
	no.Name = "verifyd auth callout"
	no.RetryOnFailedConnect = true
	no.MaxReconnect = -1
	no.ReconnectWait = o.ReconnectWait
	no.IgnoreAuthErrorAbort = true
	switch {
	case s.cfg.User != "":
		pw, err := readSecret(s.cfg.PasswordFile, s.cfg.PasswordEnv, "password", o.Getenv)
		if err != nil {
			return no, err
		}
		no.User, no.Password = s.cfg.User, string(pw)
	default:
		opt, err := nats.NkeyOptionFromSeed(s.cfg.NkeySeedFile)
		if err != nil {
			return no, fmt.Errorf("natscallout: nats_callout.nkey_seed_file: %w", err)
		}
		if err := opt(&no); err != nil {
			return no, fmt.Errorf("natscallout: nats_callout.nkey_seed_file: %w", err)
		}
	}
	var lastErr atomic.Pointer[string]
	no.ConnectedCB = func(nc *nats.Conn) {
		s.log.Info("nats auth callout: connected", "server", nc.ConnectedUrlRedacted())
	}
	no.ReconnectedCB = func(nc *nats.Conn) {
		lastErr.Store(nil)
		s.log.Info("nats auth callout: reconnected", "server", nc.ConnectedUrlRedacted())
	}
	no.DisconnectedErrCB = func(_ *nats.Conn, err error) {
		s.mu.Lock()
		closing := s.closing
		s.mu.Unlock()
		if !closing {
			s.log.Warn("nats auth callout: disconnected; reconnecting in the background", "err", err)
		}
	}
	no.ReconnectErrCB = func(_ *nats.Conn, err error) {
		// Repeated failures are logged once, until something changes.
		msg := fmt.Sprint(err)
		if old := lastErr.Swap(&msg); old != nil && *old == msg {
			s.log.Debug("nats auth callout: connection attempt failed", "err", err)
			return
		}
		s.log.Warn("nats auth callout: cannot connect; retrying in the background", "servers", s.cfg.URL, "err", err)
	}
	no.AsyncErrorCB = func(_ *nats.Conn, _ *nats.Subscription, err error) {
		s.log.Warn("nats auth callout: asynchronous error", "err", err)
	}
	var once sync.Once
	no.ClosedCB = func(*nats.Conn) { once.Do(func() { close(s.closed) }) }
	return no, nil
}

// Start connects to the NATS servers and subscribes, in the background: it
// never waits for a server. While none can be reached it retries every
// ReconnectWait, logging the failure, and verifyd_nats_callout_connected
// is 0. Calls after the first do nothing.
func (s *Service) Start() {
	s.startOnce.Do(func() {
		s.started.Store(true)
		s.log.Info("nats auth callout: starting", "servers", s.cfg.URL, "issuer", s.issuerPub, "account", s.cfg.Account, "xkey", s.xkey != nil)
		go s.connect()
	})
}

func (s *Service) connect() {
	defer close(s.connected)
	nc, err := s.nopts.Connect()
	if err != nil {
		s.log.Error("nats auth callout: cannot set up the connection; the callout is not served", "servers", s.cfg.URL, "err", err)
		return
	}
	if _, err := nc.QueueSubscribe(CalloutSubject, s.cfg.QueueGroup, s.handle); err != nil {
		s.log.Error("nats auth callout: cannot subscribe; the callout is not served", "subject", CalloutSubject, "err", err)
		nc.Close()
		return
	}
	if nc.IsConnected() {
		// The subscription reaches the server before the service counts
		// as connected.
		_ = nc.FlushTimeout(2 * time.Second)
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		nc.Close()
		return
	}
	s.nc = nc
	s.mu.Unlock()
}

// Close drains the subscription (the requests already received are
// answered) and closes the connection, waiting at most until ctx ends. A
// service that was never started has nothing to close.
func (s *Service) Close(ctx context.Context) error {
	if !s.started.Load() {
		return nil
	}
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	select {
	case <-s.connected:
	case <-ctx.Done():
		return fmt.Errorf("natscallout: closing: %w", ctx.Err())
	}
	s.mu.Lock()
	nc := s.nc
	s.mu.Unlock()
	if nc == nil {
		return nil
	}
	if err := nc.Drain(); err != nil {
		nc.Close() // not connected: nothing to drain
	}
	select {
	case <-s.closed:
		return nil
	case <-ctx.Done():
		nc.Close()
		return fmt.Errorf("natscallout: draining: %w", ctx.Err())
	}
}

// isConnected reports whether the service holds a live connection.
func (s *Service) isConnected() bool {
	s.mu.Lock()
	nc := s.nc
	s.mu.Unlock()
	return nc != nil && nc.IsConnected()
}

func (s *Service) newMetrics(reg prometheus.Registerer) (map[string]prometheus.Counter, error) {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "verifyd",
		Subsystem: "nats_callout",
		Name:      "requests_total",
		Help:      "NATS auth callout requests by outcome: allowed, a refusal reason (unknown, revoked, expired, ...), no_token, invalid_request or failed.",
	}, []string{"outcome"})
	connected := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "verifyd",
		Subsystem: "nats_callout",
		Name:      "connected",
		Help:      "1 while the NATS auth callout service is connected to a NATS server, else 0.",
	}, func() float64 {
		if s.isConnected() {
			return 1
		}
		return 0
	})
	if reg != nil {
		for _, c := range []prometheus.Collector{requests, connected} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	counts := map[string]prometheus.Counter{}
	for _, o := range []string{outcomeAllowed, outcomeNoToken, outcomeInvalid, outcomeFailed} {
		counts[o] = requests.WithLabelValues(o)
	}
	for _, r := range verify.Reasons() {
		if r != verify.OK {
			counts[r.String()] = requests.WithLabelValues(r.String())
		}
	}
	return counts, nil
}

// handle answers one request.
func (s *Service) handle(msg *nats.Msg) {
	reply, outcome := s.authorize(msg.Data, msg.Header.Get(xkeyHeader))
	if reply != nil {
		if err := msg.Respond(reply); err != nil {
			s.log.Warn("nats auth callout: cannot send the response", "err", err)
			outcome = outcomeFailed
		}
	}
	s.counts[outcome].Inc()
}

// authorize decides one request, encrypted with the server's curve key
// serverXKey ("" when not encrypted), and returns the response to send
// (nil: none) and the outcome.
func (s *Service) authorize(data []byte, serverXKey string) ([]byte, string) {
	if serverXKey != "" {
		if s.xkey == nil {
			s.log.Warn("nats auth callout: the server encrypts its requests, but no xkey is configured: set nats_callout.xkey_seed_file to the seed of auth_callout.xkey")
			return nil, outcomeInvalid
		}
		var err error
		if data, err = s.xkey.Open(data, serverXKey); err != nil {
			s.log.Warn("nats auth callout: cannot decrypt a request: does auth_callout.xkey match nats_callout.xkey_seed_file?", "err", err)
			return nil, outcomeInvalid
		}
	}
	req, err := jwt.DecodeAuthorizationRequestClaims(string(data))
	if err != nil {
		s.log.Warn("nats auth callout: a request is not a signed authorization request", "err", err)
		return nil, outcomeInvalid
	}
	if err := s.checkRequest(req); err != nil {
		s.log.Warn("nats auth callout: refusing a request", "server_id", req.Server.ID, "err", err)
		return nil, outcomeInvalid
	}
	if s.xkey != nil && serverXKey == "" {
		s.log.Warn("nats auth callout: the server does not encrypt its requests, but nats_callout.xkey_seed_file is set: add the xkey to auth_callout (or remove it here)")
		return s.respond(req, serverXKey, "", "verifyd requires encrypted authorization requests", outcomeInvalid)
	}
	token, ok := credentialOf(req.ConnectOptions)
	if !ok {
		s.log.Debug("nats auth callout: refused", "reason", outcomeNoToken, "client_host", req.ClientInformation.Host)
		return s.respond(req, serverXKey, "", "present a verifyd credential as the token or the password", outcomeNoToken)
	}
	res := s.verifier.Verify(token, "")
	if !res.Allowed() {
		s.log.Debug("nats auth callout: refused", "reason", res.Reason.String(), "client_host", req.ClientInformation.Host, "digest", keystore.Sum(token))
		return s.respond(req, serverXKey, "", res.Reason.Message(), res.Reason.String())
	}
	user, err := s.userJWT(req.UserNkey, res)
	switch {
	case errors.Is(err, errExpired):
		return s.respond(req, serverXKey, "", verify.Expired.Message(), verify.Expired.String())
	case err != nil:
		s.log.Error("nats auth callout: cannot issue a user JWT", "err", err)
		return s.respond(req, serverXKey, "", "verifyd cannot issue a user JWT", outcomeFailed)
	}
	return s.respond(req, serverXKey, user, "", outcomeAllowed)
}

// checkRequest checks what a genuine request of a server configured with
// this service's issuer holds; the signature was checked when decoding.
func (s *Service) checkRequest(req *jwt.AuthorizationRequestClaims) error {
	vr := jwt.CreateValidationResults()
	req.Validate(vr)
	switch {
	case len(vr.Issues) > 0:
		return fmt.Errorf("natscallout: invalid request: %s", vr.Issues[0].Description)
	case req.Expires == 0:
		return errors.New("natscallout: the request has no expiry")
	case req.Issuer != req.Server.ID:
		return errors.New("natscallout: the request is not signed by the server it names")
	case req.Audience != requestAudience:
		return fmt.Errorf("natscallout: the request's audience is %q, not %q", req.Audience, requestAudience)
	case req.Subject != s.issuerPub:
		return fmt.Errorf("natscallout: the request is for issuer %s, but nats_callout's issuer seed is that of %s: make auth_callout.issuer and the seed agree", req.Subject, s.issuerPub)
	}
	return nil
}

// credentialOf returns the credential a client presented: its token, or
// its password (any user name). Both at once is ambiguous and refused.
func credentialOf(co jwt.ConnectOptions) (string, bool) {
	switch {
	case co.Token != "" && co.Password != "":
		return "", false
	case co.Token != "":
		return co.Token, true
	}
	return co.Password, co.Password != ""
}

// errExpired reports a credential that expires within the second.
var errExpired = errors.New("natscallout: the credential expires within the second")

// userJWT issues the user JWT of user key userNkey for the verified
// credential res: in the configured account, named after the subject,
// expiring with the credential or after MaxTTL, whichever is first, with
// the permissions its grants map to.
func (s *Service) userJWT(userNkey string, res verify.Result) (string, error) {
	now := time.Now()
	exp := now.Add(s.cfg.MaxTTL)
	if !res.ExpiresAt.IsZero() && res.ExpiresAt.Before(exp) {
		exp = res.ExpiresAt
	}
	if exp.Unix() <= now.Unix() {
		return "", errExpired
	}
	uc := jwt.NewUserClaims(userNkey)
	uc.Audience = s.cfg.Account
	uc.Name = res.Principal.Subject
	uc.Expires = exp.Unix() // rounded down: never after the credential
	uc.Permissions = s.cfg.Scopes.permissions(s.policyACLs(), res.Principal)
	return uc.Encode(s.issuer)
}

// policyACLs returns the NATS ACLs of the policy in force.
func (s *Service) policyACLs() *policyACLs {
	p := s.verifier.Policy()
	if a := s.acls.Load(); a != nil && a.policy == p {
		return a
	}
	a := s.cfg.Scopes.aclsOf(p)
	s.acls.Store(a)
	return a
}

// respond signs the response to req carrying the user JWT user or the
// error errMsg, encrypted for serverXKey when it is set, and returns it
// with outcome.
func (s *Service) respond(req *jwt.AuthorizationRequestClaims, serverXKey, user, errMsg, outcome string) ([]byte, string) {
	rc := jwt.NewAuthorizationResponseClaims(req.UserNkey)
	rc.Audience = req.Server.ID
	rc.Jwt, rc.Error = user, errMsg
	tok, err := rc.Encode(s.issuer)
	if err != nil {
		s.log.Error("nats auth callout: cannot sign a response", "err", err)
		return nil, outcomeFailed
	}
	if serverXKey == "" {
		return []byte(tok), outcome
	}
	sealed, err := s.xkey.Seal([]byte(tok), serverXKey)
	if err != nil {
		s.log.Error("nats auth callout: cannot encrypt a response", "err", err)
		return nil, outcomeFailed
	}
	return sealed, outcome
}
