// Package config loads verifyd's daemon configuration: built-in defaults,
// then a YAML file, then VERIFYD_* environment variables, then command-line
// flags, each overriding the one before. Only cmd/ uses it; packages receive
// typed Options built from a Config.
//
// Secrets are never read from flags (they would show in ps): the admin key
// comes from VERIFYD_ADMIN_KEY only.
package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/verifyd/verifyd/internal/cluster"
	"github.com/verifyd/verifyd/ipc/compat/mqtt"
	"github.com/verifyd/verifyd/ipc/compat/rabbitmq"
	"github.com/verifyd/verifyd/ipc/httpapi"
	"github.com/verifyd/verifyd/ipc/natscallout"
	"github.com/verifyd/verifyd/verify"
	"github.com/verifyd/verifyd/verify/throttle"
	"github.com/verifyd/verifyd/verify/trust"
)

// Config is the daemon's configuration. The YAML keys are the snake_case
// names in the field tags; README.md documents each one.
type Config struct {
	// DataDir holds the Pebble store. Default "./data".
	DataDir string `yaml:"data_dir"`
	// CreateDataDir creates an empty store when DataDir holds none. Default
	// true; set false in production so that a wrong path fails instead of
	// starting empty.
	CreateDataDir bool `yaml:"create_data_dir"`
	// Socket is the Unix socket path of the binary protocol. Default
	// "./verifyd.sock"; "" (or "off") serves no socket.
	Socket string `yaml:"socket"`
	IPC    IPC    `yaml:"ipc"`
	HTTP   HTTP   `yaml:"http"`
	PATs   PATs   `yaml:"pats"`
	Cache  Cache  `yaml:"cache"`
	Verify Verify `yaml:"verify"`
	// Trust lists the sources of keys that JWTs are verified against. No
	// sources: every JWT is refused as untrusted_key.
	Trust trust.Config `yaml:"trust"`
	// Introspection lists the clients that may call POST /v1/introspect
	// (RFC 7662); their secrets come from the environment or files. No
	// client: the endpoint answers every caller 401.
	Introspection httpapi.IntrospectionConfig `yaml:"introspection"`
	// Policy is the authorization policy file (YAML; see README.md). ""
	// means none: the default policy, mode deny_all, in which only the
	// scopes a credential carries itself grant. A relative path is taken
	// from the daemon's working directory.
	Policy string `yaml:"policy"`
	// PolicyCheckInterval is how often the policy file is checked for a
	// change (its inode, size and modification time); a change reloads
	// it. Default 2s; a negative value never checks (SIGHUP and
	// POST /v1/admin/policy/reload still reload it). 0 is an error.
	PolicyCheckInterval time.Duration `yaml:"policy_check_interval"`
	Log                 Log           `yaml:"log"`
	// ForwardAuth configures the forward-auth endpoint /v1/authz for
	// nginx, Traefik and Envoy (see README.md and docs/integrations/).
	ForwardAuth httpapi.ForwardAuth `yaml:"forward_auth"`
	// RabbitMQ configures the RabbitMQ HTTP auth backend adapter under
	// /v1/compat/rabbitmq/ (see docs/integrations/rabbitmq.md).
	RabbitMQ rabbitmq.Config `yaml:"rabbitmq"`
	// MQTT configures the mosquitto-go-auth and EMQX adapters under
	// /v1/compat/mqtt/ and /v1/compat/emqx/ (see docs/integrations/mqtt.md).
	MQTT mqtt.Config `yaml:"mqtt"`
	// NATSCallout configures the NATS auth callout service (see
	// docs/integrations/nats.md).
	NATSCallout natscallout.Config `yaml:"nats_callout"`
	// Throttle answers rate_limited to sources with too many failed
	// verifications and to credentials over their rate limit.
	Throttle throttle.Config `yaml:"throttle"`
	// Requests configures the access-request flow (POST /v1/auth/request).
	Requests verify.RequestOptions `yaml:"requests"`
	// Audit configures the audit trail of administrative actions.
	Audit Audit `yaml:"audit"`
	// Cluster turns on replicated mode: the store becomes a replica of an
	// etcd cluster shared by every node (see docs/scale-out.md). Off by
	// default: the node is its own source of truth.
	Cluster cluster.Config `yaml:"cluster"`
	// AdminKey is the admin key, from VERIFYD_ADMIN_KEY only (never from the
	// file or flags). Empty means: use the key generated on first start.
	AdminKey string `yaml:"-"`
}

// Audit configures the audit trail.
type Audit struct {
	// File, when set, receives a copy of every audit entry as one JSON
	// line, appended and synced before the action is answered; it is
	// reopened on SIGHUP, for log rotation. Default "": none (the store
	// keeps the trail regardless).
	File string `yaml:"file"`
	// Retention is how long the store keeps audit entries. Default 2160h
	// (90 days).
	Retention time.Duration `yaml:"retention"`
}

// HTTP configures the HTTP listener.
type HTTP struct {
	// Addr is the listen address. Default "127.0.0.1:8080".
	Addr string `yaml:"addr"`
	// MaxBodyBytes limits request bodies. Default 65536.
	MaxBodyBytes int `yaml:"max_body_bytes"`
	// ReadTimeout, WriteTimeout bound one request. Default 10s each.
	ReadTimeout  time.Duration `yaml:"read_timeout"`
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// IdleTimeout closes idle keep-alive connections. Default 2m.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxConnections bounds concurrent connections. Default 16384.
	MaxConnections int `yaml:"max_connections"`
	// ShutdownTimeout bounds the drain of in-flight requests on SIGTERM.
	// Default 10s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// CORS lists the web origins that may call /v1/verify, /v1/pats and
	// the admin API from a browser. Default none: CORS is off.
	CORS httpapi.CORS `yaml:"cors"`
	// TLS serves HTTPS, with optional client certificates and per-route
	// allowlists of their names. Default off: plain HTTP.
	TLS httpapi.TLSConfig `yaml:"tls"`
}

// PATs configures personal access tokens.
type PATs struct {
	// MaxDuration is the longest validity a PAT may be created or reset
	// with. Default 8760h.
	MaxDuration time.Duration `yaml:"max_duration"`
}

// IPC configures the Unix socket server.
type IPC struct {
	// Mode is the socket file's mode, in octal. Default "0660".
	Mode string `yaml:"mode"`
	// Group owns the socket file (a name or a numeric gid). Default: the
	// daemon's group.
	Group string `yaml:"group"`
	// AllowUIDs and AllowGIDs, when either is set, admit only peers whose
	// uid or gid (from SO_PEERCRED) is listed.
	AllowUIDs []uint32 `yaml:"allow_uids"`
	AllowGIDs []uint32 `yaml:"allow_gids"`
	// MaxFrameBytes is the longest frame accepted. Default 16384.
	MaxFrameBytes int `yaml:"max_frame_bytes"`
	// MaxInFlight bounds the unanswered requests of one connection.
	// Default 128.
	MaxInFlight int `yaml:"max_in_flight"`
	// MaxConnections bounds concurrent connections. Default 4096.
	MaxConnections int `yaml:"max_connections"`
	// IdleTimeout closes connections idle this long. Default 5m.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// ReadTimeout bounds the arrival of a started frame. Default 10s.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout bounds the writing of answers to a client. Default 10s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
}

// FileMode returns Mode as a file mode.
func (c IPC) FileMode() (os.FileMode, error) {
	m, err := strconv.ParseUint(c.Mode, 8, 32)
	if err != nil || m > 0o777 {
		return 0, fmt.Errorf("config: ipc.mode %q is not an octal file mode such as \"0660\"", c.Mode)
	}
	return os.FileMode(m), nil
}

// Cache configures the credential cache in front of the store.
type Cache struct {
	// Entries is the number of resolved credentials kept. Default 1048576.
	Entries int64 `yaml:"entries"`
	// NegativeEntries is the number of unknown digests remembered. Default
	// 65536.
	NegativeEntries int64 `yaml:"negative_entries"`
	// NegativeTTL is how long an unknown digest is remembered. Default 10s.
	NegativeTTL time.Duration `yaml:"negative_ttl"`
	// JWTEntries is the number of verified JWTs kept, each until its exp.
	// Default 262144; negative disables the cache.
	JWTEntries int64 `yaml:"jwt_entries"`
}

// Verify configures decisions.
type Verify struct {
	// CacheTTL bounds the cache_ttl_ms callers may apply. Default 5s; a
	// negative value tells callers not to cache.
	CacheTTL time.Duration `yaml:"cache_ttl"`
}

// Log configures logging.
type Log struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format is text or json. Default text.
	Format string `yaml:"format"`
}

// Default returns the embedded default configuration.
func Default() Config {
	return Config{
		DataDir:       "./data",
		CreateDataDir: true,
		Socket:        "./verifyd.sock",
		IPC: IPC{
			Mode:           "0660",
			MaxFrameBytes:  16 << 10,
			MaxInFlight:    128,
			MaxConnections: 4096,
			IdleTimeout:    5 * time.Minute,
			ReadTimeout:    10 * time.Second,
			WriteTimeout:   10 * time.Second,
		},
		HTTP: HTTP{
			Addr:            "127.0.0.1:8080",
			MaxBodyBytes:    64 << 10,
			ReadTimeout:     10 * time.Second,
			WriteTimeout:    10 * time.Second,
			IdleTimeout:     2 * time.Minute,
			MaxConnections:  16384,
			ShutdownTimeout: 10 * time.Second,
		},
		Cache:               Cache{Entries: 1 << 20, NegativeEntries: 1 << 16, NegativeTTL: 10 * time.Second, JWTEntries: 1 << 18},
		Verify:              Verify{CacheTTL: 5 * time.Second},
		PATs:                PATs{MaxDuration: 8760 * time.Hour},
		PolicyCheckInterval: 2 * time.Second,
		Log:                 Log{Level: "info", Format: "text"},
		Audit:               Audit{Retention: 90 * 24 * time.Hour},
		Throttle:            throttle.DefaultConfig(),
	}
}

// Load builds the configuration from args (without the program name) and
// the environment lookup function getenv. It returns the configuration and
// whether --reset-admin-key was given. flag.ErrHelp is returned for -h.
func Load(args []string, getenv func(string) string, usage *bytes.Buffer) (Config, bool, error) {
	fs := flag.NewFlagSet("verifyd", flag.ContinueOnError)
	if usage != nil {
		fs.SetOutput(usage)
	}
	configPath := fs.String("config", getenv("VERIFYD_CONFIG"), "YAML configuration `file` (env VERIFYD_CONFIG)")
	dataDir := fs.String("data-dir", "", "data `directory` of the store (env VERIFYD_DATA_DIR; default ./data)")
	httpAddr := fs.String("http-addr", "", "HTTP listen `address` (env VERIFYD_HTTP_ADDR; default 127.0.0.1:8080)")
	socket := fs.String("socket", "", "Unix socket `path` of the binary protocol (env VERIFYD_SOCKET; default ./verifyd.sock)")
	policy := fs.String("policy", "", "authorization policy `file` (env VERIFYD_POLICY; default none: deny_all)")
	logLevel := fs.String("log-level", "", "debug, info, warn or error (env VERIFYD_LOG_LEVEL; default info)")
	reset := fs.Bool("reset-admin-key", false, "generate a new admin key, print it once, store its hash and exit (stop the daemon first)")
	if err := fs.Parse(args); err != nil {
		return Config{}, false, err
	}
	if fs.NArg() > 0 {
		return Config{}, false, fmt.Errorf("config: unexpected argument %q (see -h)", fs.Arg(0))
	}
	c := Default()
	if *configPath != "" {
		if err := c.loadFile(*configPath); err != nil {
			return Config{}, false, err
		}
	}
	if err := c.applyEnv(getenv); err != nil {
		return Config{}, false, err
	}
	for _, f := range []struct {
		val string
		dst *string
	}{{*dataDir, &c.DataDir}, {*httpAddr, &c.HTTP.Addr}, {*socket, &c.Socket}, {*policy, &c.Policy}, {*logLevel, &c.Log.Level}} {
		if f.val != "" {
			*f.dst = f.val
		}
	}
	return c, *reset, c.Validate()
}

func (c *Config) loadFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config: %s: %w", path, err)
	}
	return nil
}

// applyEnv applies the VERIFYD_* variables.
func (c *Config) applyEnv(getenv func(string) string) error {
	var errs []error
	str := func(name string, dst *string) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	str("VERIFYD_DATA_DIR", &c.DataDir)
	str("VERIFYD_HTTP_ADDR", &c.HTTP.Addr)
	str("VERIFYD_SOCKET", &c.Socket)
	str("VERIFYD_POLICY", &c.Policy)
	str("VERIFYD_LOG_LEVEL", &c.Log.Level)
	str("VERIFYD_LOG_FORMAT", &c.Log.Format)
	str("VERIFYD_ADMIN_KEY", &c.AdminKey)
	if v := getenv("VERIFYD_CREATE_DATA_DIR"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("config: VERIFYD_CREATE_DATA_DIR=%q is not true or false", v))
		}
		c.CreateDataDir = b
	}
	if v := getenv("VERIFYD_CACHE_ENTRIES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("config: VERIFYD_CACHE_ENTRIES=%q is not a number", v))
		}
		c.Cache.Entries = n
	}
	return errors.Join(errs...)
}

// Validate reports every problem in c at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("config: "+format, args...)) }
	if c.DataDir == "" {
		bad("data_dir is empty")
	}
	if _, _, err := net.SplitHostPort(c.HTTP.Addr); err != nil {
		bad("http.addr %q is not host:port", c.HTTP.Addr)
	}
	if c.HTTP.MaxBodyBytes < 1024 {
		bad("http.max_body_bytes %d is below 1024", c.HTTP.MaxBodyBytes)
	}
	for name, d := range map[string]time.Duration{
		"http.read_timeout": c.HTTP.ReadTimeout, "http.write_timeout": c.HTTP.WriteTimeout,
		"http.idle_timeout": c.HTTP.IdleTimeout, "http.shutdown_timeout": c.HTTP.ShutdownTimeout,
		"cache.negative_ttl": c.Cache.NegativeTTL,
		"ipc.idle_timeout":   c.IPC.IdleTimeout, "ipc.read_timeout": c.IPC.ReadTimeout, "ipc.write_timeout": c.IPC.WriteTimeout,
	} {
		if d <= 0 {
			bad("%s must be a positive duration such as \"10s\"", name)
		}
	}
	if _, err := c.IPC.FileMode(); err != nil {
		errs = append(errs, err)
	}
	if c.IPC.MaxFrameBytes < 1024 || c.IPC.MaxInFlight <= 0 || c.IPC.MaxConnections <= 0 {
		bad("ipc.max_frame_bytes must be at least 1024, ipc.max_in_flight and ipc.max_connections positive")
	}
	if c.HTTP.MaxConnections <= 0 {
		bad("http.max_connections must be positive")
	}
	if err := c.HTTP.CORS.Validate(); err != nil {
		for _, p := range unjoin(err) {
			errs = append(errs, fmt.Errorf("config: %w", p))
		}
	}
	if c.PATs.MaxDuration <= 0 {
		bad("pats.max_duration must be a positive duration such as \"8760h\"")
	}
	if c.Cache.Entries <= 0 || c.Cache.NegativeEntries <= 0 {
		bad("cache.entries and cache.negative_entries must be positive")
	}
	if _, err := c.LogLevel(); err != nil {
		errs = append(errs, err)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		bad("log.format %q is not text or json", c.Log.Format)
	}
	if c.Cache.JWTEntries == 0 {
		bad("cache.jwt_entries must not be 0 (negative disables the cache)")
	}
	if c.PolicyCheckInterval == 0 {
		bad("policy_check_interval must not be 0 (a duration such as \"2s\"; negative never checks the file)")
	}
	c.HTTP.TLS.EnsureDefaults()
	if err := c.HTTP.TLS.Validate(); err != nil {
		for _, p := range unjoin(err) {
			errs = append(errs, fmt.Errorf("config: %w", p))
		}
	}
	if err := c.Throttle.Validate(); err != nil {
		for _, p := range unjoin(err) {
			errs = append(errs, fmt.Errorf("config: %w", p))
		}
	}
	c.Requests.EnsureDefaults()
	if err := c.Requests.Validate(); err != nil {
		for _, p := range unjoin(err) {
			errs = append(errs, fmt.Errorf("config: %w", p))
		}
	}
	if c.Audit.Retention <= 0 {
		bad("audit.retention must be a positive duration such as \"2160h\"")
	}
	c.ForwardAuth.EnsureDefaults()
	if err := c.ForwardAuth.Validate(); err != nil {
		for _, p := range unjoin(err) {
			errs = append(errs, fmt.Errorf("config: %w", p))
		}
	}
	c.RabbitMQ.EnsureDefaults()
	if err := c.RabbitMQ.Validate(); err != nil {
		for _, p := range unjoin(err) {
			errs = append(errs, fmt.Errorf("config: %w", p))
		}
	}
	c.MQTT.EnsureDefaults()
	if err := c.MQTT.Validate(); err != nil {
		for _, p := range unjoin(err) {
			errs = append(errs, fmt.Errorf("config: %w", p))
		}
	}
	c.NATSCallout.EnsureDefaults()
	if err := c.NATSCallout.Validate(); err != nil {
		for _, p := range unjoin(err) {
			errs = append(errs, fmt.Errorf("config: %w", p))
		}
	}
	c.Trust.EnsureDefaults()
	if err := c.Trust.Validate(); err != nil {
		for _, p := range unjoin(err) {
			errs = append(errs, fmt.Errorf("config: %w", p))
		}
	}
	c.Cluster.EnsureDefaults()
	if err := c.Cluster.Validate(); err != nil {
		for _, p := range unjoin(err) {
			errs = append(errs, fmt.Errorf("config: %w", p))
		}
	}
	if c.AdminKey != "" && (len(c.AdminKey) < 16 || len(c.AdminKey) > 512 || strings.ContainsAny(c.AdminKey, " \t\r\n")) {
		bad("VERIFYD_ADMIN_KEY must be 16-512 bytes without whitespace")
	}
	return errors.Join(errs...)
}

// unjoin returns the errors err joins, or err alone.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// LogLevel returns the slog level of c.Log.Level.
func (c *Config) LogLevel() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.Log.Level)); err != nil {
		return 0, fmt.Errorf("config: log.level %q is not debug, info, warn or error", c.Log.Level)
	}
	return l, nil
}
