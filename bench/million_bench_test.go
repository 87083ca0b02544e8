package bench

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dgraph-io/ristretto/v2"

	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/rbac"
	"github.com/verifyd/verifyd/verify/credential"
)

// millionEnv is the environment variable that enables the 1M-key
// measurements: they build a store of a million keys (about a minute and
// several hundred MB of heap) and are skipped otherwise.
const millionEnv = "VERIFYD_BENCH_1M"

// metaChecksumKey is the store's meta entry where the daemon keeps the API
// key checksum key (cmd/verifyd).
const metaChecksumKey = "apikey_checksum_key"

// millionStore is a closed store of manyKeys API keys in a temporary
// directory, with the daemon's checksum key in its meta entries, so that
// verifyd started on the directory verifies the keys.
type millionStore struct {
	dir         string
	checksumKey []byte
	secrets     []string
}

var (
	millionOnce sync.Once
	million     *millionStore
)

// needMillion skips b unless VERIFYD_BENCH_1M=1.
func needMillion(b *testing.B) {
	if os.Getenv(millionEnv) != "1" {
		b.Skipf("set %s=1 to build a 1M-key store and measure it", millionEnv)
	}
}

// millionKeys returns the 1M-key store, building it on first use.
func millionKeys(b *testing.B) *millionStore {
	millionOnce.Do(func() {
		dir, err := mkdirTemp()
		if err != nil {
			b.Fatal(err)
		}
		ck, err := credential.NewChecksumKey()
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		e := openEnv(b, dir, ck, 1<<10)
		defer e.store.Close()
		secrets := e.fill(b, manyKeys)
		ctx := context.Background()
		if _, err := e.store.Meta(ctx, metaChecksumKey, func() ([]byte, error) { return ck, nil }); err != nil {
			b.Fatal(err)
		}
		if err := e.store.Compact(ctx); err != nil {
			b.Fatal(err)
		}
		b.Logf("created %d keys with CreateBatch and compacted the store in %v", len(secrets), time.Since(start).Round(time.Millisecond))
		million = &millionStore{dir: dir, checksumKey: ck, secrets: secrets}
	})
	if million == nil {
		b.Fatal("the 1M-key store could not be built")
	}
	return million
}

// heapAlloc returns the live heap after two collections.
func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkMillionKeys holds the 1M-key measurements (VERIFYD_BENCH_1M=1).
//
// cache_memory opens the store with the daemon's cache size for a million
// keys, looks every key up until it is cached, and reports the heap it
// grew by per cached key (B/key: entries, principals, ristretto's share).
// ristretto_memory is ristretto alone, configured as the store's cache,
// holding a million uint64 keys mapped to one shared value: its own share
// of B/key. cold_start starts the verifyd binary on the store's directory
// and reports the time until GET /readyz answers 200 (ns/op is one start).
func BenchmarkMillionKeys(b *testing.B) {
	needMillion(b)
	m := millionKeys(b)
	b.Run("cache_memory", func(b *testing.B) {
		for range b.N {
			benchCacheMemory(b, m)
		}
	})
	b.Run("ristretto_memory", func(b *testing.B) {
		for range b.N {
			benchRistrettoMemory(b)
		}
	})
	b.Run("cold_start", func(b *testing.B) { benchColdStart(b, m) })
}

// benchCacheMemory fills a fresh store's cache with every key of m and
// reports the heap bytes per cached key.
func benchCacheMemory(b *testing.B, m *millionStore) {
	e := openEnv(b, m.dir, m.checksumKey, manyKeys+manyKeys/8)
	defer e.store.Close()
	digests := make([]keystore.Digest, len(m.secrets))
	for i, s := range m.secrets {
		digests[i] = keystore.Sum(s)
	}
	before := heapAlloc()
	// ristretto may drop a Set under load: passes until every key is
	// cached, at most four.
	for pass := 0; pass < 4 && cachedEntries(b, e) < float64(len(digests)); pass++ {
		for i := range digests {
			if en, err := e.store.Lookup(digests[i]); err != nil || en == nil {
				b.Fatalf("key %d: %v %v", i, en, err)
			}
			if i%4096 == 0 {
				e.store.WaitCache()
			}
		}
		e.store.WaitCache()
	}
	after := heapAlloc()
	n := cachedEntries(b, e)
	if n == 0 {
		b.Fatal("nothing cached")
	}
	b.ReportMetric(n, "cached-keys")
	b.ReportMetric(float64(after-before)/n, "B/key")
	runtime.KeepAlive(digests)
	b.Logf("struct sizes: keystore.Entry %d B (principal %d B inside; its profile, %d B, and matcher, %d B, are shared), rbac.Binding %d B",
		reflect.TypeFor[keystore.Entry]().Size(), reflect.TypeFor[rbac.Principal]().Size(), reflect.TypeFor[rbac.Profile]().Size(),
		reflect.TypeFor[rbac.Matcher]().Size(), reflect.TypeFor[rbac.Binding]().Size())
}

// cachedEntries reads the store's positive cache size from its metrics.
func cachedEntries(b *testing.B, e *env) float64 {
	mfs, err := e.reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if !strings.HasSuffix(mf.GetName(), "keystore_cache_entries") {
			continue
		}
		for _, mm := range mf.GetMetric() {
			for _, l := range mm.GetLabel() {
				if l.GetName() == "cache" && l.GetValue() == "positive" {
					return mm.GetGauge().GetValue()
				}
			}
		}
	}
	b.Fatal("no keystore_cache_entries{cache=\"positive\"} metric")
	return 0
}

// benchRistrettoMemory reports ristretto's own heap bytes per key: a cache
// configured as the store's (counters, cost, buffers) holding manyKeys
// uint64 keys mapped to one shared value.
func benchRistrettoMemory(b *testing.B) {
	keys := make([]uint64, manyKeys)
	for i := range keys {
		var k [8]byte
		rand.Read(k[:])
		keys[i] = binary.LittleEndian.Uint64(k[:])
	}
	const entries = manyKeys + manyKeys/8
	empty := heapAlloc()
	c, err := ristretto.NewCache(&ristretto.Config[uint64, *int]{
		NumCounters: 10 * entries, MaxCost: entries, BufferItems: 64, IgnoreInternalCost: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	before := heapAlloc()
	v := new(int)
	for pass := 0; pass < 4 && c.MaxCost()-c.RemainingCost() < int64(len(keys)); pass++ {
		for i, k := range keys {
			if _, ok := c.Get(k); !ok {
				c.Set(k, v, 1)
			}
			if i%4096 == 0 {
				c.Wait()
			}
		}
		c.Wait()
	}
	after := heapAlloc()
	n := float64(c.MaxCost() - c.RemainingCost())
	b.ReportMetric(n, "cached-keys")
	b.ReportMetric(float64(after-before)/n, "B/key")
	b.ReportMetric(float64(before-empty)/(1<<20), "MB-empty")
	runtime.KeepAlive(keys)
}

// benchColdStart starts the daemon b.N times on m's directory, timing
// each start until GET /readyz answers 200, then checks that it verifies
// one of the keys and stops it. max-ns is the slowest start.
func benchColdStart(b *testing.B, m *millionStore) {
	bin := buildDaemon(b)
	run := b.TempDir()
	adminKey := "bench-admin-key-" + rand.Text()
	var slowest time.Duration
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		addr := freeAddr(b)
		cmd := exec.Command(bin, "--data-dir", m.dir, "--http-addr", addr,
			"--socket", filepath.Join(run, "s"), "--log-level", "warn")
		cmd.Env = append(daemonEnv(), "VERIFYD_ADMIN_KEY="+adminKey)
		var stderr strings.Builder
		cmd.Stdout, cmd.Stderr = io.Discard, &stderr
		b.StartTimer()
		start := time.Now()
		d, err := startDaemon(cmd)
		if err != nil {
			b.Fatal(err)
		}
		err = d.waitReady(addr, time.Minute)
		ready := time.Since(start)
		b.StopTimer()
		if err == nil {
			err = verifyOverHTTP(addr, m.secrets[i%len(m.secrets)])
		}
		if serr := d.stop(); err == nil && serr != nil {
			err = serr
		}
		if err != nil {
			b.Fatalf("start %d: %v\n%s", i, err, stderr.String())
		}
		slowest = max(slowest, ready)
		b.StartTimer()
	}
	b.ReportMetric(float64(slowest.Nanoseconds()), "max-ns")
}

// buildDaemon builds cmd/verifyd into a temporary directory.
func buildDaemon(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "verifyd")
	goBin := os.Getenv("GO")
	if goBin == "" {
		goBin = "go"
	}
	out, err := exec.Command(goBin, "build", "-o", bin, "github.com/verifyd/verifyd/cmd/verifyd").CombinedOutput()
	if err != nil {
		b.Fatalf("go build ./cmd/verifyd: %v\n%s", err, out)
	}
	return bin
}

// daemonEnv is this process's environment without VERIFYD_ variables, so
// that the daemon runs on its flags and defaults alone.
func daemonEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VERIFYD_") {
			env = append(env, kv)
		}
	}
	return env
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// daemon is a started verifyd process.
type daemon struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has exited; err is then set
	err    error
}

// startDaemon starts cmd and watches for its exit.
func startDaemon(cmd *exec.Cmd) (*daemon, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	d := &daemon{cmd: cmd, exited: make(chan struct{})}
	go func() {
		d.err = cmd.Wait()
		close(d.exited)
	}()
	return d, nil
}

// waitReady polls GET /readyz every millisecond until it answers 200, the
// daemon exits, or limit passes.
func (d *daemon) waitReady(addr string, limit time.Duration) error {
	// No keep-alive: an idle connection would delay the daemon's
	// shutdown.
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		resp, err := client.Get("http://" + addr + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-d.exited:
			return fmt.Errorf("the daemon exited before it was ready: %v", d.err)
		case <-time.After(time.Millisecond):
		}
	}
	return fmt.Errorf("/readyz did not answer 200 within %v", limit)
}

// stop sends SIGTERM and waits for the exit, killing the daemon after
// 30 s.
func (d *daemon) stop() error {
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		<-d.exited
		return fmt.Errorf("the daemon had exited: %v", d.err)
	}
	select {
	case <-d.exited:
		return d.err
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		<-d.exited
		return fmt.Errorf("the daemon did not stop within 30 s of SIGTERM")
	}
}

// verifyOverHTTP verifies secret for tool:data:read and requires an allow.
func verifyOverHTTP(addr, secret string) error {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Post("http://"+addr+"/v1/verify", "application/json",
		strings.NewReader(`{"token":"`+secret+`","scope":"tool:data:read"}`))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"allow":true`) {
		return fmt.Errorf("verify: %d %s", resp.StatusCode, body)
	}
	return nil
}
