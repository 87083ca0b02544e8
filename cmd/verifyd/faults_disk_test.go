package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// mountTmpfs mounts a tmpfs of sizeMiB in a new directory, unmounted at
// the end of the test (after the daemons started later are stopped). It
// skips, loudly, when the process may not mount: the keystore's fault
// tests cover the same behaviour in-process.
func mountTmpfs(t *testing.T, sizeMiB int) string {
	t.Helper()
	dir := t.TempDir()
	if os.Geteuid() != 0 {
		t.Skip("!!! not root: no tmpfs can be mounted, so this end-to-end variant does not run (keystore's TestFault tests cover the store)")
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm,mode=0755", sizeMiB), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("!!! mounting a tmpfs is not permitted here (%v: %s), so this end-to-end variant does not run (keystore's TestFault tests cover the store)", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fillVolume writes a file into dir until the volume is full and returns it.
func fillVolume(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "ballast")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for i := 0; ; i++ {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return p
		}
		if i > 1<<16 {
			t.Fatal("the volume does not fill up")
		}
	}
}

// runFault runs verifyd with the fault tests' configuration cfg on dataDir
// until it exits (within 30 s), as user uid when uid >= 0, and returns its
// exit status and output.
func runFault(t *testing.T, dataDir, cfg string, uid int) (int, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "verifyd.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "verifyd"), "--data-dir", dataDir, "--http-addr", "127.0.0.1:0")
	cmd.Env = append(cleanEnv(), "VERIFYD_SOCKET=off", "VERIFYD_CONFIG="+file, "VERIFYD_ADMIN_KEY="+faultAdminKey, faultHS256Env, faultRace)
	if uid >= 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	}
	out, _ := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("verifyd did not exit within 30s:\n%s", out)
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

// lockedWriter appends to a buffer of a daemon under its lock.
type lockedWriter struct {
	d   *daemon
	buf *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	return w.buf.Write(p)
}

// startOrExit runs verifyd with the fault tests' configuration cfg on
// dataDir and returns it once it answers /healthz, or, when it exits
// first, nil with its exit status and output.
func startOrExit(t *testing.T, dataDir, cfg string) (*daemon, int, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "verifyd.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{t: t, addr: ln.Addr().String(), exited: make(chan struct{})}
	ln.Close()
	d.cmd = exec.Command(filepath.Join(binDir, "verifyd"), "--data-dir", dataDir, "--http-addr", d.addr)
	d.cmd.Env = append(cleanEnv(), "VERIFYD_SOCKET=off", "VERIFYD_CONFIG="+file, "VERIFYD_ADMIN_KEY="+faultAdminKey, faultHS256Env, faultRace)
	d.cmd.Stdout, d.cmd.Stderr = lockedWriter{d, &d.stdout}, lockedWriter{d, &d.stderr}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.cmd.Wait(); close(d.exited) }()
	t.Cleanup(d.kill)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-d.exited:
			return nil, d.cmd.ProcessState.ExitCode(), d.output()
		default:
		}
		if code, _, err := adminCall(d.addr, "GET", "/healthz", nil, nil); err == nil && code == 200 {
			return d, 0, ""
		}
	}
	t.Fatalf("verifyd neither served nor exited in 30s:\n%s", d.output())
	return nil, 0, ""
}

// createKeys creates n API keys with a description of descLen bytes and
// returns them.
func createKeys(t *testing.T, d *daemon, n, descLen int) []keyAnswer {
	t.Helper()
	keys := make([]keyAnswer, n)
	for i := range keys {
		code, b, err := adminCall(d.addr, "POST", "/v1/admin/keys", map[string]any{
			"subject": fmt.Sprint("disk-", i), "description": strings.Repeat("d", descLen), "scopes": []string{"tool:data:*"},
		}, &keys[i])
		if err != nil || code != 201 {
			t.Fatalf("create %d: %d %s %v", i, code, b, err)
		}
	}
	return keys
}

// TestFaultDiskFull runs the daemon on a small tmpfs and fills it. Pass
// (SECURITY.md §3.3.2): writes (create, import, rotate, revoke, JWT
// revocation) are refused with 503 and a message naming the full volume,
// acknowledge nothing, and leave the daemon running; verification of the
// existing keys and JWT revocations keeps its answers; once space is
// freed writes succeed without a restart; a start on a full volume fails at
// once (exit 3) instead of hanging; after a clean restart every
// acknowledged write is there and no refused one is.
func TestFaultDiskFull(t *testing.T) {
	mnt := mountTmpfs(t, 96)
	dataDir := filepath.Join(mnt, "data")
	cfg := faultConfig("")
	d := startFaultDaemon(t, dataDir, cfg)
	keys := createKeys(t, d, 6, 100)
	if code, _, err := adminCall(d.addr, "DELETE", "/v1/admin/keys/"+keys[0].ID, nil, nil); err != nil || code != 200 {
		t.Fatalf("revoke: %d %v", code, err)
	}
	var rotated keyAnswer
	if code, _, err := adminCall(d.addr, "POST", "/v1/admin/keys/"+keys[1].ID+"/rotate", nil, &rotated); err != nil || code != 200 {
		t.Fatalf("rotate: %d %v", code, err)
	}
	revokedJWT := faultJWT(t, "disk-jwt", "disk-jti-1")
	liveJWT := faultJWT(t, "disk-jwt-2", "disk-jti-2")
	if code, _, err := adminCall(d.addr, "POST", "/v1/admin/revocations", map[string]any{"jti": "disk-jti-1"}, nil); err != nil || code != 201 {
		t.Fatalf("revoke JWT: %d %v", code, err)
	}
	want := map[string]int{keys[0].Secret: 401, keys[1].Secret: 401, rotated.Secret: 200, revokedJWT: 401, liveJWT: 200}
	for _, k := range keys[2:] {
		want[k.Secret] = 200
	}
	checkAnswers := func(when string) {
		t.Helper()
		for tok, status := range want {
			if code, s, err := verifyStatus(d.addr, tok, ""); err != nil || code != status {
				t.Errorf("%s: verify answered %d %s (%v), want %d", when, code, s, err, status)
			}
		}
	}
	checkAnswers("before the disk filled")

	ballast := fillVolume(t, mnt)
	refused := []struct {
		name, method, path string
		body               any
	}{
		{"create", "POST", "/v1/admin/keys", map[string]any{"subject": "refused"}},
		{"import", "POST", "/v1/admin/keys/import", map[string]any{"subject": "refused", "secret": "imported-secret-refused-0001"}},
		{"rotate", "POST", "/v1/admin/keys/" + keys[2].ID + "/rotate", nil},
		{"revoke", "DELETE", "/v1/admin/keys/" + keys[3].ID, nil},
		{"JWT revocation", "POST", "/v1/admin/revocations", map[string]any{"jti": "disk-jti-2"}},
	}
	for _, w := range refused {
		code, b, err := adminCall(d.addr, w.method, w.path, w.body, nil)
		if err != nil || code != 503 || !strings.Contains(string(b), "data volume is full") || !strings.Contains(string(b), "nothing was written") {
			t.Errorf("%s on a full disk: %d %s (%v), want 503 naming the full volume", w.name, code, b, err)
		}
	}
	checkAnswers("on the full disk")
	if faultsLong() {
		time.Sleep(12 * time.Second) // a flush of last-use times comes due
		checkAnswers("on the full disk, a flush interval later")
	}
	select {
	case <-d.exited:
		t.Fatalf("verifyd stopped on the full disk:\n%s", d.output())
	default:
	}
	if !strings.Contains(d.output(), "the data volume is full") {
		t.Errorf("no log line names the full volume:\n%s", d.output())
	}

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	var after keyAnswer
	if code, b, err := adminCall(d.addr, "POST", "/v1/admin/keys", map[string]any{"subject": "after"}, &after); err != nil || code != 201 {
		t.Fatalf("create once space was freed: %d %s %v", code, b, err)
	}
	want[after.Secret] = 200
	if code := d.terminate(); code != 0 {
		t.Fatalf("SIGTERM after the disk was full: exit %d\n%s", code, d.output())
	}

	ballast = fillVolume(t, mnt)
	start := time.Now()
	code, out := runFault(t, dataDir, cfg, -1)
	if code != exitStore || !strings.Contains(out, "data volume is full") {
		t.Fatalf("start on a full volume: exit %d, want %d naming the full volume:\n%s", code, exitStore, out)
	}
	t.Logf("start on a full volume refused in %v", time.Since(start))
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}

	d = startFaultDaemon(t, dataDir, cfg)
	checkAnswers("after a restart")
	var list struct {
		Keys []keyAnswer `json:"keys"`
	}
	if code, _, err := adminCall(d.addr, "GET", "/v1/admin/keys", nil, &list); err != nil || code != 200 || len(list.Keys) != len(keys)+1 {
		t.Errorf("after a restart: %d keys (%d, %v), want the %d acknowledged", len(list.Keys), code, err, len(keys)+1)
	}
	if code, s, _ := verifyStatus(d.addr, liveJWT, ""); code != 200 {
		t.Errorf("a JWT whose refused revocation was not acknowledged answers %d %s", code, s)
	}
}

// liveWAL returns the live WAL of the store in dir: its highest-numbered
// non-empty .log file.
func liveWAL(t *testing.T, dir string) string {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	best, bestNum := "", -1
	for _, l := range logs {
		num, err := strconv.Atoi(strings.TrimSuffix(filepath.Base(l), ".log"))
		if fi, serr := os.Stat(l); err == nil && serr == nil && fi.Size() > 0 && num > bestNum {
			best, bestNum = l, num
		}
	}
	if best == "" {
		t.Fatalf("no WAL in %s", dir)
	}
	return best
}

// walKeys starts the daemon on a new store and creates n keys (with
// descriptions of descLen bytes), noting the size of the live WAL after
// each acknowledgement, then kills it. Key i lies in the WAL between
// ends[i-1] and ends[i].
func walKeys(t *testing.T, n, descLen int) (dataDir, wal string, keys []keyAnswer, ends []int64) {
	t.Helper()
	dataDir = t.TempDir()
	d := startFaultDaemon(t, dataDir, faultConfig(""))
	for range n {
		keys = append(keys, createKeys(t, d, 1, descLen)...)
		fi, err := os.Stat(liveWAL(t, dataDir))
		if err != nil {
			t.Fatal(err)
		}
		ends = append(ends, fi.Size())
	}
	wal = liveWAL(t, dataDir)
	d.kill()
	return dataDir, wal, keys, ends
}

// snapshotDir returns the contents of every file in dir but LOCK.
func snapshotDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]byte{}
	for _, e := range ents {
		if e.Name() == "LOCK" || e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = b
	}
	return m
}

// sameFiles reports the differences between two snapshots of a store.
func sameFiles(t *testing.T, what string, before, after map[string][]byte) {
	t.Helper()
	for name, b := range before {
		if !bytes.Equal(after[name], b) {
			t.Errorf("%s changed %s", what, name)
		}
	}
	for name := range after {
		if _, ok := before[name]; !ok {
			t.Errorf("%s created %s", what, name)
		}
	}
}

// TestFaultCorruptStore damages the store of a killed daemon. Pass
// (SECURITY.md §3.3.3): with its last WAL record torn the daemon starts and
// has every key but that one; with a byte flipped inside synced WAL
// records it exits 4 naming the corruption, changes no file, and never
// serves an empty store; with a damaged table it exits 4, or serves with
// every answer right or "unavailable" (503) for the damaged keys, never
// "unknown" for a stored key nor "ok" for a revoked one. (A damaged
// MANIFEST is TestExitStatuses/corrupt_store.)
func TestFaultCorruptStore(t *testing.T) {
	cfg := faultConfig("")
	t.Run("torn WAL tail", func(t *testing.T) {
		const n = 12
		dataDir, wal, keys, ends := walKeys(t, n, 100)
		cut := ends[n-2] + 1 + rand.Int64N(ends[n-1]-ends[n-2]-1)
		if err := os.Truncate(wal, cut); err != nil {
			t.Fatal(err)
		}
		d := startFaultDaemon(t, dataDir, cfg)
		for i, k := range keys {
			code, s, err := verifyStatus(d.addr, k.Secret, "")
			switch {
			case err != nil:
				t.Fatal(err)
			case i < n-1 && code != 200:
				t.Errorf("key %d, acknowledged before the torn record, answers %d %s", i, code, s)
			case i == n-1 && s != "unknown":
				t.Errorf("the key of the torn record answers %d %s, want unknown", code, s)
			}
		}
	})

	t.Run("flipped byte in synced WAL records", func(t *testing.T) {
		const n = 120
		dataDir, wal, _, ends := walKeys(t, n, 1000)
		if ends[n-1] < 3*32<<10 {
			t.Fatalf("the WAL holds %d bytes, want at least three 32 KiB blocks", ends[n-1])
		}
		b, err := os.ReadFile(wal)
		if err != nil {
			t.Fatal(err)
		}
		k := 1 + rand.IntN(10)
		off := ends[k-1] + rand.Int64N(ends[k]-ends[k-1])
		b[off] ^= 1 << rand.IntN(8)
		if err := os.WriteFile(wal, b, 0o644); err != nil {
			t.Fatal(err)
		}
		before := snapshotDir(t, dataDir)
		code, out := runFault(t, dataDir, cfg, -1)
		if code != exitCorrupt || !strings.Contains(out, "corrupt") || !strings.Contains(out, "never recreates") {
			t.Fatalf("byte %d of the WAL (key %d) flipped: exit %d, want %d naming the corruption:\n%s", off, k, code, exitCorrupt, out)
		}
		sameFiles(t, "the refused start", before, snapshotDir(t, dataDir))
	})

	t.Run("damaged table", func(t *testing.T) {
		dataDir := t.TempDir()
		d := startFaultDaemon(t, dataDir, cfg)
		keys := createKeys(t, d, 60, 200)
		revoked := map[string]bool{}
		for i := 0; i < len(keys); i += 3 {
			if code, _, err := adminCall(d.addr, "DELETE", "/v1/admin/keys/"+keys[i].ID, nil, nil); err != nil || code != 200 {
				t.Fatalf("revoke: %d %v", code, err)
			}
			revoked[keys[i].Secret] = true
		}
		d.terminate()
		d = startFaultDaemon(t, dataDir, cfg) // replays the WAL into a table
		d.terminate()
		tables, _ := filepath.Glob(filepath.Join(dataDir, "*.sst"))
		if len(tables) == 0 {
			t.Fatal("no table in the store")
		}
		for _, at := range []float64{0.1, 0.4, 0.7} {
			damaged := t.TempDir()
			for name, b := range snapshotDir(t, dataDir) {
				if strings.HasSuffix(name, ".sst") {
					off := int(float64(len(b)) * at)
					for i := off; i < off+32 && i < len(b); i++ {
						b[i] ^= 0x5a
					}
				}
				if err := os.WriteFile(filepath.Join(damaged, name), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			d, code, out := startOrExit(t, damaged, cfg)
			if d == nil {
				if code != exitCorrupt || !strings.Contains(out, "corrupt") {
					t.Fatalf("damage at %.0f%%: exit %d, want %d naming the corruption:\n%s", at*100, code, exitCorrupt, out)
				}
				t.Logf("damage at %.0f%%: the start is refused (exit %d)", at*100, code)
				continue
			}
			var failed int
			for _, k := range keys {
				code, s, err := verifyStatus(d.addr, k.Secret, "")
				switch {
				case err != nil:
					t.Fatal(err)
				case code == 503:
					failed++
				case revoked[k.Secret] && code != 401 || !revoked[k.Secret] && code != 200 || s == "unknown":
					t.Errorf("damage at %.0f%%: key answers %d %s (revoked: %v)", at*100, code, s, revoked[k.Secret])
				}
			}
			select {
			case <-d.exited:
				t.Fatalf("damage at %.0f%%: the daemon stopped while serving:\n%s", at*100, d.output())
			default:
			}
			if failed > 0 && !strings.Contains(d.output(), "on-disk corruption") {
				t.Errorf("damage at %.0f%%: %d keys unavailable and no log line names the corruption", at*100, failed)
			}
			t.Logf("damage at %.0f%%: served, %d of %d keys unavailable", at*100, failed, len(keys))
			d.kill()
		}
	})
}

// TestFaultStoreUnavailable starts the daemon on stores it cannot use: one
// it may not write (another user's), one on a read-only file system, one
// whose LOCK another process holds, and a data directory that is a file.
// Pass (SECURITY.md §3.3.4): each start fails within 30 s with exit 3 and a
// message naming the cause, and changes nothing in the store. (A missing
// store with create_data_dir false, and a LOCK held by a running verifyd,
// are TestExitStatuses.)
func TestFaultStoreUnavailable(t *testing.T) {
	cfg := faultConfig("")
	newStore := func(t *testing.T, parent string) string {
		dataDir := filepath.Join(parent, "data")
		d := startFaultDaemon(t, dataDir, cfg)
		createKeys(t, d, 3, 10)
		faultHTTP.CloseIdleConnections()
		if code := d.terminate(); code != 0 {
			t.Fatalf("exit %d", code)
		}
		return dataDir
	}
	refused := func(t *testing.T, dataDir string, uid int, cause string) {
		t.Helper()
		before := snapshotDir(t, dataDir)
		start := time.Now()
		code, out := runFault(t, dataDir, cfg, uid)
		if code != exitStore || !strings.Contains(out, "cannot open the store") || !strings.Contains(out, cause) {
			t.Fatalf("exit %d, want %d naming %q:\n%s", code, exitStore, cause, out)
		}
		t.Logf("refused in %v", time.Since(start))
		sameFiles(t, "the refused start", before, snapshotDir(t, dataDir))
	}

	t.Run("permissions", func(t *testing.T) {
		parent := t.TempDir()
		dataDir := newStore(t, parent)
		if os.Geteuid() != 0 {
			if err := os.Chmod(dataDir, 0o500); err != nil {
				t.Fatal(err)
			}
			defer os.Chmod(dataDir, 0o755)
			refused(t, dataDir, -1, "permission denied")
			return
		}
		// Root writes anywhere: run the daemon as nobody, on root's store.
		for _, p := range []string{binDir, filepath.Dir(parent), parent} {
			if err := os.Chmod(p, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		refused(t, dataDir, 65534, "permission denied")
	})

	t.Run("read-only file system", func(t *testing.T) {
		if os.Geteuid() != 0 {
			dataDir := newStore(t, t.TempDir())
			if err := os.Chmod(dataDir, 0o555); err != nil {
				t.Fatal(err)
			}
			defer os.Chmod(dataDir, 0o755)
			refused(t, dataDir, -1, "permission denied")
			return
		}
		mnt := mountTmpfs(t, 128)
		dataDir := newStore(t, mnt)
		if out, err := exec.Command("mount", "-o", "remount,ro", mnt).CombinedOutput(); err != nil {
			t.Fatalf("remount read-only: %v: %s", err, out)
		}
		defer exec.Command("mount", "-o", "remount,rw", mnt).Run()
		refused(t, dataDir, -1, "read-only file system")
	})

	t.Run("LOCK held by another process", func(t *testing.T) {
		dataDir := newStore(t, t.TempDir())
		lock, err := vfs.Default.Lock(filepath.Join(dataDir, "LOCK"))
		if err != nil {
			t.Fatal(err)
		}
		defer lock.Close()
		refused(t, dataDir, -1, "LOCK")
	})

	t.Run("data directory is a file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "data")
		if err := os.WriteFile(file, []byte("not a store"), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out := runFault(t, file, cfg, -1)
		if code != exitStore || !strings.Contains(out, "cannot open the store") {
			t.Fatalf("exit %d, want %d:\n%s", code, exitStore, out)
		}
		if b, _ := os.ReadFile(file); string(b) != "not a store" {
			t.Error("the file was changed")
		}
	})
}
