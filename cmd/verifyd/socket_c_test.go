package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cFlags are the flags the C client must compile cleanly with.
var cFlags = []string{"-std=c99", "-Wall", "-Wextra", "-Werror", "-O2"}

// cSanitizers are added when gcc can build and run a program with them.
var cSanitizers = []string{"-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"}

// lookGCC returns the path of gcc. Without gcc the C client tests skip,
// loudly, except under CI=true, where they fail.
func lookGCC(t *testing.T) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err == nil {
		return gcc
	}
	msg := "!!! gcc not found: the C client (ipc/c) is NOT tested; install gcc and libc6-dev (make deps does it as root)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// sanitizersWork reports whether gcc can build and run a program with
// cSanitizers here (some machines lack the runtime libraries, or forbid
// what AddressSanitizer needs).
func sanitizersWork(t *testing.T, gcc, dir string) bool {
	src := filepath.Join(dir, "probe.c")
	bin := filepath.Join(dir, "probe")
	if err := os.WriteFile(src, []byte("int main(void) { return 0; }\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(gcc, append(append([]string{}, cSanitizers...), "-o", bin, src)...).CombinedOutput()
	if err == nil {
		out, err = exec.Command(bin).CombinedOutput()
	}
	if err != nil {
		t.Logf("sanitizers unavailable, building the C test without them: %v\n%s", err, out)
		return false
	}
	return true
}

// buildCTest compiles ipc/c/verifyd.c and ipc/c/verifyd_test.c into dir.
func buildCTest(t *testing.T, gcc, dir string) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	flags := append([]string{}, cFlags...)
	if sanitizersWork(t, gcc, dir) {
		flags = append(flags, cSanitizers...)
	}
	bin := filepath.Join(dir, "verifyd_c_test")
	args := append(flags, "-I", filepath.Join(root, "ipc", "include"),
		filepath.Join(root, "ipc", "c", "verifyd.c"), filepath.Join(root, "ipc", "c", "verifyd_test.c"), "-o", bin)
	if out, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", gcc, strings.Join(args, " "), err, out)
	}
	t.Logf("built with gcc %s", strings.Join(flags, " "))
	return bin
}

// waitSocket waits until something accepts connections on path.
func waitSocket(t *testing.T, d *daemon, path string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("verifyd serves no socket at %s after 15s (%v):\n%s", path, err, d.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCClient builds the C client and its test program with gcc and runs
// it against a real verifyd serving the Unix socket: connect, ping, allowed,
// forbidden, unknown and authenticate-only verifies, pipelined batches
// answered by id, a token beyond max_token_bytes; then the program's own
// hostile-server checks.
func TestCClient(t *testing.T) {
	gcc := lookGCC(t)
	bin := buildCTest(t, gcc, t.TempDir())

	// startDaemon serves the socket at a short path (--socket), since Unix
	// socket paths are limited to 108 bytes.
	d := startDaemon(t, t.TempDir())
	sock := d.socket
	admin := d.adminKey()
	var key keyAnswer
	d.ctlJSON(admin, &key, "keys", "create", "--subject", "c-broker", "--scope", "tool:data:*",
		"--role", "publisher", "--role", "reader")
	waitSocket(t, d, sock)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	// Tokens go through the environment, not argv.
	cmd.Env = append(cleanEnv(),
		"VERIFYD_SOCKET="+sock,
		"VERIFYD_TEST_TOKEN="+key.Secret,
		"VERIFYD_TEST_SCOPE=tool:data:read",
		"VERIFYD_TEST_FORBIDDEN_SCOPE=tool:database:read",
		"VERIFYD_TEST_UNKNOWN_TOKEN="+strings.Repeat("x", 43),
		"VERIFYD_TEST_SUBJECT=c-broker",
		"VERIFYD_TEST_ROLE=reader",
		"ASAN_OPTIONS=detect_leaks=1",
		"UBSAN_OPTIONS=print_stacktrace=1",
	)
	out, err := cmd.CombinedOutput()
	t.Logf("verifyd_c_test:\n%s", out)
	if err != nil {
		t.Fatalf("verifyd_c_test: %v\ndaemon:\n%s", err, d.output())
	}
	if !strings.Contains(string(out), "ok all\n") {
		t.Fatal(`verifyd_c_test exited 0 without "ok all"`)
	}
	if strings.Contains(string(out), key.Secret) {
		t.Error("verifyd_c_test printed the key's secret")
	}
}
