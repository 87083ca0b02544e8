// Package admintest runs verifyd's real HTTP API on a loopback port for
// tests of [adminclient] and of the verifyctl command: the fasthttp server of
// ipc/httpapi, over the real verifier and a Pebble store in a temporary
// directory, and optionally a JWT trust registry and a policy file. Tests built on it exercise the clients against the daemon's
// actual contract, not against a copy of it.
package admintest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/verifyd/verifyd/ipc/httpapi"
	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/verify"
	"github.com/verifyd/verifyd/verify/credential"
	"github.com/verifyd/verifyd/verify/jwt"
	"github.com/verifyd/verifyd/verify/trust"
)

// A Server is verifyd's HTTP API on a loopback address, with its store in a
// temporary directory. Create it with NewServer and stop it with Close.
type Server struct {
	// URL is the base address of the server, "http://127.0.0.1:port".
	URL string

	dir   string
	store *keystore.Store
	http  *httpapi.Server
	ln    *countingListener
	done  chan error
}

// Options configures a Server. A nil *Options means all defaults.
type Options struct {
	// Trust is the JWT trust registry. As in the daemon, GET /v1/admin/trust
	// reports its sources and POST /v1/verify checks JWTs against its keys.
	// nil means no trust source is configured. The Server does not close
	// it: the caller does, after Close.
	Trust *trust.Registry
	// PolicyFile is an authorization policy file, loaded at start and read
	// again by POST /v1/admin/policy/reload, as in the daemon (which also
	// watches it; this server does not). "" means none: the default
	// policy, deny_all.
	PolicyFile string
}

// NewServer starts a Server whose admin key is adminKey. The caller must
// call Close. It panics if the daemon cannot be set up, which in a test
// environment means the machine is broken.
func NewServer(adminKey string) *Server {
	return NewServerWith(adminKey, nil)
}

// NewServerWith is NewServer with the options opts.
func NewServerWith(adminKey string, opts *Options) *Server {
	var o Options
	if opts != nil {
		o = *opts
	}
	s, err := start(adminKey, o)
	if err != nil {
		panic(fmt.Sprintf("admintest: %v", err))
	}
	return s
}

func start(adminKey string, o Options) (*Server, error) {
	dir, err := os.MkdirTemp("", "verifyd-admintest-")
	if err != nil {
		return nil, err
	}
	quiet := slog.New(slog.DiscardHandler)
	store, err := keystore.Open(dir, &keystore.Options{Logger: quiet})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &Server{dir: dir, store: store, done: make(chan error, 1)}
	fail := func(err error) (*Server, error) {
		store.Close()
		os.RemoveAll(dir)
		return nil, err
	}
	ck, err := credential.NewChecksumKey()
	if err != nil {
		return fail(err)
	}
	minter, err := credential.NewMinter(ck)
	if err != nil {
		return fail(err)
	}
	var jwts *jwt.Verifier
	if o.Trust != nil {
		if jwts, err = jwt.NewVerifier(o.Trust, nil); err != nil {
			return fail(err)
		}
	}
	v, err := verify.New(store, minter, &verify.Options{Logger: quiet, JWT: jwts})
	if err != nil {
		return fail(err)
	}
	var policy httpapi.PolicyAdmin
	if o.PolicyFile != "" {
		pf := &policyFile{path: o.PolicyFile, v: v}
		if _, err := pf.ReloadPolicy(); err != nil {
			return fail(err)
		}
		policy = pf
	}
	s.http, err = httpapi.New(httpapi.Options{
		Verifier: v,
		Manager:  verify.NewManager(store, minter, keystore.Sum(adminKey), nil),
		Trust:    o.Trust,
		Policy:   policy,
		Logger:   quiet,
	})
	if err != nil {
		return fail(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	s.ln = &countingListener{Listener: ln}
	s.URL = "http://" + ln.Addr().String()
	go func() { s.done <- s.http.Serve(s.ln) }()
	return s, nil
}

// Close stops the server, waits for outstanding requests, closes the store
// and removes its directory.
func (s *Server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.http.Shutdown(ctx)
	<-s.done
	s.store.Close()
	os.RemoveAll(s.dir)
}

// Connections returns how many connections the server has accepted: zero
// means no request reached it.
func (s *Server) Connections() int { return int(s.ln.accepted.Load()) }

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	accepted atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}
