package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verifyd/verifyd/ipc"
)

const b64alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func randomB64(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = b64alphabet[rng.IntN(64)]
	}
	return string(b)
}

// randomCredential returns a well-formed credential that verifyd never
// issued, of the i-th shape: an agent key or other 43-character bearer
// token, an API key (whose checksum is wrong), a PAT, an imported-style
// key, or a JWT of the HS256 source under a key id nobody has.
func randomCredential(t *testing.T, rng *rand.Rand, i int) string {
	switch i % 5 {
	case 0:
		return randomB64(rng, 43)
	case 1:
		return "vk_" + randomB64(rng, 40)
	case 2:
		return "pat_" + randomB64(rng, 22) + "_" + randomB64(rng, 43)
	case 3:
		return "legacy-" + randomB64(rng, 24+rng.IntN(40))
	default:
		return hs256(t, faultHS256, "kid-"+randomB64(rng, 8), jwtClaims("flood", time.Hour))
	}
}

// malformedInput returns an input no credential can have: an API key or
// PAT of the wrong length, a non-ASCII string, or one too long for an
// imported key and not shaped like a JWT.
func malformedInput(rng *rand.Rand, i int) string {
	switch i % 4 {
	case 0:
		return "vk_" + randomB64(rng, 39)
	case 1:
		return "pat__" + randomB64(rng, 10)
	case 2:
		return "ключ-" + randomB64(rng, 30)
	default:
		return randomB64(rng, 513+rng.IntN(500))
	}
}

// floodStats are what one flood saw.
type floodStats struct {
	sent, allowed, validWrong atomic.Int64
	mu                        sync.Mutex
	validLatency              []time.Duration
}

// floodSocket sends n inputs from gen over the socket from conc goroutines, with
// a valid key every tenth request, and counts the answers: none of the
// inputs may be allowed, every valid key must be.
func floodSocket(t *testing.T, c *ipc.Client, n, conc int, valid []string, gen func(rng *rand.Rand, i int) string, st *floodStats) {
	t.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range conc {
		rng := rand.New(rand.NewPCG(uint64(w), uint64(n)))
		wg.Go(func() {
			ctx := context.Background()
			for i := int(next.Add(1)); i <= n; i = int(next.Add(1)) {
				r, err := c.Verify(ctx, gen(rng, i), "")
				if err != nil {
					t.Errorf("flood: %v", err)
					return
				}
				st.sent.Add(1)
				if r.Allowed() {
					st.allowed.Add(1)
				}
				if i%10 != 0 {
					continue
				}
				start := time.Now()
				r, err = c.Verify(ctx, valid[i/10%len(valid)], "")
				took := time.Since(start)
				if err != nil || !r.Allowed() {
					st.validWrong.Add(1)
					continue
				}
				st.mu.Lock()
				st.validLatency = append(st.validLatency, took)
				st.mu.Unlock()
			}
		})
	}
	wg.Wait()
}

func percentile99(l []time.Duration) time.Duration {
	if len(l) == 0 {
		return 0
	}
	l = slices.Clone(l)
	slices.Sort(l)
	return l[len(l)*99/100]
}

// TestFaultRandomKeyFlood floods the daemon's socket with well-formed
// random credentials of every shape (10⁶ in long mode), then with
// malformed inputs, and sends 10 kB tokens over HTTP, while verifying valid
// keys throughout. Pass (SECURITY.md §3.3.8): no random input is allowed;
// every valid key is allowed every time (no eviction rejects one);
// well-formed ones read the store at most once per hundred (the digest
// filter rules them out); malformed inputs read nothing from the store; goroutines return to their
// level; in long mode memory stops growing once the bounded caches are full
// (the second half of the flood adds less than 32 MiB to the heap the
// runtime holds, and 64 MiB of RSS) and the p99 of valid keys stays within 5 times (plus 5 ms) its
// value before the flood (the figures are logged).
func TestFaultRandomKeyFlood(t *testing.T) {
	wellFormed, malformed := 20_000, 4_000
	if faultsLong() {
		wellFormed, malformed = 1_000_000, 1_000_000
	}
	d := startFaultDaemon(t, t.TempDir(), faultConfig(""))
	valid := make([]string, 50)
	for i := range valid {
		var k keyAnswer
		kind := []string{"api_key", "agent", "pat"}[i%3]
		if code, b, err := adminCall(d.addr, "POST", "/v1/admin/keys", map[string]any{"subject": fmt.Sprint("valid-", i), "kind": kind, "scopes": []string{"tool:data:*"}}, &k); err != nil || code != 201 {
			t.Fatalf("create: %d %s %v", code, b, err)
		}
		valid[i] = k.Secret
	}
	valid = append(valid, faultJWT(t, "valid-jwt", "valid-jwt-jti"))

	c, err := ipc.Dial(context.Background(), d.socket, &ipc.ClientOptions{Conns: 4, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Warm up, then the latency of valid keys alone.
	var before floodStats
	floodSocket(t, c, 20_000, 8, valid, func(rng *rand.Rand, i int) string { return valid[i%len(valid)] }, &before)
	goroutines := metricValue(t, d.addr, "go_goroutines")
	rss := metricValue(t, d.addr, "process_resident_memory_bytes")

	heap := metricValue(t, d.addr, "go_memstats_heap_sys_bytes")
	readsBefore := metricValue(t, d.addr, "verifyd_keystore_store_reads_total")

	// Two halves, to see whether memory still grows in the second one,
	// once the bounded caches are full.
	var wf floodStats
	start := time.Now()
	random := func(rng *rand.Rand, i int) string { return randomCredential(t, rng, i) }
	floodSocket(t, c, wellFormed/2, 16, valid, random, &wf)
	rssHalf, heapHalf := metricValue(t, d.addr, "process_resident_memory_bytes"), metricValue(t, d.addr, "go_memstats_heap_sys_bytes")
	floodSocket(t, c, wellFormed/2, 16, valid, func(rng *rand.Rand, i int) string { return random(rng, i+wellFormed/2) }, &wf)
	wfTook := time.Since(start)
	rssAfter, heapAfter := metricValue(t, d.addr, "process_resident_memory_bytes"), metricValue(t, d.addr, "go_memstats_heap_sys_bytes")

	reads := metricValue(t, d.addr, "verifyd_keystore_store_reads_total")
	var mf floodStats
	start = time.Now()
	floodSocket(t, c, malformed, 16, valid, malformedInput, &mf)
	mfTook := time.Since(start)
	readsAfter := metricValue(t, d.addr, "verifyd_keystore_store_reads_total")
	const long = 200
	for i := range long {
		tok := strings.Repeat("a", 10<<10-i)
		if code, s, err := verifyStatus(d.addr, tok, ""); err != nil || code/100 == 2 || s == "ok" {
			t.Errorf("a %d-byte token answered %d %s (%v)", len(tok), code, s, err)
		}
	}
	c.Close()
	faultHTTP.CloseIdleConnections()
	readsLong := metricValue(t, d.addr, "verifyd_keystore_store_reads_total")

	for name, st := range map[string]*floodStats{"well-formed": &wf, "malformed": &mf} {
		if st.allowed.Load() != 0 || st.validWrong.Load() != 0 {
			t.Errorf("%s flood: %d of %d random inputs allowed, %d valid keys refused", name, st.allowed.Load(), st.sent.Load(), st.validWrong.Load())
		}
	}
	// The digest filter answers for digests never stored: about one in a
	// thousand passes it when it is full, and far fewer here.
	if r := reads - readsBefore; r > float64(wellFormed)/100 {
		t.Errorf("the well-formed flood read the store %v times for %d random credentials: the digest filter let them through", r, wellFormed)
	}
	if readsAfter != reads || readsLong != reads {
		t.Errorf("malformed inputs read the store: %v reads before, %v after the malformed flood, %v after the long tokens", reads, readsAfter, readsLong)
	}
	// The server's goroutines for the closed connections end shortly
	// after; wait for them (bounded).
	var goroutinesAfter float64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if goroutinesAfter = metricValue(t, d.addr, "go_goroutines"); goroutinesAfter <= goroutines+5 || time.Now().After(deadline) {
			break
		}
	}
	if goroutinesAfter > goroutines+5 {
		t.Errorf("goroutines: %v before the flood, %v after it", goroutines, goroutinesAfter)
	}
	t.Logf("%d well-formed random credentials in %v (%.0f/s, %.0f store reads), %d malformed inputs in %v, %d tokens of 10 kB: 0 allowed; %d valid verifications, 0 refused",
		wf.sent.Load(), wfTook.Round(time.Millisecond), float64(wf.sent.Load())/wfTook.Seconds(), reads-readsBefore, mf.sent.Load(), mfTook.Round(time.Millisecond), long,
		len(wf.validLatency)+len(mf.validLatency))
	t.Logf("valid-key p99 over the socket: %v alone, %v during the well-formed flood, %v during the malformed one; goroutines %v before, %v after",
		percentile99(before.validLatency), percentile99(wf.validLatency), percentile99(mf.validLatency), goroutines, goroutinesAfter)
	const mib = 1 << 20
	t.Logf("memory before the flood, after its first half and after all of it: RSS %.0f, %.0f, %.0f MiB; heap obtained from the OS %.0f, %.0f, %.0f MiB",
		rss/mib, rssHalf/mib, rssAfter/mib, heap/mib, heapHalf/mib, heapAfter/mib)
	if faultsLong() {
		if heapAfter-heapHalf > 32*mib || rssAfter-rssHalf > 64*mib {
			t.Errorf("memory still grows in the second half of the flood: heap %+.0f MiB, RSS %+.0f MiB", (heapAfter-heapHalf)/mib, (rssAfter-rssHalf)/mib)
		}
		if b, w := percentile99(before.validLatency), percentile99(wf.validLatency); w > 5*b+5*time.Millisecond {
			t.Errorf("valid-key p99 %v during the flood, %v before", w, b)
		}
	}
}
