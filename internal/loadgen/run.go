package loadgen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/verifyd/verifyd/internal/adminclient"
	"github.com/verifyd/verifyd/ipc"
	"github.com/verifyd/verifyd/verify"
)

// Run bounds that are not options.
const (
	// trustWait bounds the wait for the daemon to trust the run's key.
	trustWait = 30 * time.Second
	// cleanupTimeout bounds the revocation of the created keys.
	cleanupTimeout = 10 * time.Minute
	// maxForged bounds the forged keys derived from the created ones.
	maxForged = 4096
	// adminTimeout bounds one admin call.
	adminTimeout = 30 * time.Second
)

// conn is one connection of a run, to the socket or over HTTP.
type conn interface {
	// run sends src's requests with up to depth in flight and checks
	// every answer, until src has none left and every answer is in.
	run(w *worker, src source, depth int) error
	close() error
}

// run is the state of one Run.
type run struct {
	opts    Options
	log     *slog.Logger
	rep     *Report
	admin   *adminclient.Client
	created []key // keys this run created, to revoke at the end
	wl      workload
	conns   []conn
}

// Run drives a running daemon as opts describe and returns the report:
// it creates (or loads) the keys and mints the tokens the mix needs,
// verifies each of them once, warms up, measures, and revokes the keys it
// created. An error without a report means the run could not be set up
// or every connection failed; a report with an error means the keys could
// not all be revoked. Wrong answers are counted in the report, not
// returned as errors. When ctx ends during the warm-up or the
// measurement, the run stops and reports what it measured
// (Report.StoppedEarly says so).
func Run(ctx context.Context, opts Options) (*Report, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	r := &run{opts: opts, log: opts.Logger, rep: newReport(&opts)}
	r.wl.scope, r.wl.forbiddenScope = opts.Scope, opts.ForbiddenScope
	// Ends what the run started in the background (the key set's server).
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	err := r.do(runCtx)
	for _, c := range r.conns {
		c.close()
	}
	cerr := r.cleanup(ctx)
	if err != nil {
		return nil, errors.Join(err, cerr)
	}
	return r.rep, cerr
}

// do runs everything but the cleanup.
func (r *run) do(ctx context.Context) error {
	o := &r.opts
	if err := r.setupKeys(ctx); err != nil || o.setupOnly() {
		return err
	}
	sched := o.Mix.schedule()
	var s *signer
	if o.Mix.needsJWT() {
		var err error
		if s, err = r.setupTokens(ctx, sched); err != nil {
			return err
		}
	}
	if err := r.dial(ctx); err != nil {
		return err
	}
	if s != nil {
		start := time.Now()
		if err := r.waitTrust(ctx, s); err != nil {
			return err
		}
		r.rep.Setup.TrustSeconds = since(start)
	}
	if o.ServerPID > 0 {
		if _, err := processCPU(o.ServerPID); err != nil {
			return err
		}
	}
	if err := r.prime(ctx); err != nil {
		return err
	}
	src := &scheduleSource{wl: &r.wl, sched: sched, limit: o.Requests}
	return r.measure(ctx, src)
}

// setupKeys creates, loads or saves the keys the mix needs.
func (r *run) setupKeys(ctx context.Context) error {
	o := &r.opts
	if !o.Mix.needsKeys() && !o.setupOnly() {
		return nil
	}
	if o.KeysFrom != "" {
		keys, err := loadKeys(o.KeysFrom)
		if err != nil {
			return err
		}
		r.wl.keys = keys
		r.rep.Setup.Keys = len(keys)
		r.log.Info("verifybench: keys loaded", "keys", len(keys), "file", o.KeysFrom)
	} else {
		if o.AdminKey == "" {
			return errors.New("loadgen: creating keys needs the daemon's admin key: set VERIFYD_ADMIN_KEY (or use --keys-from)")
		}
		var err error
		if r.admin, err = adminclient.New(o.AdminAddr, o.AdminKey, adminTimeout); err != nil {
			return fmt.Errorf("loadgen: admin address: %w", err)
		}
		r.log.Info("verifybench: creating keys", "keys", o.Keys, "at_once", o.SetupConns, "admin", r.admin.BaseURL())
		start := time.Now()
		r.created, err = createKeys(ctx, r.admin, o.Keys, o.SetupConns)
		if err != nil {
			return err
		}
		r.wl.keys = r.created
		r.rep.Setup.Keys, r.rep.Setup.KeysCreated, r.rep.Setup.KeysSeconds = len(r.created), len(r.created), since(start)
		r.log.Info("verifybench: keys created", "keys", len(r.created), "seconds", round3(r.rep.Setup.KeysSeconds))
		if o.SaveKeys != "" {
			if err := saveKeys(o.SaveKeys, r.created); err != nil {
				return err
			}
			r.log.Info("verifybench: keys saved; they stay valid", "file", o.SaveKeys)
		}
	}
	for i := 0; i < len(r.wl.keys) && i < maxForged; i++ {
		r.wl.forged = append(r.wl.forged, forge(r.wl.keys[i].secret))
	}
	return nil
}

// setupTokens serves the run's key set and mints the tokens.
func (r *run) setupTokens(ctx context.Context, sched []Kind) (*signer, error) {
	o := &r.opts
	s, err := newSigner()
	if err != nil {
		return nil, err
	}
	if err := s.serveJWKS(ctx, o.JWKSListen); err != nil {
		return nil, err
	}
	cold := o.coldTokens(sched)
	start := time.Now()
	r.log.Info("verifybench: minting ES256 tokens", "hit", o.JWTTokens, "cold", cold)
	if r.wl.hit, err = s.mintMany(ctx, o.JWTTokens, "hit", func(i int) string { return tokenSubject + strconv.Itoa(i) }); err != nil {
		return nil, err
	}
	r.wl.hitSubjects = make([]string, o.JWTTokens)
	for i := range r.wl.hitSubjects {
		r.wl.hitSubjects[i] = tokenSubject + strconv.Itoa(i)
	}
	if r.wl.cold, err = s.mintMany(ctx, cold, "cold", func(int) string { return coldSubject }); err != nil {
		return nil, err
	}
	r.rep.Setup.Tokens, r.rep.Setup.MintSeconds = o.JWTTokens+cold, since(start)
	return s, nil
}

// coldTokens returns the number of JWTCold tokens to mint.
func (o *Options) coldTokens(sched []Kind) int {
	switch {
	case o.Mix[JWTCold] == 0:
		return 0
	case o.ColdTokens > 0:
		return o.ColdTokens
	case o.Requests > 0:
		return int(countIn(sched, JWTCold, o.Requests))
	}
	share := float64(o.Mix[JWTCold]) / float64(o.Mix.total())
	perSecond := min(coldTokensPerSecond, share*assumedRate)
	return int(min(math.Ceil(perSecond*o.Duration.Seconds()), maxDefaultColdTokens))
}

// dial opens the connections.
func (r *run) dial(ctx context.Context) error {
	o := &r.opts
	r.conns = make([]conn, 0, o.Conns)
	for range o.Conns {
		var c conn
		if o.Socket != "" {
			sc, err := dialSocket(ctx, o.Socket, o.Timeout)
			if err != nil {
				return err
			}
			if uint64(o.Depth) > uint64(sc.hello.MaxInFlight) {
				sc.close()
				return fmt.Errorf("loadgen: depth %d is more than the %d requests the daemon lets a connection have in flight (ipc.max_in_flight)", o.Depth, sc.hello.MaxInFlight)
			}
			c = sc
		} else {
			u, _ := url.Parse(o.Addr)
			hc, err := dialHTTP(ctx, u.Host, o.Timeout)
			if err != nil {
				return err
			}
			c = hc
		}
		r.conns = append(r.conns, c)
	}
	return nil
}

// waitTrust waits until the daemon verifies a token signed with s's key:
// it fetches the key set on its refresh, or when it sees the unknown kid.
func (r *run) waitTrust(ctx context.Context, s *signer) error {
	verifyOnce, closeFn, err := r.verifier(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	deadline := time.Now().Add(trustWait)
	snippet, _ := TrustSnippet(r.opts.JWKSListen)
	for i := 0; ; i++ {
		tok, err := s.mint("verifybench-probe", "probe", i, time.Now())
		if err != nil {
			return err
		}
		got, err := verifyOnce(ctx, tok)
		switch {
		case err != nil:
			return fmt.Errorf("loadgen: verify a probe token: %w", err)
		case got == verify.OK:
			return nil
		case got != verify.UntrustedKey:
			return fmt.Errorf("loadgen: the daemon refuses the run's tokens (%s): its configuration must hold this trust source:\n%s", got, snippet)
		case time.Now().After(deadline):
			return fmt.Errorf("loadgen: the daemon did not trust the key set served on %s within %v (it answers %s): its configuration must hold this trust source:\n%s", r.opts.JWKSListen, trustWait, got, snippet)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// verifier returns a function that verifies one token for the run's
// scope, through the Go client of the socket or over HTTP.
func (r *run) verifier(ctx context.Context) (func(context.Context, string) (verify.Reason, error), func(), error) {
	o := &r.opts
	if o.Socket != "" {
		c, err := ipc.Dial(ctx, o.Socket, &ipc.ClientOptions{Conns: 1, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return nil, nil, fmt.Errorf("loadgen: %w", err)
		}
		return func(ctx context.Context, tok string) (verify.Reason, error) {
			res, err := c.Verify(ctx, tok, o.Scope)
			return res.Status, err
		}, func() { c.Close() }, nil
	}
	c, err := adminclient.New(o.Addr, "", o.Timeout)
	if err != nil {
		return nil, nil, fmt.Errorf("loadgen: %w", err)
	}
	return func(ctx context.Context, tok string) (verify.Reason, error) {
		res, err := c.Verify(ctx, tok, o.Scope)
		if err != nil {
			return 0, err
		}
		got, ok := verifyStatus[res.Status]
		if !ok {
			return 0, fmt.Errorf("loadgen: the daemon answered status %q", res.Status)
		}
		return got, nil
	}, func() {}, nil
}

// prime verifies every key and every JWTHit token once, so that the
// measured requests of those kinds are cache hits; every answer must be
// ok.
func (r *run) prime(ctx context.Context) error {
	n := len(r.wl.keys) + len(r.wl.hit)
	if n == 0 {
		return nil
	}
	start := time.Now()
	rec := newRecorder()
	src := &primeSource{wl: &r.wl}
	if err := r.drive(ctx, src, rec, 1); err != nil {
		return fmt.Errorf("loadgen: verifying every key and token once: %w", err)
	}
	if errs := rec.errors(); errs > 0 {
		return fmt.Errorf("loadgen: verifying every key and token once: %d of %d answers were wrong (%s); the keys or tokens are not usable", errs, n, describe(rec.failureList()))
	}
	r.rep.Setup.PrimeSeconds = since(start)
	r.log.Info("verifybench: every key and token verified once", "credentials", n, "seconds", round3(r.rep.Setup.PrimeSeconds))
	return nil
}

// describe lists the first failures for an error message.
func describe(fs []Failure) string {
	s := ""
	for i, f := range fs {
		if i == 3 {
			s += "; ..."
			break
		}
		if i > 0 {
			s += "; "
		}
		s += fmt.Sprintf("%d× %s", f.Count, f.What)
	}
	return s
}

// drive runs src over every connection until each is done. It returns an
// error only when every connection failed.
func (r *run) drive(ctx context.Context, src source, rec *recorder, phase uint64) error {
	var wg sync.WaitGroup
	errs := make([]error, len(r.conns))
	stop := context.AfterFunc(ctx, func() {
		for _, c := range r.conns {
			c.close()
		}
	})
	defer stop()
	for i, c := range r.conns {
		w := newWorker(rec, phase<<32|uint64(i))
		wg.Go(func() { errs[i] = c.run(w, src, r.opts.Depth) })
	}
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	for _, err := range errs {
		if err == nil {
			return nil
		}
	}
	return fmt.Errorf("every connection failed: %w", errs[0])
}

// measure warms up, then measures, and fills in the report.
func (r *run) measure(ctx context.Context, src *scheduleSource) error {
	o := &r.opts
	rec := newRecorder()
	var start time.Time
	var startMu sync.Mutex
	var clientCPU, serverCPU time.Duration // at the start of the measurement
	measureCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	driven := make(chan error, 1)
	go func() { driven <- r.drive(measureCtx, src, rec, 2) }()

	// The phases: warm-up, measurement, stop.
	stopped := ""
	phases := make(chan struct{})
	go func() {
		defer close(phases)
		wait := func(d time.Duration) bool {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
				return true
			case <-ctx.Done():
				stopped = "interrupted"
				return false
			case <-measureCtx.Done():
				return false
			}
		}
		if o.Warmup > 0 && !wait(o.Warmup) {
			src.phase.Store(phaseStop)
			return
		}
		startMu.Lock()
		start = time.Now()
		clientCPU = selfCPU()
		if o.ServerPID > 0 {
			serverCPU, _ = processCPU(o.ServerPID)
		}
		startMu.Unlock()
		src.phase.Store(phaseMeasure)
		d := o.Duration
		if d == 0 {
			d = MaxDuration + MaxWarmup // a run of Requests ends by itself
		}
		wait(d)
		src.phase.Store(phaseStop)
	}()
	progressDone := make(chan struct{})
	if o.Progress != nil {
		go r.progress(measureCtx, rec, &start, &startMu, progressDone)
	}
	err := <-driven
	clientCPUEnd := selfCPU()
	var serverCPUEnd time.Duration
	if o.ServerPID > 0 {
		serverCPUEnd, _ = processCPU(o.ServerPID)
	}
	cancel()
	<-phases
	if o.Progress != nil {
		<-progressDone
	}
	if err != nil {
		return fmt.Errorf("loadgen: %w", err)
	}
	startMu.Lock()
	defer startMu.Unlock()
	if start.IsZero() {
		return errors.New("loadgen: interrupted while warming up: nothing was measured")
	}
	end := rec.last
	if end.Before(start) {
		end = time.Now()
	}
	switch {
	case stopped != "":
		r.rep.StoppedEarly = stopped
	case src.exhausted.Load():
		r.rep.StoppedEarly = fmt.Sprintf("the %d pre-minted jwt_cold tokens were all used after %.1fs: give --cold-tokens a larger number", len(r.wl.cold), end.Sub(start).Seconds())
	}
	r.rep.fill(rec, end.Sub(start))
	r.rep.ClientCPUSeconds = (clientCPUEnd - clientCPU).Seconds()
	if o.ServerPID > 0 {
		r.rep.ServerCPUSeconds = (serverCPUEnd - serverCPU).Seconds()
	}
	return nil
}

// progress writes a line to Options.Progress every second until ctx
// ends, then clears it.
func (r *run) progress(ctx context.Context, rec *recorder, start *time.Time, mu *sync.Mutex, done chan<- struct{}) {
	defer close(done)
	p := r.opts.Progress
	defer fmt.Fprint(p, "\r\033[K")
	t := time.NewTicker(time.Second)
	defer t.Stop()
	began := time.Now()
	var lastN int64
	lastT := began
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			mu.Lock()
			s := *start
			mu.Unlock()
			switch {
			case s.IsZero():
				fmt.Fprintf(p, "\r\033[Kwarming up %.0fs", now.Sub(began).Seconds())
				continue
			case now.Sub(s) < 100*time.Millisecond:
				continue // the measurement has just begun
			}
			n, errs, p99 := rec.progress()
			if lastT.Before(s) {
				lastT = s // the first second of the measurement
			}
			rate := float64(n-lastN) / now.Sub(lastT).Seconds()
			lastN, lastT = n, now
			fmt.Fprintf(p, "\r\033[K%5.0fs  %9.0f req/s  %11d answers  %d errors  p99 %s", now.Sub(s).Seconds(), rate, n, errs, fmtDuration(p99))
		}
	}
}

// cleanup revokes the keys this run created, unless they are kept. It
// runs even when ctx has ended, within cleanupTimeout.
func (r *run) cleanup(ctx context.Context) error {
	o := &r.opts
	if len(r.created) == 0 || o.Keep || o.SaveKeys != "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	r.log.Info("verifybench: revoking the created keys", "keys", len(r.created))
	start := time.Now()
	err := revokeKeys(ctx, r.admin, r.created, o.SetupConns)
	r.rep.Setup.CleanupSeconds = since(start)
	if err == nil {
		r.rep.Setup.KeysRevoked = len(r.created)
	}
	return err
}

func since(t time.Time) float64 { return time.Since(t).Seconds() }

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }
