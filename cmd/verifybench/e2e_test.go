package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/verifyd/verifyd/internal/adminclient"
	"github.com/verifyd/verifyd/internal/loadgen"
)

// binDir holds the verifyd and verifybench binaries built by TestMain.
var binDir string

// testAdminKey is the admin key of the daemons under test.
const testAdminKey = "verifybench-test-admin-key-0123456789"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "verifybench-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	args := []string{"build", "-o", dir + "/"}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "github.com/verifyd/verifyd/cmd/verifyd", "github.com/verifyd/verifyd/cmd/verifybench")...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the binaries:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// daemon is a verifyd process under test.
type daemon struct {
	addr   string // HTTP host:port
	socket string
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    bytes.Buffer
	exited chan struct{}
}

// lockedWriter lets the daemon's stdout and stderr share one buffer.
type lockedWriter struct{ d *daemon }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	return w.d.out.Write(p)
}

func (d *daemon) output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.out.String()
}

// freeAddr returns a loopback address with a port nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startDaemon runs verifyd with the configuration file cfg (or none), the
// admin key testAdminKey, a store in a temporary directory, a free
// loopback port and a short socket path, and waits until it answers
// /healthz.
func startDaemon(t *testing.T, cfg string) *daemon {
	t.Helper()
	sockDir, err := os.MkdirTemp("", "vb") // socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	d := &daemon{addr: freeAddr(t), socket: filepath.Join(sockDir, "verifyd.sock"), exited: make(chan struct{})}
	args := []string{"--data-dir", t.TempDir(), "--http-addr", d.addr, "--socket", d.socket}
	if cfg != "" {
		args = append(args, "--config", cfg)
	}
	d.cmd = exec.Command(filepath.Join(binDir, "verifyd"), args...)
	d.cmd.Env = append(cleanEnv(), "VERIFYD_ADMIN_KEY="+testAdminKey)
	d.cmd.Stdout, d.cmd.Stderr = lockedWriter{d}, lockedWriter{d}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.cmd.Wait(); close(d.exited) }()
	t.Cleanup(func() {
		d.cmd.Process.Signal(syscall.SIGKILL)
		<-d.exited
	})
	for deadline := time.Now().Add(30 * time.Second); ; {
		if resp, err := http.Get("http://" + d.addr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return d
			}
		}
		select {
		case <-d.exited:
			t.Fatalf("verifyd exited during start:\n%s", d.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("verifyd did not become healthy in 30s:\n%s", d.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VERIFYD_") {
			env = append(env, kv)
		}
	}
	return env
}

// bench runs verifybench with the admin key in its environment and
// returns its stdout, stderr and exit status. It fails the test if the
// output holds the admin key or an API key.
func bench(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "verifybench"), args...)
	cmd.Env = append(cleanEnv(), "VERIFYD_ADMIN_KEY="+testAdminKey)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("verifybench %v: %v", args, err)
	}
	all := out.String() + errOut.String()
	if strings.Contains(all, testAdminKey) || strings.Contains(all, "vk_") {
		t.Fatalf("verifybench %v printed a secret:\n%s", args, all)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// TestLoad drives the real daemon, configured with the trust section
// verifybench prints, with the default mix: over the socket with
// pipelining, then over HTTP with pipelining. Every answer must be right,
// every kind must be sent in its exact share, and the keys must be
// revoked at the end.
func TestLoad(t *testing.T) {
	jwks := freeAddr(t)
	snippet, stderr, code := bench(t, "--jwks-listen", jwks, "--print-trust")
	if code != 0 || !strings.Contains(snippet, "jwks_url: http://"+jwks+"/jwks.json") {
		t.Fatalf("--print-trust: exit %d: %s%s", code, snippet, stderr)
	}
	cfg := filepath.Join(t.TempDir(), "verifyd.yaml")
	if err := os.WriteFile(cfg, []byte(snippet), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, cfg)
	admin, err := adminclient.New(d.addr, testAdminKey, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	const keys = 40
	want := map[string]int64{"opaque_hit": 1800, "jwt_hit": 100, "jwt_cold": 20, "unknown": 40, "forged": 20, "forbidden": 20}
	runs := 0
	for _, tc := range []struct {
		name, transport, target string
		args                    []string
	}{
		{"socket", "socket", d.socket, []string{"--socket", d.socket, "--admin-addr", "http://" + d.addr, "--depth", "8", "--server-pid", fmt.Sprint(d.cmd.Process.Pid)}},
		{"http", "http", "http://" + d.addr, []string{"--addr", "http://" + d.addr, "--depth", "4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chart := filepath.Join(t.TempDir(), "latency.svg")
			args := append(tc.args, "--jwks-listen", jwks, "--requests", "2000", "--conns", "3", "--warmup", "300ms",
				"--keys", fmt.Sprint(keys), "--jwt-tokens", "20", "-o", "json", "--chart", chart)
			out, stderr, code := bench(t, args...)
			if code != 0 {
				t.Fatalf("verifybench: exit %d\nstdout:\n%s\nstderr:\n%s\ndaemon:\n%s", code, out, stderr, d.output())
			}
			runs++
			var rep loadgen.Report
			dec := json.NewDecoder(strings.NewReader(out))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&rep); err != nil {
				t.Fatalf("the JSON report does not decode: %v\n%s", err, out)
			}
			checkReport(t, &rep, tc.transport, tc.target, want)
			if s := rep.Setup; s.Keys != keys || s.KeysCreated != keys || s.KeysRevoked != keys || s.Tokens != 20+20 {
				t.Errorf("setup %+v: want %d keys created and revoked, 40 tokens", s, keys)
			}
			checkChart(t, chart, len(want)+1)

			// Every key verifybench created is revoked.
			list, err := admin.ListKeys(t.Context(), "")
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, k := range list {
				if k.Name == "verifybench" {
					n++
					if k.Status != adminclient.KeyRevoked {
						t.Errorf("key %s is %s after the run", k.ID, k.Status)
					}
				}
			}
			if n != keys*runs {
				t.Errorf("%d keys named verifybench, want %d", n, keys*runs)
			}
		})
	}
}

// checkReport checks a report of a run without errors in which each kind
// was sent want[kind] times.
func checkReport(t *testing.T, rep *loadgen.Report, transport, target string, want map[string]int64) {
	t.Helper()
	var total int64
	for _, n := range want {
		total += n
	}
	if rep.Transport != transport || rep.Target != target || rep.Conns != 3 {
		t.Errorf("report names %s %s with %d connections", rep.Transport, rep.Target, rep.Conns)
	}
	if rep.Errors != 0 || len(rep.Failures) != 0 {
		t.Errorf("%d errors: %+v", rep.Errors, rep.Failures)
	}
	if rep.Requests != total || rep.Seconds <= 0 || rep.Throughput <= 0 || rep.StoppedEarly != "" {
		t.Errorf("%d requests in %vs (%v/s), stopped early %q: want %d", rep.Requests, rep.Seconds, rep.Throughput, rep.StoppedEarly, total)
	}
	checkLatency(t, "all", rep.Latency)
	var sum, errs int64
	seen := map[string]bool{}
	for _, k := range rep.Kinds {
		seen[k.Kind] = true
		sum += k.Requests
		errs += k.Errors
		if k.Requests != want[k.Kind] {
			t.Errorf("%s: %d requests, want %d", k.Kind, k.Requests, want[k.Kind])
		}
		checkLatency(t, k.Kind, k.Latency)
		if k.Latency.Max > rep.Latency.Max {
			t.Errorf("%s: max %vµs above the overall max %vµs", k.Kind, k.Latency.Max, rep.Latency.Max)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("kinds %v, want %v", seen, want)
	}
	if sum != rep.Requests || errs != rep.Errors {
		t.Errorf("the kinds add up to %d requests and %d errors; the report says %d and %d", sum, errs, rep.Requests, rep.Errors)
	}
}

func checkLatency(t *testing.T, name string, l loadgen.Latency) {
	t.Helper()
	if !(0 < l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
		t.Errorf("%s: latency percentiles out of order: %+v", name, l)
	}
}

// checkChart checks that path is an SVG document with lines lines.
func checkChart(t *testing.T, path string, lines int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := xml.NewDecoder(f)
	root, polylines := "", 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the chart is not XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if root == "" {
				root = se.Name.Local
			}
			if se.Name.Local == "polyline" {
				polylines++
			}
		}
	}
	if root != "svg" || polylines != lines {
		t.Errorf("chart: root %q with %d lines, want svg with %d", root, polylines, lines)
	}
}

// TestSavedKeys creates keys in a run of its own, then drives the socket
// with them at depth 1: they are not created again, and they stay valid.
func TestSavedKeys(t *testing.T) {
	d := startDaemon(t, "")
	file := filepath.Join(t.TempDir(), "keys")
	_, stderr, code := bench(t, "--socket", d.socket, "--admin-addr", "http://"+d.addr, "--keys", "30", "--save-keys", file)
	if code != 0 {
		t.Fatalf("--save-keys: exit %d: %s", code, stderr)
	}
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("the keys file: %v, %v: want mode 0600", st.Mode(), err)
	}
	out, stderr, code := bench(t, "--socket", d.socket, "--keys-from", file, "--mix", "opaque_hit=8,forbidden=1,forged=1",
		"--requests", "500", "--conns", "3", "--warmup", "0", "-o", "json", "--quiet")
	if code != 0 {
		t.Fatalf("--keys-from: exit %d: %s\n%s", code, out, stderr)
	}
	var rep loadgen.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	checkReport(t, &rep, "socket", d.socket, map[string]int64{"opaque_hit": 400, "forbidden": 50, "forged": 50})
	if rep.Setup.Keys != 30 || rep.Setup.KeysCreated != 0 || rep.Setup.KeysRevoked != 0 || rep.WarmupSeconds != 0 {
		t.Errorf("setup %+v, warm-up %vs: want 30 keys loaded, none created or revoked, no warm-up", rep.Setup, rep.WarmupSeconds)
	}
	if stderr != "" {
		t.Errorf("--quiet printed:\n%s", stderr)
	}
	// A second save to the same file is refused: it would mix two sets.
	_, stderr, code = bench(t, "--socket", d.socket, "--admin-addr", "http://"+d.addr, "--keys", "1", "--save-keys", file)
	if code != 1 || !strings.Contains(stderr, "must not exist") {
		t.Errorf("saving over an existing file: exit %d: %s", code, stderr)
	}
}

// TestUsage checks refusals that need no daemon.
func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--socket", "/tmp/x.sock"}, "every run is bounded"},
		{[]string{"--socket", "/tmp/x.sock", "--duration", "2h"}, "duration 2h0m0s is not between 0 and 1h0m0s"},
		{[]string{"--socket", "/tmp/x.sock", "--requests", "10", "--mix", "opaque_hit=1,bogus=2"}, `unknown kind "bogus"`},
		{[]string{"--socket", "/tmp/x.sock", "--requests", "10"}, "--jwks-listen"},
		{[]string{"--requests", "10", "--mix", "unknown=1"}, "exactly one target"},
		{[]string{"--jwks-listen", "10.1.2.3:80", "--print-trust"}, "loopback"},
		{[]string{"--socket", "/tmp/x.sock", "--requests", "10", "-o", "yaml"}, "want table or json"},
	} {
		_, stderr, code := bench(t, tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("verifybench %v: exit %d, %q; want exit %d saying %q", tc.args, code, stderr, exitUsage, tc.want)
		}
	}
}
