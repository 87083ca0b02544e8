package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/verifyd/verifyd/internal/config"
	"github.com/verifyd/verifyd/ipc"
	"github.com/verifyd/verifyd/ipc/compat/mqtt"
	"github.com/verifyd/verifyd/ipc/compat/rabbitmq"
	"github.com/verifyd/verifyd/ipc/httpapi"
	"github.com/verifyd/verifyd/ipc/natscallout"
	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/rbac"
	"github.com/verifyd/verifyd/verify"
	"github.com/verifyd/verifyd/verify/credential"
	"github.com/verifyd/verifyd/verify/jwt"
	"github.com/verifyd/verifyd/verify/throttle"
	"github.com/verifyd/verifyd/verify/trust"
)

// Exit statuses, distinct so that supervisors and operators can tell the
// failures apart.
const (
	exitOK          = 0
	exitFailure     = 1 // a runtime failure after start (listener, serving)
	exitConfig      = 2 // invalid flags, environment or configuration file
	exitStore       = 3 // the store cannot be opened (missing, permissions, locked)
	exitCorrupt     = 4 // the store is corrupt; verifyd refuses to start rather than start empty
	exitListen      = 5 // the HTTP address cannot be bound
	metaChecksumKey = "apikey_checksum_key"
	metaAdminDigest = "admin_key_digest"
)

// run wires config -> policy -> keystore -> trust registry -> verifier ->
// HTTP server and socket, and serves until ctx ends (reloading the policy
// on SIGHUP and when its file changes), then drains and closes. It returns
// the process exit status.
func run(ctx context.Context, cfg config.Config, resetAdmin bool, stdout, stderr io.Writer) int {
	level, _ := cfg.LogLevel()
	hopts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(stderr, hopts)
	if cfg.Log.Format == "json" {
		h = slog.NewJSONHandler(stderr, hopts)
	}
	log := slog.New(h)
	slog.SetDefault(log)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// SIGHUP reloads the policy. It is caught from here on, so that one
	// arriving during start does not kill the daemon; it waits for the
	// watcher.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	// The policy file is read before anything else is opened: an invalid
	// one stops verifyd at start, listing every problem.
	policy, err := newPolicyLoader(cfg.Policy, reg, log)
	if err != nil {
		log.Error("cannot set up the policy", "err", err)
		return exitConfig
	}
	initialPolicy, err := policy.load()
	if err != nil {
		logPolicyError(log, policy.path, err)
		return exitConfig
	}
	// So are the introspection clients' secrets: a missing or short one
	// stops verifyd at start, with every problem listed.
	introspectionClients, err := cfg.Introspection.Load(os.Getenv)
	if err != nil {
		log.Error("the introspection section is invalid; verifyd does not start", "err", err)
		return exitConfig
	}
	// So are the TLS certificate, key and client CA bundle.
	tlsw, err := newTLSWatcher(cfg.HTTP.TLS, reg, log)
	if err != nil {
		log.Error("cannot load the TLS files; verifyd does not start", "err", err)
		return exitConfig
	}
	if tlsw != nil {
		defer tlsw.stop()
	}
	limiter, err := throttle.New(cfg.Throttle, &throttle.Options{Registerer: reg, Logger: log})
	if err != nil {
		log.Error("cannot set up the throttle", "err", err)
		return exitConfig
	}

	// So is the audit file: one that cannot be opened stops verifyd.
	audit, err := openAuditFile(cfg.Audit.File, reg, log)
	if err != nil {
		log.Error("cannot open the audit file; verifyd does not start", "err", err)
		return exitConfig
	}
	var auditSink verify.AuditSink
	if audit != nil {
		auditSink = audit
		defer audit.close()
	}

	// Replicated mode: the store becomes a replica of etcd, written
	// through the node.
	var repl *replication
	var replicator keystore.Replicator
	if cfg.Cluster.Enabled() {
		if repl, err = newReplication(cfg.Cluster, policy, reg, log); err != nil {
			log.Error("cannot set up replicated mode; verifyd does not start", "err", err)
			return exitConfig
		}
		replicator = repl.node
	}
	store, err := keystore.Open(cfg.DataDir, &keystore.Options{
		Replicator:       replicator,
		CacheEntries:     cfg.Cache.Entries,
		NegativeEntries:  cfg.Cache.NegativeEntries,
		NegativeTTL:      cfg.Cache.NegativeTTL,
		AuditRetention:   cfg.Audit.Retention,
		Registerer:       reg,
		Logger:           log,
		ErrorIfNotExists: !cfg.CreateDataDir,
	})
	if err != nil {
		if errors.Is(err, keystore.ErrCorrupt) {
			log.Error("the store is corrupt; refusing to start (restore it from a backup; verifyd never recreates it)", "dir", cfg.DataDir, "err", err)
			return exitCorrupt
		}
		log.Error("cannot open the store", "dir", cfg.DataDir, "err", err)
		return exitStore
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Error("closing the store", "err", err)
		}
	}()

	if repl != nil {
		repl.start(store)
		defer repl.stop()
		if doc, ok, err := store.GetMeta(metaPolicy); err == nil && ok {
			if p, err := policy.adoptShared(doc); err == nil {
				initialPolicy = p
			}
		}
	}

	initCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var checksumKey []byte
	if repl != nil {
		checksumKey = repl.secrets.ChecksumKey
	} else if checksumKey, err = store.Meta(initCtx, metaChecksumKey, credential.NewChecksumKey); err != nil {
		log.Error("cannot read or create the API key checksum key", "err", err)
		return exitStore
	}
	minter, err := credential.NewMinter(checksumKey)
	if err != nil {
		log.Error("invalid API key checksum key in the store", "err", err)
		return exitCorrupt
	}
	adminDigest, err := adminKeyDigest(initCtx, cfg, store, minter, resetAdmin, stdout)
	if err != nil {
		log.Error("cannot set up the admin key", "err", err)
		return exitStore
	}
	if resetAdmin {
		return exitOK
	}

	jwts, registry, err := trustRegistry(cfg, reg, log)
	if err != nil {
		log.Error("cannot load the trust sources", "err", err)
		return exitConfig
	}
	if registry != nil {
		defer registry.Close()
	}
	verifier, err := verify.New(store, minter, &verify.Options{
		CacheTTL:        cfg.Verify.CacheTTL,
		Registerer:      reg,
		Logger:          log,
		JWT:             jwts,
		JWTCacheEntries: cfg.Cache.JWTEntries,
		Policy:          initialPolicy,
	})
	if err != nil {
		log.Error("cannot create the verifier", "err", err)
		return exitFailure
	}
	policy.setVerifier(verifier)
	var requestTokenKey []byte
	var clusterView httpapi.Cluster
	if repl != nil {
		repl.setVerifier(verifier)
		requestTokenKey = repl.secrets.RequestTokenKey
		clusterView = repl
	}
	var ready func() error
	if repl != nil {
		ready = repl.node.Ready
	}
	var policyAdmin httpapi.PolicyAdmin
	if policy.path != "" {
		policyAdmin = policy
	}
	// The NATS auth callout, when enabled: its secrets are read now; it
	// connects in the background once verifyd serves.
	var callout *natscallout.Service
	if cfg.NATSCallout.Enabled {
		if callout, err = natscallout.New(cfg.NATSCallout, &natscallout.Options{Verifier: verifier, Registerer: reg, Logger: log}); err != nil {
			log.Error("cannot set up the NATS auth callout", "err", err)
			return exitConfig
		}
	}
	// The brokers' HTTP contracts, each enabled by its config section.
	var adapters []httpapi.Adapter
	if cfg.RabbitMQ.Enabled {
		rmq, err := rabbitmq.New(cfg.RabbitMQ, verifier, &rabbitmq.Options{Registerer: reg, Logger: log})
		if err != nil {
			log.Error("cannot set up the RabbitMQ adapter", "err", err)
			return exitConfig
		}
		adapters = append(adapters, httpapi.Adapter{Prefix: rabbitmq.Prefix, Route: rabbitmq.Route, Handler: rmq.Handler})
	}
	if cfg.MQTT.Enabled {
		m, err := mqtt.New(cfg.MQTT, mqtt.Options{Verifier: verifier, Registerer: reg, Logger: log})
		if err != nil {
			log.Error("cannot set up the MQTT adapters", "err", err)
			return exitConfig
		}
		adapters = append(adapters, m.Adapters()...)
	}
	manager, err := verify.NewManagerWith(store, minter, adminDigest, &verify.ManagerOptions{Requests: cfg.Requests, AuditSink: auditSink, Logger: log, RequestTokenKey: requestTokenKey})
	if err != nil {
		log.Error("the requests section is invalid; verifyd does not start", "err", err)
		return exitConfig
	}
	manager.SetPATMaxDuration(cfg.PATs.MaxDuration)
	policy.auditor = manager
	srv, err := httpapi.New(httpapi.Options{
		Verifier:       verifier,
		Manager:        manager,
		Trust:          registry,
		Policy:         policyAdmin,
		Gatherer:       reg,
		Registerer:     reg,
		MaxBodyBytes:   cfg.HTTP.MaxBodyBytes,
		ReadTimeout:    cfg.HTTP.ReadTimeout,
		WriteTimeout:   cfg.HTTP.WriteTimeout,
		IdleTimeout:    cfg.HTTP.IdleTimeout,
		MaxConnections: cfg.HTTP.MaxConnections,
		ForwardAuth:    cfg.ForwardAuth,
		Adapters:       adapters,
		Introspection:  introspectionClients,
		CORS:           cfg.HTTP.CORS,
		Throttle:       limiter,
		ClientNames:    cfg.HTTP.TLS.ClientNames,
		Cluster:        clusterView,
		Ready:          ready,
		Logger:         log,
	})
	if err != nil {
		log.Error("cannot create the HTTP server", "err", err)
		return exitFailure
	}
	sock, err := socketServer(cfg, verifier, limiter, reg, log)
	if err != nil {
		log.Error("cannot listen on the socket", "socket", cfg.Socket, "err", err)
		return exitListen
	}
	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		log.Error("cannot listen", "addr", cfg.HTTP.Addr, "err", err)
		if sock != nil {
			sock.Shutdown(context.Background())
		}
		return exitListen
	}
	if tlsw != nil {
		ln = tlsw.certs.Listener(ln)
	}
	abs, _ := filepath.Abs(cfg.DataDir)
	socketAddr := "off"
	if sock != nil {
		socketAddr = sock.Addr()
	}
	log.Info("verifyd serving", "http_addr", ln.Addr().String(), "tls", tlsw != nil, "socket", socketAddr, "data_dir", abs)
	if callout != nil {
		callout.Start()
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Serve(ln) })
	if sock != nil {
		g.Go(sock.Serve)
	}
	g.Go(func() error { return policy.watch(gctx, hup, cfg.PolicyCheckInterval) })
	if audit != nil {
		// SIGHUP also reopens the audit file: a second channel, since a
		// signal is delivered to every channel registered for it.
		auditHup := make(chan os.Signal, 1)
		signal.Notify(auditHup, syscall.SIGHUP)
		defer signal.Stop(auditHup)
		g.Go(func() error { return audit.watch(gctx, auditHup) })
	}
	if tlsw != nil {
		g.Go(func() error { return tlsw.watch(gctx) })
	}
	g.Go(func() error {
		<-gctx.Done()
		log.Info("shutting down: draining in-flight requests", "timeout", cfg.HTTP.ShutdownTimeout)
		sctx, cancel := context.WithTimeout(context.Background(), cfg.HTTP.ShutdownTimeout)
		defer cancel()
		var errs []error
		if callout != nil {
			errs = append(errs, callout.Close(sctx))
		}
		if sock != nil {
			errs = append(errs, sock.Shutdown(sctx))
		}
		errs = append(errs, srv.Shutdown(sctx))
		return errors.Join(errs...)
	})
	if err := g.Wait(); err != nil {
		log.Error("serving failed", "err", err)
		return exitFailure
	}
	log.Info("stopped cleanly")
	return exitOK
}

// logPolicyError reports why the policy file cannot be loaded: every
// problem of an invalid file, one per line.
func logPolicyError(log *slog.Logger, path string, err error) {
	var pe *rbac.PolicyError
	if !errors.As(err, &pe) {
		log.Error("cannot load the policy", "file", path, "err", err)
		return
	}
	for _, p := range pe.Problems {
		log.Error("policy problem", "file", path, "problem", p.String())
	}
	n := fmt.Sprintf("%d problems", len(pe.Problems))
	if len(pe.Problems) == 1 {
		n = "1 problem"
	}
	log.Error("cannot load the policy: the file has "+n+" (listed above); verifyd does not start", "file", path)
}

// socketServer creates the Unix socket server, or returns nil when the
// socket is switched off.
func socketServer(cfg config.Config, v *verify.Verifier, limiter *throttle.Limiter, reg prometheus.Registerer, log *slog.Logger) (*ipc.Server, error) {
	if cfg.Socket == "" || cfg.Socket == "off" {
		return nil, nil
	}
	mode, err := cfg.IPC.FileMode()
	if err != nil {
		return nil, err
	}
	return ipc.Listen(cfg.Socket, ipc.Options{
		Verifier:       v,
		Mode:           mode,
		Group:          cfg.IPC.Group,
		AllowUIDs:      cfg.IPC.AllowUIDs,
		AllowGIDs:      cfg.IPC.AllowGIDs,
		MaxFrameBytes:  cfg.IPC.MaxFrameBytes,
		MaxTokenBytes:  cfg.Trust.MaxTokenBytes,
		MaxInFlight:    cfg.IPC.MaxInFlight,
		MaxConnections: cfg.IPC.MaxConnections,
		IdleTimeout:    cfg.IPC.IdleTimeout,
		ReadTimeout:    cfg.IPC.ReadTimeout,
		WriteTimeout:   cfg.IPC.WriteTimeout,
		Registerer:     reg,
		Logger:         log,
		Throttle:       limiter,
	})
}

// trustRegistry loads the trust sources and returns the JWT front end over
// them, or nils when no source is configured.
func trustRegistry(cfg config.Config, reg prometheus.Registerer, log *slog.Logger) (*jwt.Verifier, *trust.Registry, error) {
	if len(cfg.Trust.Sources) == 0 {
		log.Info("no trust sources configured: JWTs are refused as untrusted_key")
		return nil, nil, nil
	}
	registry, err := trust.New(cfg.Trust, &trust.Options{Registerer: reg, Logger: log, Getenv: os.Getenv})
	if err != nil {
		return nil, nil, err
	}
	front, err := jwt.NewVerifier(registry, &jwt.Options{MaxTokenBytes: cfg.Trust.MaxTokenBytes})
	if err != nil {
		registry.Close()
		return nil, nil, err
	}
	return front, registry, nil
}

// adminKeyDigest returns the digest of the admin key: that of
// VERIFYD_ADMIN_KEY when set, otherwise the stored one, generating and
// printing a key on first start (or when reset is set).
func adminKeyDigest(ctx context.Context, cfg config.Config, store *keystore.Store, minter *credential.Minter, reset bool, stdout io.Writer) (keystore.Digest, error) {
	if cfg.AdminKey != "" && !reset {
		return keystore.Sum(cfg.AdminKey), nil
	}
	var generated string
	newKey := func() ([]byte, error) {
		k, err := minter.NewAPIKey()
		if err != nil {
			return nil, err
		}
		generated = k
		d := keystore.Sum(k)
		return d[:], nil
	}
	var stored []byte
	var err error
	if reset {
		if stored, err = newKey(); err == nil {
			err = store.SetMeta(ctx, metaAdminDigest, stored)
		}
	} else {
		stored, err = store.Meta(ctx, metaAdminDigest, newKey)
	}
	if err != nil {
		return keystore.Digest{}, err
	}
	if len(stored) != len(keystore.Digest{}) {
		return keystore.Digest{}, fmt.Errorf("stored admin key digest has %d bytes, want 32", len(stored))
	}
	// In replicated mode another node may have stored its key first.
	if generated != "" && keystore.Sum(generated) == keystore.Digest(stored) {
		fmt.Fprintf(stdout, "\nverifyd: generated an admin key. It is shown only this once; only its hash is stored.\n"+
			"Use it in the X-Admin-Key header, or export it for verifyctl:\n\n"+
			"    export VERIFYD_ADMIN_KEY=%s\n\n"+
			"Lost it? Stop verifyd and run: verifyd --reset-admin-key\n\n", generated)
		if f, ok := stdout.(*os.File); ok {
			_ = f.Sync()
		}
	}
	return keystore.Digest(stored), nil
}
