package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verifyd/verifyd/ipc"
)

// TestFaultSIGTERMUnderLoad sends SIGTERM to the daemon while HTTP and
// socket clients verify and an admin client creates keys, then starts it
// again. Pass (SECURITY.md §3.3.10): every request either gets a right
// answer (a valid key allowed, an unknown one refused) or no answer at
// all, never a wrong one nor a 5xx; the daemon exits 0 within the shutdown
// timeout, logging a clean stop; the next start logs no warning or error,
// and every key whose creation was acknowledged verifies.
func TestFaultSIGTERMUnderLoad(t *testing.T) {
	rounds := 2
	if faultsLong() {
		rounds = 20
	}
	dataDir := t.TempDir()
	// The default shutdown timeout, 10s: a connection that has sent
	// nothing yet (an HTTP client's spare) counts as active for its first
	// 5s, so a shorter timeout can expire on it.
	cfg := faultConfig("")
	var created []keyAnswer
	var answered, unanswered, acked atomic.Int64
	for round := range rounds {
		d := startFaultDaemon(t, dataDir, cfg)
		if round > 0 {
			if out := d.output(); strings.Contains(out, "level=WARN") || strings.Contains(out, "level=ERROR") {
				t.Errorf("round %d: the start after a clean stop warned:\n%s", round, out)
			}
		}
		for _, k := range created {
			if code, s, err := verifyStatus(d.addr, k.Secret, ""); err != nil || code != 200 {
				t.Fatalf("round %d: a key whose creation was acknowledged answers %d %s (%v)", round, code, s, err)
			}
		}
		valid := createKeys(t, d, 10, 10)
		sock, err := ipc.Dial(context.Background(), d.socket, &ipc.ClientOptions{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		stop := make(chan struct{})
		wrong := func(format string, args ...any) {
			t.Errorf("round %d: "+format, append([]any{round}, args...)...)
		}
		for w := range 4 {
			client := &http.Client{Timeout: 10 * time.Second} // its own keep-alive connections
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					tok, want := valid[i%len(valid)].Secret, 200
					if i%3 == 0 {
						tok, want = fmt.Sprintf("unknown-key-%d-%d-%d-000000000000000", round, w, i), 401
					}
					resp, err := client.Post("http://"+d.addr+"/v1/verify", "application/json", strings.NewReader(`{"token":"`+tok+`"}`))
					if err != nil {
						unanswered.Add(1) // the daemon is going away
						return
					}
					resp.Body.Close()
					answered.Add(1)
					if resp.StatusCode != want {
						wrong("HTTP verify answered %d, want %d", resp.StatusCode, want)
					}
				}
			})
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					r, err := sock.Verify(context.Background(), valid[i%len(valid)].Secret, "")
					if err != nil {
						unanswered.Add(1) // the daemon is going away
						return
					}
					answered.Add(1)
					if !r.Allowed() {
						wrong("socket verify answered %v for a valid key", r.Status)
					}
				}
			})
		}
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var k keyAnswer
				code, _, err := adminCall(d.addr, "POST", "/v1/admin/keys", map[string]any{"subject": fmt.Sprintf("term-%d-%d", round, i)}, &k)
				switch {
				case err != nil:
					unanswered.Add(1)
					return
				case code != 201:
					wrong("create answered %d", code)
				default:
					acked.Add(1)
					mu.Lock()
					created = append(created, k)
					mu.Unlock()
				}
			}
		})
		time.Sleep(300 * time.Millisecond)
		start := time.Now()
		code := d.terminate()
		stopped := time.Since(start)
		close(stop)
		wg.Wait()
		sock.Close()
		if code != 0 || !strings.Contains(d.output(), "stopped cleanly") {
			t.Fatalf("round %d: exit %d after SIGTERM under load:\n%s", round, code, d.output())
		}
		if stopped > 10*time.Second+5*time.Second {
			t.Errorf("round %d: the stop took %v, with a 10s shutdown timeout", round, stopped)
		}
		created = append(created, valid...)
	}
	d := startFaultDaemon(t, dataDir, cfg)
	for _, k := range created {
		if code, s, err := verifyStatus(d.addr, k.Secret, ""); err != nil || code != 200 {
			t.Fatalf("a key whose creation was acknowledged answers %d %s (%v)", code, s, err)
		}
	}
	t.Logf("%d rounds of SIGTERM under load: %d requests answered (all right), %d unanswered at the stop; %d acknowledged creations all present", rounds, answered.Load(), unanswered.Load(), acked.Load())
}
