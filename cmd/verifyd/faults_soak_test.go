package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verifyd/verifyd/ipc"
)

// soakSample is the daemon's state at one moment of TestSoak.
type soakSample struct {
	at                            time.Duration
	goroutines, heap, rss, fds    float64
	verifies, writes, wrongAnswer int64
}

// TestSoak runs a mixed load against the daemon for VERIFYD_SOAK (a
// duration, at most 1h; make soak sets 10m) and samples it every 10 s:
// verifications of valid keys, unknown keys and JWTs over HTTP and the
// socket, forward-auth checks, and a trickle of creations, rotations,
// revocations and JWT revocations. Pass (SECURITY.md §3.3, soak): every
// answer is right, and after the first fifth of the run (the caches are
// small, so they fill up in it) the goroutines, heap, resident memory and
// open files of the last fifth stay within those of the second fifth
// (+10 goroutines, +25% +16 MiB of heap, +25% +32 MiB of RSS, +10 files).
// It is skipped unless VERIFYD_SOAK is set: make soak runs it, CI does
// not.
func TestSoak(t *testing.T) {
	v := os.Getenv("VERIFYD_SOAK")
	if v == "" {
		t.Skip("VERIFYD_SOAK is not set: the soak test runs with make soak")
	}
	total, err := time.ParseDuration(v)
	if err != nil || total < time.Minute || total > time.Hour {
		t.Fatalf("VERIFYD_SOAK=%q: want a duration from 1m to 1h", v)
	}
	interval := min(10*time.Second, total/20)
	d := startFaultDaemon(t, t.TempDir(), faultConfig("cache:\n  negative_entries: 4096\n  jwt_entries: 4096\n"))
	valid := createKeys(t, d, 200, 50)
	sock, err := ipc.Dial(context.Background(), d.socket, &ipc.ClientOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()

	var verifies, writes, wrongAnswers atomic.Int64
	wrong := func(format string, args ...any) {
		if wrongAnswers.Add(1) <= 10 {
			t.Errorf(format, args...)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), total)
	defer cancel()
	var wg sync.WaitGroup
	for w := range 4 {
		rng := rand.New(rand.NewPCG(uint64(w), 5))
		wg.Go(func() { // HTTP: valid keys, unknown keys, JWTs, forward auth
			for i := 0; ctx.Err() == nil; i++ {
				var tok string
				want := 200
				switch i % 4 {
				case 0:
					tok = valid[rng.IntN(len(valid))].Secret
				case 1:
					tok, want = randomB64(rng, 43), 401
				case 2:
					tok = faultJWT(t, fmt.Sprint("soak-", rng.IntN(1000)), fmt.Sprint("soak-jti-", i))
				default:
					tok = valid[rng.IntN(len(valid))].Secret
				}
				code, s, err := verifyStatus(d.addr, tok, "")
				if err != nil {
					wrong("verify: %v", err)
					continue
				}
				if code != want {
					wrong("verify answered %d %s, want %d", code, s, want)
				}
				verifies.Add(1)
			}
		})
		wg.Go(func() { // the socket
			for ctx.Err() == nil {
				k := valid[rng.IntN(len(valid))]
				r, err := sock.Verify(context.Background(), k.Secret, "tool:data:read")
				if err != nil || !r.Allowed() {
					wrong("socket verify: %v %v", r.Status, err)
				}
				verifies.Add(1)
			}
		})
	}
	wg.Go(func() { // a trickle of writes
		rng := rand.New(rand.NewPCG(9, 9))
		for i := 0; ctx.Err() == nil; i++ {
			var k keyAnswer
			code, _, err := adminCall(d.addr, "POST", "/v1/admin/keys", map[string]any{"subject": fmt.Sprint("soak-w-", i)}, &k)
			if err != nil || code != 201 {
				wrong("create: %d %v", code, err)
				continue
			}
			switch rng.IntN(3) {
			case 0:
				code, _, err = adminCall(d.addr, "POST", "/v1/admin/keys/"+k.ID+"/rotate", nil, nil)
			case 1:
				code, _, err = adminCall(d.addr, "DELETE", "/v1/admin/keys/"+k.ID, nil, nil)
			default:
				code, _, err = adminCall(d.addr, "POST", "/v1/admin/revocations", map[string]any{"jti": fmt.Sprint("soak-revoked-", i), "expires_at": time.Now().Add(time.Hour).Unix()}, nil)
			}
			if err != nil || code/100 != 2 {
				wrong("write: %d %v", code, err)
			}
			writes.Add(2)
			time.Sleep(100 * time.Millisecond)
		}
	})

	start := time.Now()
	var samples []soakSample
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
			s := soakSample{at: time.Since(start), goroutines: metricValue(t, d.addr, "go_goroutines"),
				heap: metricValue(t, d.addr, "go_memstats_heap_inuse_bytes"), rss: metricValue(t, d.addr, "process_resident_memory_bytes"),
				fds: metricValue(t, d.addr, "process_open_fds"), verifies: verifies.Load(), writes: writes.Load(), wrongAnswer: wrongAnswers.Load()}
			samples = append(samples, s)
			t.Logf("%v: %v goroutines, heap %.1f MiB, RSS %.1f MiB, %v fds; %d verifications, %d writes, %d wrong",
				s.at.Round(time.Second), s.goroutines, s.heap/(1<<20), s.rss/(1<<20), s.fds, s.verifies, s.writes, s.wrongAnswer)
		}
	}
	wg.Wait()
	if len(samples) < 10 {
		t.Fatalf("%d samples", len(samples))
	}
	fifth := len(samples) / 5
	avg := func(ss []soakSample, f func(soakSample) float64) float64 {
		var sum float64
		for _, s := range ss {
			sum += f(s)
		}
		return sum / float64(len(ss))
	}
	early, late := samples[fifth:2*fifth], samples[len(samples)-fifth:]
	for _, c := range []struct {
		name       string
		f          func(soakSample) float64
		factor, by float64
	}{
		{"goroutines", func(s soakSample) float64 { return s.goroutines }, 1, 10},
		{"heap bytes", func(s soakSample) float64 { return s.heap }, 1.25, 16 << 20},
		{"resident bytes", func(s soakSample) float64 { return s.rss }, 1.25, 32 << 20},
		{"open files", func(s soakSample) float64 { return s.fds }, 1, 10},
	} {
		e, l := avg(early, c.f), avg(late, c.f)
		t.Logf("%s: %.0f in the second fifth, %.0f in the last", c.name, e, l)
		if l > e*c.factor+c.by {
			t.Errorf("%s grew from %.0f to %.0f over the soak", c.name, e, l)
		}
	}
	t.Logf("soak of %v: %d verifications (%.0f/s), %d writes, %d wrong answers",
		total, verifies.Load(), float64(verifies.Load())/total.Seconds(), writes.Load(), wrongAnswers.Load())
}
