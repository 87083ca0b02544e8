// Command verifybench is verifyd's load generator: it drives a running
// daemon over its Unix socket or HTTP with a mix of verifications, checks
// every answer, and reports throughput and latency percentiles. See
// `verifybench -h` and package internal/loadgen.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/verifyd/verifyd/internal/loadgen"
)

// Exit statuses.
const (
	exitOK     = 0
	exitFailed = 1 // the run failed, or some answers were wrong
	exitUsage  = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	// A second signal stops the process at once, even while it revokes
	// the keys it created.
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verifybench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		o            loadgen.Options
		mix          string
		warmup       time.Duration
		adminKeyFile string
		printTrust   bool
		output       string
		chart        string
		quiet        bool
	)
	fs.StringVar(&o.Socket, "socket", "", "the daemon's Unix socket `path` (or --addr)")
	fs.StringVar(&o.Addr, "addr", "", "the daemon's HTTP `address`, e.g. http://127.0.0.1:8080 (or --socket)")
	fs.StringVar(&o.AdminAddr, "admin-addr", "", "the admin API `address` where keys are created (default: --addr, else http://127.0.0.1:8080)")
	fs.StringVar(&adminKeyFile, "admin-key-file", "", "read the admin key from `file` (default: $VERIFYD_ADMIN_KEY)")
	fs.IntVar(&o.Conns, "conns", loadgen.DefaultConns, "connections")
	fs.IntVar(&o.Depth, "depth", loadgen.DefaultDepth, "requests in flight on each connection (pipelining)")
	fs.DurationVar(&o.Duration, "duration", 0, "measure for this long (at most 1h); or --requests")
	fs.Int64Var(&o.Requests, "requests", 0, "measure this many requests; or --duration")
	fs.DurationVar(&warmup, "warmup", loadgen.DefaultWarmup, "send requests for this long first, not counted (0: none)")
	fs.DurationVar(&o.Timeout, "timeout", loadgen.DefaultTimeout, "give up a connection that waits this long for an answer")
	fs.StringVar(&mix, "mix", loadgen.DefaultMix, "the workload: `kind=weight,...` of opaque_hit, jwt_hit, jwt_cold, unknown, forged, forbidden")
	fs.IntVar(&o.Keys, "keys", loadgen.DefaultKeys, "API keys to create for opaque_hit, forged and forbidden")
	fs.StringVar(&o.KeysFrom, "keys-from", "", "use the keys an earlier run saved in `file` instead of creating them")
	fs.StringVar(&o.SaveKeys, "save-keys", "", "write the created keys, secrets included, to `file` (mode 0600) and keep them; without --duration or --requests, only create them")
	fs.BoolVar(&o.Keep, "keep", false, "do not revoke the created keys at the end")
	fs.IntVar(&o.SetupConns, "setup-conns", loadgen.DefaultSetupConns, "admin calls made at once to create and revoke keys")
	fs.StringVar(&o.JWKSListen, "jwks-listen", "", "serve the run's ES256 key set on this loopback `host:port`; needed for jwt_hit and jwt_cold")
	fs.BoolVar(&printTrust, "print-trust", false, "print the trust section that makes the daemon trust --jwks-listen, and exit")
	fs.IntVar(&o.JWTTokens, "jwt-tokens", loadgen.DefaultJWTTokens, "tokens of the jwt_hit set")
	fs.IntVar(&o.ColdTokens, "cold-tokens", 0, "tokens to mint for jwt_cold, each sent once (default: as many as the run needs)")
	fs.IntVar(&o.ServerPID, "server-pid", 0, "the daemon's process id: also report the CPU time it used (Linux)")
	fs.StringVar(&output, "o", "table", "output `format`: table or json")
	fs.StringVar(&chart, "chart", "", "write the latency distribution as an SVG percentile plot to `file`")
	fs.BoolVar(&quiet, "quiet", false, "no progress and no setup messages")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: verifybench (--socket PATH | --addr URL) (--duration D | --requests N) [flags]\n"+
			"       verifybench --jwks-listen 127.0.0.1:PORT --print-trust\n\n"+
			"The admin key (to create and revoke keys) comes from $VERIFYD_ADMIN_KEY or --admin-key-file.\n"+
			"Exit status: 0 every answer was right, 1 the run failed or some answers were wrong, 2 usage.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "verifybench: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if printTrust {
		s, err := loadgen.TrustSnippet(o.JWKSListen)
		if err != nil {
			fmt.Fprintf(stderr, "verifybench: %v\n", err)
			return exitUsage
		}
		fmt.Fprint(stdout, s)
		return exitOK
	}
	if output != "table" && output != "json" {
		fmt.Fprintf(stderr, "verifybench: -o %q: want table or json\n", output)
		return exitUsage
	}
	var err error
	if o.Mix, err = loadgen.ParseMix(mix); err != nil {
		fmt.Fprintf(stderr, "verifybench: %v\n", err)
		return exitUsage
	}
	o.Warmup = warmup
	if warmup == 0 {
		o.Warmup = -1 // none
	}
	o.AdminKey = getenv("VERIFYD_ADMIN_KEY")
	if adminKeyFile != "" {
		b, err := os.ReadFile(adminKeyFile)
		if err != nil {
			fmt.Fprintf(stderr, "verifybench: admin key: %v\n", err)
			return exitUsage
		}
		o.AdminKey = strings.TrimSpace(string(b))
	}
	level := slog.LevelInfo
	if quiet {
		level = slog.LevelWarn
	} else if isTerminal(stdout) {
		o.Progress = stdout
	}
	o.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	}))
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		fmt.Fprintf(stderr, "verifybench: %v\n", err)
		return exitUsage
	}
	// Keys are created many at once: keep that many connections to the
	// admin API open instead of opening one per call.
	http.DefaultTransport.(*http.Transport).MaxIdleConnsPerHost = loadgen.MaxSetupConns

	rep, runErr := loadgen.Run(ctx, o)
	code := exitOK
	switch {
	case rep == nil:
		code = exitFailed
	case o.SaveKeys != "" && o.Duration == 0 && o.Requests == 0:
		// Only the keys were made: there is nothing to report.
	default:
		code = report(rep, output, chart, stdout, stderr)
	}
	if runErr != nil {
		fmt.Fprintf(stderr, "verifybench: %v\n", runErr)
		code = exitFailed
	}
	return code
}

// report writes rep in the output format, and the chart when asked. It
// returns the exit status: exitFailed when some answers were wrong.
func report(rep *loadgen.Report, output, chart string, stdout, stderr io.Writer) int {
	var err error
	if output == "json" {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteTable(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "verifybench: write the report: %v\n", err)
		return exitFailed
	}
	if chart != "" {
		if err := writeChart(chart, rep); err != nil {
			fmt.Fprintf(stderr, "verifybench: %v\n", err)
			return exitFailed
		}
	}
	if rep.Errors > 0 {
		fmt.Fprintf(stderr, "verifybench: %d of %d answers were wrong or missing\n", rep.Errors, rep.Requests)
		return exitFailed
	}
	return exitOK
}

func writeChart(path string, rep *loadgen.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	if err := rep.WriteChart(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	return nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
