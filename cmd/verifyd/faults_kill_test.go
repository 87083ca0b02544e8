package main

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// killKey is a key as the writers of TestFaultKillDuringWrites know it: its
// acknowledged secrets, and which writes were sent (and maybe lost with the
// process) or acknowledged.
type killKey struct {
	id       string
	secrets  []string // acknowledged, oldest first; the last is current
	rotating bool     // a rotation was sent and not acknowledged
	revoking bool     // a revocation was sent
	revoked  bool     // a revocation was acknowledged
	round    int      // the round that created it
}

// settled reports whether nothing was sent to k that is not acknowledged.
func (k *killKey) settled() bool { return !k.rotating && (k.revoking == k.revoked) }

// killJWT is a JWT whose jti a writer revoked.
type killJWT struct {
	token   string
	revoked bool // acknowledged
	round   int
}

// killHistory is every write the writers sent and what became of it.
type killHistory struct {
	mu     sync.Mutex
	keys   []*killKey
	jwts   []*killJWT
	acked  atomic.Int64
	unsure atomic.Int64 // sent, no answer: the process was killed
}

// write sends one random write and records it: a key created, rotated or
// revoked, or a JWT revoked by jti. It returns false when the daemon did
// not answer.
func (h *killHistory) write(t *testing.T, d *daemon, rng *rand.Rand, round int, n int64) bool {
	h.mu.Lock()
	var k *killKey
	if len(h.keys) > 0 {
		k = h.keys[rng.IntN(len(h.keys))]
	}
	op := rng.IntN(10)
	switch {
	case op < 4 || k == nil || !k.settled() || k.revoked:
		op = 0 // create
	case op < 6:
		op = 1 // rotate
		k.rotating = true
	case op < 8:
		op = 2 // revoke the key
		k.revoking = true
	default:
		op = 3 // revoke a JWT
	}
	h.mu.Unlock()

	var ans keyAnswer
	var err error
	var code int
	switch op {
	case 0:
		kind := []string{"api_key", "agent", "pat"}[rng.IntN(3)]
		code, _, err = adminCall(d.addr, "POST", "/v1/admin/keys", map[string]any{"subject": fmt.Sprint("kill-", n), "kind": kind}, &ans)
		if err == nil && code == 201 {
			h.mu.Lock()
			h.keys = append(h.keys, &killKey{id: ans.ID, secrets: []string{ans.Secret}, round: round})
			h.mu.Unlock()
		}
	case 1:
		code, _, err = adminCall(d.addr, "POST", "/v1/admin/keys/"+k.id+"/rotate", nil, &ans)
		if err == nil && code == 200 {
			h.mu.Lock()
			k.secrets, k.rotating = append(k.secrets, ans.Secret), false
			h.mu.Unlock()
		}
	case 2:
		code, _, err = adminCall(d.addr, "DELETE", "/v1/admin/keys/"+k.id, nil, &ans)
		if err == nil && code == 200 {
			h.mu.Lock()
			k.revoked = true
			h.mu.Unlock()
		}
	case 3:
		jti := fmt.Sprintf("kill-jti-%d", n)
		j := &killJWT{token: faultJWT(t, fmt.Sprint("kill-sub-", n), jti), round: round}
		code, _, err = adminCall(d.addr, "POST", "/v1/admin/revocations", map[string]any{"jti": jti}, nil)
		if err == nil && code == 201 {
			j.revoked = true
			h.mu.Lock()
			h.jwts = append(h.jwts, j)
			h.mu.Unlock()
		}
	}
	switch {
	case err != nil:
		h.unsure.Add(1)
		return false
	case code/100 != 2:
		t.Errorf("write %d answered %d", op, code)
		return false
	}
	h.acked.Add(1)
	return true
}

// check verifies, against the daemon, what the history says of the keys and
// JWTs it is given: every acknowledged creation exists; no secret of a key
// whose revocation was acknowledged verifies, nor a secret rotated out by an
// acknowledged rotation, nor a JWT whose revocation was acknowledged; the
// current secret of a settled, unrevoked key verifies. It returns how many
// acknowledged writes it checked.
func (h *killHistory) check(t *testing.T, d *daemon, keys []*killKey, jwts []*killJWT) int {
	t.Helper()
	checked := 0
	for _, k := range keys {
		checked += len(k.secrets)
		if k.revoked {
			checked++
		}
		if code, _, err := adminCall(d.addr, "GET", "/v1/admin/keys/"+k.id, nil, nil); err != nil || code != 200 {
			t.Errorf("key %s (round %d): GET answered %d, %v: an acknowledged creation is lost", k.id, k.round, code, err)
			continue
		}
		for i, s := range k.secrets {
			code, status, err := verifyStatus(d.addr, s, "")
			if err != nil {
				t.Fatal(err)
			}
			current := i == len(k.secrets)-1
			switch {
			case k.revoked && code != 401:
				t.Errorf("key %s (round %d): secret %d of a key whose revocation was acknowledged answered %d %s", k.id, k.round, i, code, status)
			case !current && code != 401:
				t.Errorf("key %s (round %d): secret %d, rotated out by an acknowledged rotation, answered %d %s", k.id, k.round, i, code, status)
			case current && k.settled() && !k.revoked && code != 200:
				t.Errorf("key %s (round %d): the current secret answered %d %s", k.id, k.round, code, status)
			}
		}
	}
	for _, j := range jwts {
		checked++
		if code, status, err := verifyStatus(d.addr, j.token, ""); err != nil || code != 401 || status != "revoked" {
			t.Errorf("JWT of round %d whose revocation was acknowledged answered %d %s (%v)", j.round, code, status, err)
		}
	}
	return checked
}

// TestFaultKillDuringWrites runs writers (creates, rotations and
// revocations of keys, and JWT revocations) against the daemon and kills
// it with SIGKILL at a random moment, then restarts it on the same store,
// round after round. Pass (SECURITY.md §3.3.1): after every restart,
// every acknowledged creation exists, every acknowledged revocation holds
// (no revoked key or JWT verifies), every acknowledged rotation holds, and
// the start-up stays within 30 s; writes that were in flight may or may not
// have happened.
func TestFaultKillDuringWrites(t *testing.T) {
	rounds := 5
	if faultsLong() {
		rounds = 1000
	}
	dataDir := t.TempDir()
	cfg := faultConfig("")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	var h killHistory
	var seq atomic.Int64
	control := faultJWT(t, "kill-control", "kill-control-jti") // never revoked
	var maxStart, totalStart time.Duration
	checkedTotal := 0
	for round := 0; round <= rounds; round++ {
		began := time.Now()
		d := startFaultDaemon(t, dataDir, cfg)
		started := time.Since(began)
		totalStart += started
		maxStart = max(maxStart, started)

		// Check what the rounds so far left: everything in short mode,
		// the last round and a sample of the earlier ones in long mode.
		h.mu.Lock()
		var keys []*killKey
		var jwts []*killJWT
		for _, k := range h.keys {
			if !faultsLong() || k.round == round-1 || rng.IntN(len(h.keys)) < 50 {
				keys = append(keys, k)
			}
		}
		for _, j := range h.jwts {
			if !faultsLong() || j.round == round-1 || rng.IntN(len(h.jwts)) < 20 {
				jwts = append(jwts, j)
			}
		}
		h.mu.Unlock()
		checkedTotal += h.check(t, d, keys, jwts)
		if code, status, err := verifyStatus(d.addr, control, ""); err != nil || code != 200 {
			t.Fatalf("round %d: an unrevoked JWT answered %d %s (%v)", round, code, status, err)
		}
		if t.Failed() {
			t.Fatalf("round %d: acknowledged writes lost after kill -9:\n%s", round, d.output())
		}
		if round == rounds {
			break
		}

		var wg sync.WaitGroup
		for w := range 4 {
			wrng := rand.New(rand.NewPCG(rng.Uint64(), uint64(w)))
			wg.Go(func() {
				for h.write(t, d, wrng, round, seq.Add(1)) {
				}
			})
		}
		time.Sleep(time.Duration(20+rng.IntN(230)) * time.Millisecond)
		d.kill()
		wg.Wait()
	}
	t.Logf("%d rounds of kill -9 during writes: %d writes acknowledged, %d in flight at a kill; %d acknowledged writes checked after restarts, 0 lost; start-up %v on average, %v at most",
		rounds, h.acked.Load(), h.unsure.Load(), checkedTotal, totalStart/time.Duration(rounds+1), maxStart)
}
