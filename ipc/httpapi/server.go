package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/verifyd/verifyd/rbac"
	"github.com/verifyd/verifyd/verify"
	"github.com/verifyd/verifyd/verify/throttle"
	"github.com/verifyd/verifyd/verify/trust"
)

// DefaultMaxBodyBytes is the default limit on a request body.
const DefaultMaxBodyBytes = 64 << 10

// Options configures a Server.
type Options struct {
	// Verifier answers POST /v1/verify. Required.
	Verifier *verify.Verifier
	// Manager serves the admin API and checks the admin key. Required.
	Manager *verify.Manager
	// Cluster is the replicated mode's state, for GET /readyz and the
	// cluster admin API; nil in single-node mode.
	Cluster Cluster
	// Ready reports whether the daemon can serve (GET /readyz). nil means
	// always ready.
	Ready func() error
	// Trust is the JWT trust registry, whose sources GET /v1/admin/trust
	// reports. nil means no trust source is configured.
	Trust *trust.Registry
	// Policy reloads the authorization policy file and reports on it
	// (/v1/admin/policy). nil means no policy file is configured: the
	// status shows the Verifier's policy, and a reload answers 409.
	Policy PolicyAdmin
	// ForwardAuth configures the forward-auth endpoint /v1/authz; its
	// zero value, with defaults filled in, reads Bearer, Basic, X-Api-Key
	// and ?key= credentials and decides the auth URL's ?scope=.
	ForwardAuth ForwardAuth
	// Adapters serve brokers' own HTTP contracts (RabbitMQ, MQTT plugins,
	// EMQX) under their path prefixes.
	Adapters []Adapter
	// Gatherer is served on GET /metrics. nil means no metrics endpoint.
	Gatherer prometheus.Gatherer
	// Registerer receives the HTTP metrics. nil means none.
	Registerer prometheus.Registerer
	// MaxBodyBytes limits request bodies. The default value is 64 KiB.
	MaxBodyBytes int
	// ReadTimeout and WriteTimeout bound one request. The defaults are 10s.
	ReadTimeout, WriteTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long. The default
	// value is 2m.
	IdleTimeout time.Duration
	// MaxConnections bounds concurrent connections. The default value is
	// 16384.
	MaxConnections int
	// Logger receives operational faults. nil means slog.Default().
	Logger *slog.Logger
	// Introspection lists the clients that may call POST /v1/introspect.
	// None means the endpoint answers every caller 401.
	Introspection []IntrospectionClient
	// CORS lists the web origins that may call /v1/verify, /v1/pats and
	// the admin API from a browser. None means CORS is off.
	CORS CORS
	// Throttle, when set, counts failed verifications per source and per
	// PAT id, and applies credentials' rate limits, on /v1/verify and
	// /v1/authz (see package verify/throttle). nil means no throttling.
	Throttle *throttle.Limiter
	// ClientNames maps a route group to the names of the client
	// certificates allowed to call it (see TLSConfig.ClientNames); a
	// request of a listed group without such a certificate gets 403. It
	// needs connections from TLSCerts.Listener.
	ClientNames map[string][]string
}

// An Adapter serves one client's own HTTP contract under a path prefix:
// every request whose path starts with Prefix goes to Handler, and is
// counted in the HTTP metrics under Route.
type Adapter struct {
	Prefix  string // e.g. "/v1/compat/rabbitmq/"; must start with "/v1/compat/"
	Route   string // the route label of the HTTP metrics, e.g. "rabbitmq"
	Handler fasthttp.RequestHandler
}

// EnsureDefaults fills in unset fields.
func (o *Options) EnsureDefaults() {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 10 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 2 * time.Minute
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = 16384
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.ForwardAuth.EnsureDefaults()
}

// Validate reports every missing required field.
func (o *Options) Validate() error {
	var errs []error
	if o.Verifier == nil {
		errs = append(errs, errors.New("httpapi: a verifier is required"))
	}
	if o.Manager == nil {
		errs = append(errs, errors.New("httpapi: a manager is required"))
	}
	for _, a := range o.Adapters {
		if !strings.HasPrefix(a.Prefix, "/v1/compat/") || a.Route == "" || a.Handler == nil {
			errs = append(errs, fmt.Errorf("httpapi: adapter %q needs a prefix under /v1/compat/, a route label and a handler", a.Prefix))
		}
	}
	return errors.Join(errs...)
}

// Server serves the HTTP API. It is safe for concurrent use.
type Server struct {
	mu      sync.Mutex     // guards lns and stopped
	lns     []net.Listener // listeners passed to Serve
	stopped bool           // Shutdown has been called
	opts    Options
	srv     *fasthttp.Server
	metrics fasthttp.RequestHandler
	reqs    *prometheus.CounterVec
	authz   *authzConfig

	introspection *introspection // serves POST /v1/introspect
	adminAuth     adminAuthMetrics
	cors          *corsPolicy    // nil when CORS is off
	gate          *throttle.Gate // nil without throttling
	clients       *clientNames   // nil without a client certificate allowlist
}

// New returns a Server; call Serve to start it.
func New(opts Options) (*Server, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	authz, err := opts.ForwardAuth.compile()
	if err != nil {
		return nil, fmt.Errorf("httpapi: %w", err)
	}
	cors, err := opts.CORS.compile()
	if err != nil {
		return nil, fmt.Errorf("httpapi: %w", err)
	}
	s := &Server{opts: opts, authz: authz, cors: cors}
	if opts.Throttle != nil {
		s.gate = opts.Throttle.Gate(opts.Verifier, "http")
	}
	if s.clients, err = compileClientNames(opts.ClientNames); err != nil {
		return nil, fmt.Errorf("httpapi: %w", err)
	}
	if opts.Gatherer != nil {
		s.metrics = fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{}))
	}
	if opts.Registerer != nil {
		s.reqs = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "verifyd",
			Subsystem: "http",
			Name:      "requests_total",
			Help:      "HTTP requests by route and status code.",
		}, []string{"route", "code"})
		if err := opts.Registerer.Register(s.reqs); err != nil {
			return nil, err
		}
	}
	if s.adminAuth, err = newAdminAuthMetrics(opts.Registerer); err != nil {
		return nil, err
	}
	if s.introspection, err = newIntrospection(opts.Introspection, opts.Registerer, opts.Logger); err != nil {
		return nil, err
	}
	s.srv = &fasthttp.Server{
		Handler:            s.handle,
		ErrorHandler:       s.handleParseError,
		HeaderReceived:     s.headerReceived,
		Name:               "verifyd",
		MaxRequestBodySize: opts.MaxBodyBytes,
		ReadTimeout:        opts.ReadTimeout,
		WriteTimeout:       opts.WriteTimeout,
		IdleTimeout:        opts.IdleTimeout,
		Concurrency:        opts.MaxConnections,
		// fasthttp logs per-connection errors that clients cause (bodies
		// over the limit, resets, malformed requests): Debug, so that no
		// client can flood the log.
		Logger:                slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
		NoDefaultServerHeader: true,
	}
	return s, nil
}

// Serve accepts connections on ln until Shutdown; it returns nil after a
// shutdown, even one that came before Serve started.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	ln = &onceCloseListener{Listener: ln}
	s.lns = append(s.lns, ln)
	s.mu.Unlock()
	err := s.srv.Serve(ln)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	return err
}

// Shutdown stops accepting connections and waits for in-flight requests to
// finish, or for ctx to end. It also stops a Serve that has not reached its
// accept loop yet: the listeners are closed here, not only by fasthttp.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.stopped = true
	for _, ln := range s.lns {
		ln.Close()
	}
	s.mu.Unlock()
	return s.srv.ShutdownWithContext(ctx)
}

// onceCloseListener closes its listener once; later calls return nil, so
// that Shutdown and fasthttp can both close it without reporting an error.
type onceCloseListener struct {
	net.Listener
	once sync.Once
	err  error
}

func (l *onceCloseListener) Close() error {
	l.once.Do(func() { l.err = l.Listener.Close() })
	return l.err
}

// Handler returns the request handler, for serving on a listener of the
// caller's choosing.
func (s *Server) Handler() fasthttp.RequestHandler { return s.handle }

func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	route := s.route(ctx)
	if s.reqs != nil {
		s.reqs.WithLabelValues(route, statusLabel(ctx.Response.StatusCode())).Inc()
	}
}

// route dispatches the request and returns the route label for metrics.
func (s *Server) route(ctx *fasthttp.RequestCtx) string {
	if s.clients != nil && !s.clients.admit(ctx) {
		return "client_refused"
	}
	if isAuthzURI(ctx.Request.URI().PathOriginal()) {
		s.handleAuthz(ctx)
		return "authz"
	}
	// A view of the request's path, valid during the request only: the
	// branches that hand it on copy it.
	path := b2s(ctx.Path())
	if s.cors != nil && s.cors.apply(ctx, path) {
		return "preflight"
	}
	switch {
	case path == "/v1/verify":
		if !allowMethod(ctx, fasthttp.MethodPost) {
			return "verify"
		}
		s.handleVerify(ctx)
		return "verify"
	case path == "/v1/introspect":
		s.handleIntrospect(ctx)
		return "introspect"
	case path == "/healthz":
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("ok\n")
		return "healthz"
	case path == "/readyz":
		s.handleReady(ctx)
		return "readyz"
	case path == "/metrics" && s.metrics != nil:
		s.metrics(ctx)
		return "metrics"
	case path == "/v1/admin/keys" || len(path) > len("/v1/admin/keys/") && path[:len("/v1/admin/keys/")] == "/v1/admin/keys/":
		s.handleAdmin(ctx, strings.Clone(path[len("/v1/admin/keys"):]))
		return "admin_keys"
	case path == "/v1/admin/revocations":
		s.handleRevocations(ctx)
		return "admin_revocations"
	case path == "/v1/pats" || strings.HasPrefix(path, "/v1/pats/"):
		s.handlePATs(ctx, strings.Clone(path[len("/v1/pats"):]))
		return "pats"
	case strings.HasPrefix(path, "/v1/auth/"):
		s.handleAuth(ctx, strings.Clone(path[len("/v1/auth"):]))
		return "auth"
	case path == "/v1/admin/requests" || strings.HasPrefix(path, "/v1/admin/requests/"):
		s.handleAdminRequests(ctx, strings.Clone(path[len("/v1/admin/requests"):]))
		return "admin_requests"
	case strings.HasPrefix(path, "/v1/admin/agents/"):
		s.handleAdminAgents(ctx, strings.Clone(path[len("/v1/admin/agents"):]))
		return "admin_agents"
	case path == "/v1/admin/audit":
		s.handleAudit(ctx)
		return "admin_audit"
	case path == "/v1/admin/trust":
		s.handleTrust(ctx)
		return "admin_trust"
	case path == "/v1/admin/cluster" || path == "/v1/admin/cluster/fingerprint":
		s.handleCluster(ctx, path[len("/v1/admin/cluster"):])
		return "admin_cluster"
	case path == "/v1/admin/policy" || strings.HasPrefix(path, "/v1/admin/policy/"):
		s.handlePolicy(ctx, strings.Clone(path[len("/v1/admin/policy"):]))
		return "admin_policy"
	}
	for _, a := range s.opts.Adapters {
		if strings.HasPrefix(path, a.Prefix) {
			a.Handler(ctx)
			return a.Route
		}
	}
	writeError(ctx, fasthttp.StatusNotFound, "NOT_FOUND", "no such endpoint: "+path)
	return "other"
}

// handleParseError answers a request fasthttp could not read (a body over
// the limit, malformed HTTP) with the same JSON error shape as every other
// error.
func (s *Server) handleParseError(ctx *fasthttp.RequestCtx, err error) {
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		writeError(ctx, fasthttp.StatusBadRequest, "BAD_REQUEST", fmt.Sprintf("request body is larger than %d bytes", s.opts.MaxBodyBytes))
		return
	}
	writeError(ctx, fasthttp.StatusBadRequest, "BAD_REQUEST", "malformed HTTP request")
}

func (s *Server) handleReady(ctx *fasthttp.RequestCtx) {
	if s.opts.Ready != nil {
		if err := s.opts.Ready(); err != nil {
			writeError(ctx, fasthttp.StatusServiceUnavailable, "SERVICE_UNAVAILABLE", err.Error())
			return
		}
	}
	ctx.SetContentType("text/plain; charset=utf-8")
	body := "ready\n"
	if s.opts.Cluster != nil {
		degraded, line := s.opts.Cluster.Summary()
		if degraded {
			body = "degraded\n"
		}
		body += line + "\n"
	}
	if s.opts.Verifier.Policy().Mode() == rbac.None {
		body += NoneModeWarning + "\n"
	}
	ctx.SetBodyString(body)
}

// NoneModeWarning is what GET /readyz adds to its answer, and what the
// daemon logs, while the policy in force has mode none.
const NoneModeWarning = "WARNING: the authorization policy has mode none: every scope is allowed to every valid credential. Use it for development only."

// allowMethod answers 405 unless the request uses one of methods.
func allowMethod(ctx *fasthttp.RequestCtx, methods ...string) bool {
	m := string(ctx.Method())
	for _, want := range methods {
		if m == want {
			return true
		}
	}
	allow := methods[0]
	for _, o := range methods[1:] {
		allow += ", " + o
	}
	ctx.Response.Header.Set("Allow", allow)
	writeError(ctx, fasthttp.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "method "+m+" is not allowed here (use "+allow+")")
	return false
}

func statusLabel(code int) string {
	if code < 100 || code > 599 {
		return "other"
	}
	return statusLabels[code-100]
}

// statusLabels holds the label of each status code from 100 to 599, so
// that counting a request allocates nothing.
var statusLabels = func() (l [500]string) {
	for i := range l {
		l[i] = strconv.Itoa(i + 100)
	}
	return l
}()
