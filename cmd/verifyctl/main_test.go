package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/verifyd/verifyd/internal/adminclient"
	"github.com/verifyd/verifyd/internal/adminclient/admintest"
)

// binary is the verifyctl executable built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "verifyctl-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "verifyctl")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building verifyctl:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const testAdminKey = "adm_cli-test-key-9f8e7d6c5b4a"

// daemon is a test daemon plus a client with the admin key, for setting up
// state and checking what the CLI did.
type daemon struct {
	*admintest.Server
	client *adminclient.Client
}

func newDaemon(t *testing.T) *daemon {
	t.Helper()
	return newDaemonWith(t, nil)
}

// newDaemonWith is newDaemon with the admintest options opts.
func newDaemonWith(t *testing.T, opts *admintest.Options) *daemon {
	t.Helper()
	srv := admintest.NewServerWith(testAdminKey, opts)
	t.Cleanup(srv.Close)
	c, err := adminclient.New(srv.URL, testAdminKey, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return &daemon{Server: srv, client: c}
}

// createKey creates a key through the client and returns it with its secret.
func (d *daemon) createKey(t *testing.T, spec adminclient.KeySpec) adminclient.Key {
	t.Helper()
	k, err := d.client.CreateKey(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// result is what one run of the binary produced.
type result struct {
	code           int
	stdout, stderr string
}

// invocation describes one run of the binary.
type invocation struct {
	env   []string // extra KEY=value entries; VERIFYD_* from the test's own environment are removed
	stdin string
	args  []string
}

// runBinary runs the binary and checks that the admin key appears in none of its
// output, whatever the command.
func runBinary(t *testing.T, inv invocation) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, inv.args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VERIFYD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, inv.env...)
	cmd.Stdin = strings.NewReader(inv.stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running verifyctl %q: %v", inv.args, err)
	}
	if strings.Contains(r.stdout+r.stderr, testAdminKey) {
		t.Errorf("verifyctl %q printed the admin key:\nstdout: %s\nstderr: %s", inv.args, r.stdout, r.stderr)
	}
	return r
}

// admin runs the binary against d with the admin key in the environment.
func (d *daemon) admin(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return runBinary(t, invocation{
		env:   []string{"VERIFYD_ADDR=" + d.URL, "VERIFYD_ADMIN_KEY=" + testAdminKey},
		stdin: stdin,
		args:  args,
	})
}

// anon runs the binary against d without an admin key.
func (d *daemon) anon(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return runBinary(t, invocation{env: []string{"VERIFYD_ADDR=" + d.URL}, stdin: stdin, args: args})
}

// want fails the test unless r exited with code.
func (r result) want(t *testing.T, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit status %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
}
