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

// runOnce runs verifyd with args until it exits (within 30s) and returns its
// exit status and output.
func runOnce(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "verifyd"), args...)
	// No socket unless a test asks for one: the default path is relative
	// to the working directory, which the tests share.
	cmd.Env = append(append(cleanEnv(), "VERIFYD_SOCKET=off"), env...)
	out, _ := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("verifyd %v did not exit within 30s:\n%s", args, out)
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

func TestExitStatuses(t *testing.T) {
	t.Run("configuration error", func(t *testing.T) {
		code, out := runOnce(t, nil, "--no-such-flag")
		if code != exitConfig || !strings.Contains(out, "no-such-flag") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
	})
	t.Run("missing store with create_data_dir false", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "absent")
		code, out := runOnce(t, []string{"VERIFYD_CREATE_DATA_DIR=false"}, "--data-dir", dir, "--http-addr", "127.0.0.1:0")
		if code != exitStore || !strings.Contains(out, "cannot open the store") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Fatal("verifyd created the data directory although create_data_dir is false")
		}
	})
	t.Run("store locked by a running daemon", func(t *testing.T) {
		dir := t.TempDir()
		startDaemon(t, dir)
		code, out := runOnce(t, nil, "--data-dir", dir, "--http-addr", "127.0.0.1:0")
		if code != exitStore {
			t.Fatalf("exit %d:\n%s", code, out)
		}
	})
	t.Run("socket in use by a running daemon", func(t *testing.T) {
		d := startDaemon(t, t.TempDir())
		code, out := runOnce(t, []string{"VERIFYD_SOCKET=" + d.socket}, "--data-dir", t.TempDir(), "--http-addr", "127.0.0.1:0")
		if code != exitListen || !strings.Contains(out, "already listening") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		if _, err := os.Stat(d.socket); err != nil {
			t.Fatalf("the running daemon's socket was removed: %v", err)
		}
	})
	t.Run("address in use", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		code, out := runOnce(t, nil, "--data-dir", t.TempDir(), "--http-addr", ln.Addr().String())
		if code != exitListen || !strings.Contains(out, "cannot listen") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
	})
	t.Run("corrupt store", func(t *testing.T) {
		dir := t.TempDir()
		d := startDaemon(t, dir)
		d.kill()
		// The manifest in use is the one Pebble's marker file names
		// ("marker.manifest.<n>.MANIFEST-<m>"); older manifests may remain.
		markers, _ := filepath.Glob(filepath.Join(dir, "marker.manifest.*"))
		if len(markers) != 1 {
			t.Fatalf("manifest markers %v, want one", markers)
		}
		parts := strings.SplitN(filepath.Base(markers[0]), ".", 4)
		if len(parts) != 4 || !strings.HasPrefix(parts[3], "MANIFEST-") {
			t.Fatalf("unexpected manifest marker %s", markers[0])
		}
		manifests := []string{filepath.Join(dir, parts[3])}
		b, err := os.ReadFile(manifests[0])
		if err != nil {
			t.Fatal(err)
		}
		for i := 16; i < len(b) && i < 200; i++ {
			b[i] ^= 0x5a
		}
		if err := os.WriteFile(manifests[0], b, 0o644); err != nil {
			t.Fatal(err)
		}
		code, out := runOnce(t, nil, "--data-dir", dir, "--http-addr", "127.0.0.1:0")
		if code != exitCorrupt || !strings.Contains(out, "corrupt") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		after, _ := os.ReadFile(manifests[0])
		if string(after) != string(b) {
			t.Fatal("verifyd rewrote the corrupt store")
		}
	})
}

func TestResetAdminKey(t *testing.T) {
	dir := t.TempDir()
	d := startDaemon(t, dir)
	old := d.adminKey()
	if code := d.terminate(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	code, out := runOnce(t, nil, "--data-dir", dir, "--reset-admin-key")
	m := adminKeyLine.FindStringSubmatch(out)
	if code != 0 || m == nil || m[1] == old {
		t.Fatalf("reset: exit %d:\n%s", code, out)
	}
	d = startDaemon(t, dir)
	if _, code := d.ctl(old, "keys", "list"); code == 0 {
		t.Error("the old admin key still works after a reset")
	}
	if _, code := d.ctl(m[1], "keys", "list"); code != 0 {
		t.Error("the new admin key is refused")
	}
}

func TestExitStatusBadTrustSource(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "verifyd.yaml")
	short := filepath.Join(dir, "short.key")
	os.WriteFile(short, []byte("c2hvcnQ"), 0o600) // "short": 5 bytes
	os.WriteFile(cfg, []byte("trust:\n  sources:\n    - name: proxy\n      hs256:\n        - kid: hs-1\n          secret_file: "+short+"\n"), 0o600)
	code, out := runOnce(t, []string{"VERIFYD_CONFIG=" + cfg}, "--data-dir", t.TempDir(), "--http-addr", "127.0.0.1:0")
	if code != exitConfig || !strings.Contains(out, "cannot load the trust sources") || !strings.Contains(out, "32") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}
