package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binDir holds the verifyd and verifyctl binaries built by TestMain.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "verifyd-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	args := []string{"build", "-o", dir + "/"}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "github.com/verifyd/verifyd/cmd/verifyd", "github.com/verifyd/verifyd/cmd/verifyctl")...)
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
	t      *testing.T
	cmd    *exec.Cmd
	addr   string
	socket string // the Unix socket path
	mu     sync.Mutex
	stdout bytes.Buffer
	stderr bytes.Buffer
	exited chan struct{}
}

// startDaemon runs verifyd on dataDir and a free loopback port and waits
// until it answers /healthz.
func startDaemon(t *testing.T, dataDir string, env ...string) *daemon {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	// Socket paths are limited to 108 bytes: t.TempDir() can be too long.
	sockDir, err := os.MkdirTemp("", "vd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	d := &daemon{t: t, addr: addr, socket: filepath.Join(sockDir, "verifyd.sock"), exited: make(chan struct{})}
	d.cmd = exec.Command(filepath.Join(binDir, "verifyd"), "--data-dir", dataDir, "--http-addr", addr, "--socket", d.socket)
	d.cmd.Env = append(cleanEnv(), env...)
	outPipe, _ := d.cmd.StdoutPipe()
	errPipe, _ := d.cmd.StderrPipe()
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, p := range []struct {
		r   io.Reader
		buf *bytes.Buffer
	}{{outPipe, &d.stdout}, {errPipe, &d.stderr}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(p.r)
			for sc.Scan() {
				d.mu.Lock()
				p.buf.WriteString(sc.Text() + "\n")
				d.mu.Unlock()
			}
		}()
	}
	go func() { wg.Wait(); d.cmd.Wait(); close(d.exited) }()
	t.Cleanup(func() { d.kill() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
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

func (d *daemon) output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return "stdout:\n" + d.stdout.String() + "stderr:\n" + d.stderr.String()
}

func (d *daemon) kill() {
	d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.exited
}

// terminate sends SIGTERM and returns the exit status.
func (d *daemon) terminate() int {
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		d.t.Fatalf("verifyd did not stop within 30s of SIGTERM:\n%s", d.output())
	}
	return d.cmd.ProcessState.ExitCode()
}

var adminKeyLine = regexp.MustCompile(`VERIFYD_ADMIN_KEY=(\S+)`)

// adminKey returns the admin key verifyd printed on first start.
func (d *daemon) adminKey() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := adminKeyLine.FindStringSubmatch(d.stdout.String())
	if m == nil {
		d.t.Fatalf("verifyd printed no admin key:\n%s", d.stdout.String())
	}
	return m[1]
}

// ctl runs verifyctl against d and returns its stdout and exit status.
func (d *daemon) ctl(adminKey string, args ...string) (string, int) {
	d.t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "verifyctl"), append([]string{"--addr", d.addr}, args...)...)
	cmd.Env = append(cleanEnv(), "VERIFYD_ADMIN_KEY="+adminKey)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		d.t.Fatalf("verifyctl %v: %v", args, err)
	}
	if strings.Contains(stdout.String()+stderr.String(), adminKey) {
		d.t.Fatalf("verifyctl %v printed the admin key", args)
	}
	return stdout.String(), cmd.ProcessState.ExitCode()
}

// ctlJSON runs verifyctl with -o json, requires success and decodes stdout.
func (d *daemon) ctlJSON(adminKey string, v any, args ...string) {
	d.t.Helper()
	out, code := d.ctl(adminKey, append(args, "-o", "json")...)
	if code != 0 {
		d.t.Fatalf("verifyctl %v: exit %d: %s", args, code, out)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		d.t.Fatalf("verifyctl %v: bad JSON %q: %v", args, out, err)
	}
}

type verifyAnswer struct {
	Status     int
	Allow      bool   `json:"allow"`
	Reason     string `json:"status"`
	Subject    string `json:"subject"`
	Kind       string `json:"kind"`
	KeyID      string `json:"key_id"`
	Code       string `json:"code"`
	CacheTTLms int64  `json:"cache_ttl_ms"`
}

// verifyHTTP calls POST /v1/verify directly.
func (d *daemon) verifyHTTP(token, scope string) verifyAnswer {
	d.t.Helper()
	body, _ := json.Marshal(map[string]string{"token": token, "scope": scope})
	resp, err := http.Post("http://"+d.addr+"/v1/verify", "application/json", bytes.NewReader(body))
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	var a verifyAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		d.t.Fatalf("verify answer: %v", err)
	}
	a.Status = resp.StatusCode
	return a
}

type keyAnswer struct {
	ID     string `json:"id"`
	Secret string `json:"secret"`
	Status string `json:"status"`
}

func TestEndToEnd(t *testing.T) {
	dataDir := t.TempDir()
	d := startDaemon(t, dataDir)
	admin := d.adminKey()

	// Keys are created with verifyctl, verified over HTTP.
	var alice, bob, carol keyAnswer
	d.ctlJSON(admin, &alice, "keys", "create", "--subject", "alice", "--scope", "tool:data:*", "--role", "publisher")
	d.ctlJSON(admin, &bob, "keys", "create", "--subject", "bob", "--kind", "agent", "--scope", "mailbox:bob:*")
	d.ctlJSON(admin, &carol, "keys", "create", "--subject", "carol", "--kind", "pat", "--scope", "*")
	for _, k := range []keyAnswer{alice, bob, carol} {
		if k.ID == "" || k.Secret == "" {
			t.Fatalf("create answered %+v", k)
		}
	}
	if a := d.verifyHTTP(alice.Secret, "tool:data:read"); a.Status != 200 || !a.Allow || a.Subject != "alice" || a.Kind != "api_key" || a.KeyID != alice.ID || a.CacheTTLms <= 0 {
		t.Errorf("allowed scope: %+v", a)
	}
	if a := d.verifyHTTP(alice.Secret, "tool:database:read"); a.Status != 403 || a.Allow || a.Reason != "forbidden" || a.Code != "FORBIDDEN" {
		t.Errorf("forbidden scope: %+v", a)
	}
	if a := d.verifyHTTP(alice.Secret, ""); a.Status != 200 || !a.Allow {
		t.Errorf("authenticate only: %+v", a)
	}
	if a := d.verifyHTTP("vk_"+strings.Repeat("A", 40), ""); a.Status != 401 || a.Reason != "malformed" {
		t.Errorf("forged key: %+v", a)
	}
	if a := d.verifyHTTP(strings.Repeat("x", 43), ""); a.Status != 401 || a.Reason != "unknown" {
		t.Errorf("unknown key: %+v", a)
	}
	if a := d.verifyHTTP(bob.Secret, "mailbox:alice:read"); a.Status != 403 {
		t.Errorf("agent reading another mailbox: %+v", a)
	}
	if a := d.verifyHTTP(carol.Secret, "any:thing"); a.Status != 200 || a.Kind != "pat" {
		t.Errorf("PAT with the super-scope: %+v", a)
	}
	if _, code := d.ctl(admin, "verify", alice.Secret, "--scope", "tool:data:write"); code != 0 {
		t.Errorf("verifyctl verify of an allowed scope exited %d", code)
	}
	if _, code := d.ctl(admin, "verify", alice.Secret, "--scope", "admin:all"); code == 0 {
		t.Error("verifyctl verify of a forbidden scope exited 0")
	}

	// Rotation: bob without grace (the old secret stops at once), carol
	// with a grace (both work).
	var bob2, carol2 keyAnswer
	d.ctlJSON(admin, &bob2, "keys", "rotate", bob.ID)
	d.ctlJSON(admin, &carol2, "keys", "rotate", carol.ID, "--grace", "1h")
	if bob2.ID != bob.ID || bob2.Secret == bob.Secret {
		t.Fatalf("rotate answered %+v", bob2)
	}
	if a := d.verifyHTTP(bob.Secret, ""); a.Status != 401 {
		t.Errorf("old secret after rotation without grace: %+v", a)
	}
	for _, s := range []string{bob2.Secret, carol.Secret, carol2.Secret} {
		if a := d.verifyHTTP(s, ""); a.Status != 200 {
			t.Errorf("secret after rotation: %+v", a)
		}
	}

	// Revoke, and kill -9 right after the revocation was acknowledged.
	var revoked keyAnswer
	d.ctlJSON(admin, &revoked, "keys", "revoke", alice.ID)
	if revoked.Status != "revoked" {
		t.Errorf("revoke answered %+v", revoked)
	}
	if a := d.verifyHTTP(alice.Secret, ""); a.Status != 401 || a.Reason != "revoked" {
		t.Errorf("revoked key before the crash: %+v", a)
	}
	d.kill()

	d = startDaemon(t, dataDir)
	if strings.Contains(d.output(), "VERIFYD_ADMIN_KEY=") {
		t.Error("verifyd printed an admin key again on restart")
	}
	if a := d.verifyHTTP(alice.Secret, "tool:data:read"); a.Status != 401 || a.Reason != "revoked" {
		t.Errorf("revoked key after kill -9: %+v", a)
	}
	if a := d.verifyHTTP(bob.Secret, ""); a.Status != 401 {
		t.Errorf("rotated-out secret after kill -9: %+v", a)
	}
	for _, s := range []string{bob2.Secret, carol.Secret, carol2.Secret} {
		if a := d.verifyHTTP(s, ""); a.Status != 200 {
			t.Errorf("secret after kill -9: %+v", a)
		}
	}
	var list struct {
		Keys []keyAnswer `json:"keys"`
	}
	d.ctlJSON(admin, &list, "keys", "list")
	if len(list.Keys) != 3 {
		t.Errorf("list after restart: %+v", list)
	}
	for _, k := range list.Keys {
		if k.Secret != "" {
			t.Errorf("list shows a secret for %s", k.ID)
		}
	}

	// Admin endpoints refuse a wrong admin key without saying more.
	if _, code := d.ctl("vk_wrong-admin-key-000000000000000000000000000", "keys", "list"); code == 0 {
		t.Error("keys list with a wrong admin key succeeded")
	}

	if code := d.terminate(); code != 0 {
		t.Errorf("verifyd exited %d after SIGTERM:\n%s", code, d.output())
	}
	if !strings.Contains(d.output(), "stopped cleanly") {
		t.Errorf("no clean stop logged:\n%s", d.output())
	}
}

// TestRevocationSurvivesKillLoop repeats "revoke, acknowledge, kill -9,
// restart" and checks every acknowledged revocation after each restart.
func TestRevocationSurvivesKillLoop(t *testing.T) {
	dataDir := t.TempDir()
	d := startDaemon(t, dataDir)
	admin := d.adminKey()
	const n = 4
	keys := make([]keyAnswer, n)
	for i := range keys {
		d.ctlJSON(admin, &keys[i], "keys", "create", "--subject", fmt.Sprintf("agent-%d", i), "--kind", "agent")
	}
	for round := range n {
		var k keyAnswer
		d.ctlJSON(admin, &k, "keys", "revoke", keys[round].ID)
		d.kill()
		d = startDaemon(t, dataDir)
		for i, key := range keys {
			a := d.verifyHTTP(key.Secret, "")
			if want := i > round; a.Allow != want {
				t.Fatalf("round %d: key %d allow=%v, want %v (%+v)", round, i, a.Allow, want, a)
			}
		}
	}
}

// TestAdminKeyFromEnvironment checks that VERIFYD_ADMIN_KEY replaces the
// generated key and is never printed.
func TestAdminKeyFromEnvironment(t *testing.T) {
	const key = "operator-chosen-admin-key-0001"
	d := startDaemon(t, t.TempDir(), "VERIFYD_ADMIN_KEY="+key)
	if strings.Contains(d.output(), "VERIFYD_ADMIN_KEY=") || strings.Contains(d.output(), key) {
		t.Errorf("verifyd printed an admin key although one was configured:\n%s", d.output())
	}
	if _, code := d.ctl(key, "keys", "list"); code != 0 {
		t.Error("the configured admin key was refused")
	}
}
