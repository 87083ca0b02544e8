package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/verifyd/verifyd/internal/adminclient"
)

// Exit statuses; "verifyctl help" documents them.
const (
	exitOK          = 0 // success; for verify, the token is allowed
	exitRefused     = 1 // the daemon refused: denied token, unknown key, rejected admin key
	exitUsage       = 2 // bad command line, or a request the daemon called malformed (400)
	exitUnavailable = 3 // daemon unreachable, timed out, 5xx, or an answer outside the API
)

// Environment variables read by verifyctl.
const (
	envAddr     = "VERIFYD_ADDR"
	envAdminKey = "VERIFYD_ADMIN_KEY"
	envSocket   = "VERIFYD_SOCKET"
	envCACert   = "VERIFYD_CACERT"
	envCert     = "VERIFYD_CERT"
	envCertKey  = "VERIFYD_CERT_KEY"
)

// env is the process environment run works in, replaceable in tests.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

// globals holds the flags accepted by every command.
type globals struct {
	addr     string
	addrSet  bool // --addr was given (not only $VERIFYD_ADDR)
	adminKey secretValue
	output   outputValue
	timeout  time.Duration
	// TLS: the CA bundle that verifies the daemon, and the client
	// certificate and key presented to it.
	caCert, cert, certKey string
}

// register adds the global flags to fs. It binds them to g without resetting
// values already parsed, so globals may appear before the command words and
// again after them.
func (g *globals) register(fs *flag.FlagSet) {
	fs.Var(addrValue{g}, "addr", "")
	fs.Var(&g.adminKey, "admin-key", "")
	fs.Var(&g.output, "o", "")
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "")
	fs.StringVar(&g.caCert, "cacert", g.caCert, "")
	fs.StringVar(&g.cert, "cert", g.cert, "")
	fs.StringVar(&g.certKey, "cert-key", g.certKey, "")
}

// addrValue is the --addr flag: it sets g.addr and notes that the flag was
// given, which makes verify use HTTP even when $VERIFYD_SOCKET is set.
type addrValue struct{ g *globals }

func (v addrValue) String() string {
	if v.g == nil {
		return ""
	}
	return v.g.addr
}

func (v addrValue) Set(s string) error {
	v.g.addr = s
	v.g.addrSet = true
	return nil
}

// secretValue is a flag.Value that never shows its value, so no flag error or
// usage text can print the admin key.
type secretValue struct{ s string }

func (v *secretValue) String() string     { return "" }
func (v *secretValue) Set(s string) error { v.s = s; return nil }

// outputValue is the -o flag: "table" or "json".
type outputValue struct{ json bool }

func (v *outputValue) String() string {
	if v.json {
		return "json"
	}
	return "table"
}

func (v *outputValue) Set(s string) error {
	switch s {
	case "table":
		v.json = false
	case "json":
		v.json = true
	default:
		return fmt.Errorf("output must be table or json, not %q", s)
	}
	return nil
}

// usageError is a command-line mistake. cmd names the command whose help the
// message points to; empty means the top level.
type usageError struct {
	cmd string
	msg string
}

func (e *usageError) Error() string { return e.msg }

func usagef(cmd, format string, args ...any) error {
	return &usageError{cmd: cmd, msg: fmt.Sprintf(format, args...)}
}

// deniedError reports a token the daemon refused; the decision has already
// been printed.
type deniedError struct{ msg string }

func (e *deniedError) Error() string { return e.msg }

// exitError is a failure with its own exit status.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// session is one invocation of a command.
type session struct {
	*env
	g     *globals
	cmd   *command
	warnd bool // the plain-http warning has been printed
}

// run executes verifyctl with args (without the program name) and returns
// the exit status.
func run(ctx context.Context, args []string, e *env) int {
	g := &globals{
		addr:    e.getenv(envAddr),
		timeout: adminclient.DefaultTimeout,
		caCert:  e.getenv(envCACert),
		cert:    e.getenv(envCert),
		certKey: e.getenv(envCertKey),
	}
	g.adminKey.s = e.getenv(envAdminKey)

	err := dispatch(ctx, args, e, g)
	if err == nil {
		return exitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	code, msg := describe(err)
	fmt.Fprintf(e.stderr, "verifyctl: %s\n", msg)
	var ue *usageError
	if errors.As(err, &ue) {
		if ue.cmd == "" {
			fmt.Fprintln(e.stderr, `Run "verifyctl help" for usage.`)
		} else {
			fmt.Fprintf(e.stderr, "Run \"verifyctl help %s\" for usage.\n", ue.cmd)
		}
	}
	return code
}

// dispatch finds the command in args, parses its flags and runs it.
func dispatch(ctx context.Context, args []string, e *env, g *globals) error {
	top := newFlagSet("verifyctl")
	g.register(top)
	if err := top.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printHelp(e.stdout, nil)
		}
		return flagError("", err)
	}
	rest := top.Args()
	if len(rest) == 0 {
		return usagef("", "no command given")
	}
	name := rest[0]
	rest = rest[1:]
	if name == "help" {
		return helpCommand(e.stdout, rest)
	}
	if subs, ok := groups[name]; ok {
		// Global flags may sit between a group word and its subcommand.
		if err := top.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				printHelp(e.stdout, nil)
			}
			return flagError(name, err)
		}
		rest = top.Args()
		if len(rest) == 0 {
			return usagef(name, "%s needs a subcommand: %s", name, subs)
		}
		name = name + " " + rest[0]
		rest = rest[1:]
	}
	cmd := lookup(name)
	if cmd == nil {
		return usagef("", "unknown command %q", name)
	}

	fs := newFlagSet(cmd.name)
	g.register(fs)
	runCmd := cmd.bind(fs)
	pos, err := parseInterspersed(fs, rest)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printHelp(e.stdout, cmd)
		}
		return flagError(cmd.name, err)
	}
	if len(pos) > cmd.maxArgs {
		// An extra argument shaped like a flag is most likely a mistyped one.
		for _, p := range pos {
			if _, ok := flagName(p); ok {
				return usagef(cmd.name, "unknown flag %s", p)
			}
		}
	}
	if len(pos) < cmd.minArgs || len(pos) > cmd.maxArgs {
		return usagef(cmd.name, "usage: verifyctl %s", cmd.synopsis)
	}
	s := &session{env: e, g: g, cmd: cmd}
	return runCmd(ctx, s, pos)
}

// newFlagSet returns a flag set that reports errors to dispatch instead of
// printing them.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// flagError turns a flag package error into a usageError; ErrHelp passes
// through.
func flagError(cmd string, err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return &usageError{cmd: cmd, msg: err.Error()}
}

// parseInterspersed parses args with fs, allowing flags before, between and
// after positional arguments. An argument is a flag only when it names a
// flag defined in fs (or -h, -help): key ids and tokens are base64url and may
// well start with '-', so anything else is positional. Everything after "--"
// is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		name, ok := flagName(a)
		f := fs.Lookup(name)
		if !ok || f == nil && name != "h" && name != "help" {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		if f != nil && !strings.Contains(a, "=") && !isBoolFlag(f) && i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	if err := fs.Parse(flags); err != nil {
		return nil, err
	}
	return pos, nil
}

// flagName returns the name in a "-name", "--name" or "-name=value"
// argument, and whether the argument has that shape at all.
func flagName(a string) (string, bool) {
	if len(a) < 2 || a[0] != '-' {
		return "", false
	}
	a = strings.TrimPrefix(a[1:], "-")
	name, _, _ := strings.Cut(a, "=")
	if name == "" || name[0] == '-' {
		return "", false
	}
	return name, true
}

// isBoolFlag reports whether f takes no separate value argument.
func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// client returns a client for the daemon named by the global flags. For an
// admin command it first checks that an admin key was given.
func (s *session) client(admin bool) (*adminclient.Client, error) {
	if admin && s.g.adminKey.s == "" {
		return nil, usagef(s.cmd.name, "no admin key: set %s (or pass --admin-key, which other users can see in ps)", envAdminKey)
	}
	key := ""
	if admin {
		key = s.g.adminKey.s
	}
	if s.g.timeout <= 0 {
		return nil, usagef(s.cmd.name, "--timeout must be positive")
	}
	c, err := s.newClient(key)
	if err != nil {
		return nil, err
	}
	s.warnPlainHTTP(c.BaseURL())
	return c, nil
}

// newClient returns a client with the admin key key: over TLS with the
// CA bundle and client certificate of the global flags when any is given
// (a bare host:port then means https), else as the address says.
func (s *session) newClient(key string) (*adminclient.Client, error) {
	g := s.g
	if g.caCert == "" && g.cert == "" && g.certKey == "" {
		return adminclient.New(g.addr, key, g.timeout)
	}
	conf, err := adminclient.LoadTLSConfig(g.caCert, g.cert, g.certKey)
	if err != nil {
		return nil, err
	}
	addr := g.addr
	if addr == "" {
		addr = strings.Replace(adminclient.DefaultAddr, "http://", "https://", 1)
	} else if !strings.Contains(addr, "://") {
		addr = "https://" + addr
	}
	return adminclient.NewTLS(addr, key, g.timeout, conf)
}

// warnPlainHTTP warns once when credentials are about to cross a network
// unencrypted: plain http to a host other than the loopback.
func (s *session) warnPlainHTTP(base string) {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "http" || s.warnd {
		return
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
		return
	}
	s.warnd = true
	fmt.Fprintf(s.stderr, "verifyctl: warning: credentials go unencrypted to %s over plain http; use an https:// address\n", host)
}

// describe maps an error to an exit status and the message to print after
// "verifyctl: ".
func describe(err error) (int, string) {
	var (
		ue *usageError
		de *deniedError
		xe *exitError
		ae *adminclient.APIError
	)
	switch {
	case errors.As(err, &ue):
		return exitUsage, ue.msg
	case errors.As(err, &de):
		return exitRefused, de.msg
	case errors.As(err, &xe):
		return xe.code, xe.msg
	case errors.As(err, &ae):
		msg := ae.Message
		if msg == "" {
			msg = fmt.Sprintf("daemon answered %d %s", ae.Status, http.StatusText(ae.Status))
		}
		switch {
		case ae.Status == http.StatusBadRequest:
			return exitUsage, msg
		case ae.Status >= 400 && ae.Status < 500:
			return exitRefused, msg
		default:
			return exitUnavailable, msg
		}
	case errors.Is(err, adminclient.ErrInvalidArgument), errors.Is(err, adminclient.ErrNoAdminKey):
		return exitUsage, strings.TrimPrefix(err.Error(), "adminclient: ")
	default:
		return exitUnavailable, strings.TrimPrefix(err.Error(), "adminclient: ")
	}
}
