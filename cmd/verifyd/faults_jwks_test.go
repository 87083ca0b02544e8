package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// faultIDP is a JWKS endpoint on loopback that publishes ES256 keys and,
// on demand, fails in each way SECURITY.md §3.3.5 lists.
type faultIDP struct {
	addr    string
	srv     *http.Server
	mu      sync.Mutex
	ln      net.Listener // nil while down
	keys    map[string]*ecdsa.PrivateKey
	order   []string // kids as published
	mode    string   // "" serves the keys
	release chan struct{}
	stalled chan struct{} // receives when a request starts to stall
	fetches atomic.Int64
	written atomic.Int64 // bytes of the last "huge" answer
}

func newFaultIDP(t *testing.T, kids ...string) *faultIDP {
	p := &faultIDP{keys: map[string]*ecdsa.PrivateKey{}, release: make(chan struct{}), stalled: make(chan struct{}, 1)}
	for _, kid := range kids {
		p.add(t, kid)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr, p.ln = ln.Addr().String(), ln
	p.srv = &http.Server{Handler: http.HandlerFunc(p.serve)}
	p.srv.SetKeepAlivesEnabled(false) // "down" must refuse every fetch
	go p.srv.Serve(ln)
	t.Cleanup(func() {
		p.setMode("")
		p.srv.Close()
	})
	return p
}

func (p *faultIDP) add(t *testing.T, kid string) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.keys[kid] = k
	p.order = append(p.order, kid)
	p.mu.Unlock()
}

func (p *faultIDP) drop(kid string) {
	p.mu.Lock()
	p.order = slices.DeleteFunc(p.order, func(k string) bool { return k == kid })
	p.mu.Unlock()
}

// setMode switches the endpoint to mode, releasing a stalled request and
// taking the listener down ("down") or up again.
func (p *faultIDP) setMode(mode string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode == "stall" {
		close(p.release)
		p.release = make(chan struct{})
	}
	p.mode = mode
	switch {
	case mode == "down" && p.ln != nil:
		p.ln.Close()
		p.ln = nil
	case mode != "down" && p.ln == nil:
		ln, err := net.Listen("tcp", p.addr)
		if err != nil {
			panic(err) // the port was just released
		}
		p.ln = ln
		go p.srv.Serve(ln)
	}
}

func jwkOf(kid string, k *ecdsa.PrivateKey) map[string]any {
	pt, _ := k.PublicKey.Bytes()
	return map[string]any{"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
		"x": b64url.EncodeToString(pt[1:33]), "y": b64url.EncodeToString(pt[33:])}
}

func (p *faultIDP) serve(w http.ResponseWriter, r *http.Request) {
	p.fetches.Add(1)
	p.mu.Lock()
	mode, release := p.mode, p.release
	var keys []map[string]any
	for _, kid := range p.order {
		keys = append(keys, jwkOf(kid, p.keys[kid]))
	}
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	set := func(keys ...map[string]any) { json.NewEncoder(w).Encode(map[string]any{"keys": keys}) }
	switch mode {
	case "":
		set(keys...)
	case "stall":
		select {
		case p.stalled <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	case "500":
		http.Error(w, "oops", http.StatusInternalServerError)
	case "empty object":
		w.Write([]byte(`{}`))
	case "no keys":
		w.Write([]byte(`{"keys":[]}`))
	case "invalid JSON":
		w.Write([]byte(`{"keys":[{"kty":"EC",`))
	case "huge":
		chunk := bytes.Repeat([]byte(" "), 64<<10)
		w.Write([]byte(`{"keys":[`))
		var n int64
		for n < 50<<20 {
			m, err := w.Write(chunk)
			n += int64(m)
			if err != nil {
				break
			}
		}
		p.written.Store(n)
	case "invalid point":
		bad := jwkOf("es-bad", p.keys[p.order[0]])
		y, _ := b64url.DecodeString(bad["y"].(string))
		y[31] ^= 1
		bad["y"] = b64url.EncodeToString(y)
		set(append(keys, bad)...)
	case "duplicate kids":
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		set(append(keys, jwkOf(p.order[0], k))...)
	case "no usable key":
		set(map[string]any{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": "rsa-1", "e": "AQAB", "n": b64url.EncodeToString(bytes.Repeat([]byte{0xc5}, 256))})
	case "private key":
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		priv := jwkOf("es-priv", k)
		priv["d"] = b64url.EncodeToString(k.D.FillBytes(make([]byte, 32)))
		set(append(keys, priv)...)
	}
}

// sign returns an ES256 token under kid, signed with the key of signer.
func (p *faultIDP) sign(t *testing.T, signer, kid, sub string) string {
	p.mu.Lock()
	k := p.keys[signer]
	p.mu.Unlock()
	input := jwsInput(t, "ES256", kid, jwtClaims(sub, time.Hour))
	d := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, k, d[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + b64url.EncodeToString(sig)
}

// trustStatus returns the status of the trust source "idp".
func trustStatus(t *testing.T, d *daemon) (keys int, lastError string, stale bool) {
	t.Helper()
	var st struct {
		Sources []struct {
			Name      string `json:"name"`
			Keys      int    `json:"keys"`
			LastError string `json:"last_error"`
			Stale     bool   `json:"stale"`
		} `json:"sources"`
	}
	if code, b, err := adminCall(d.addr, "GET", "/v1/admin/trust", nil, &st); err != nil || code != 200 {
		t.Fatalf("trust status: %d %s %v", code, b, err)
	}
	for _, s := range st.Sources {
		if s.Name == "idp" {
			return s.Keys, s.LastError, s.Stale
		}
	}
	t.Fatalf("no source idp in %+v", st)
	return
}

// TestFaultJWKS runs the daemon against a JWKS endpoint that goes down,
// stalls, answers 500, {}, {"keys":[]}, invalid JSON, a 50 MB body, a key
// that is not a point of P-256, duplicate kids, a set without a usable key
// and a set with a private key; then floods it with tokens naming random
// kids; then rotates keys. Pass (SECURITY.md §3.3.5 and §3.3.6): after each
// failed fetch the daemon keeps the last good set (one key, not stale,
// the failure in last_error) and tokens of that key verify, including
// while a fetch stalls; the 50 MB body is not read to its end; a flood of
// unknown kids fetches at most once per unknown_kid_refresh (plus the
// periodic refreshes); a key published beside the old one verifies at its
// first token, after one fetch, and the old one is refused once a refresh
// has seen it withdrawn.
func TestFaultJWKS(t *testing.T) {
	p := newFaultIDP(t, "es-1")
	const refresh, kidRefresh = time.Second, 200 * time.Millisecond
	d := startFaultDaemon(t, t.TempDir(), fmt.Sprintf(`
trust:
  fetch_timeout: 500ms
  unknown_kid_refresh: %v
  sources:
    - name: idp
      jwks_url: http://%s/jwks.json
      refresh: %v
      issuer: https://issuer.example
      audience: [verifyd]
`, kidRefresh, p.addr, refresh))
	var n atomic.Int64
	token := func(signer, kid string) string { return p.sign(t, signer, kid, fmt.Sprint("jwks-user-", n.Add(1))) }
	expect := func(what, tok string, status int, reason string) time.Duration {
		t.Helper()
		start := time.Now()
		code, s, err := verifyStatus(d.addr, tok, "")
		took := time.Since(start)
		if err != nil || code != status || s != reason {
			t.Fatalf("%s: %d %s (%v), want %d %s\n%s", what, code, s, err, status, reason, d.output())
		}
		return took
	}
	expect("a token of the published key", token("es-1", "es-1"), 200, "ok")

	// A refresh is forced by a token naming an unknown kid, once
	// unknown_kid_refresh has passed since the last one.
	var baseline []time.Duration
	for range 50 {
		baseline = append(baseline, expect("baseline", token("es-1", "es-1"), 200, "ok"))
	}
	var stalled []time.Duration
	faults := []struct{ mode, err string }{
		{"down", "connection refused"},
		{"stall", "timed out"},
		{"500", "status 500"},
		{"empty object", `no "keys" member`},
		{"no keys", "no usable ES256 key"},
		{"invalid JSON", "not JSON"},
		{"huge", "body larger than"},
		{"invalid point", "not a point of P-256"},
		{"duplicate kids", "is also the kid of"},
		{"no usable key", "no usable ES256 key"},
		{"private key", "private key"},
	}
	for _, f := range faults {
		p.setMode(f.mode)
		deadline := time.Now().Add(20 * time.Second)
		for {
			if f.mode == "stall" {
				// Fresh tokens of the known key while a fetch stalls.
				done := make(chan struct{})
				go func() {
					defer close(done)
					verifyStatus(d.addr, token("es-1", "unknown-"+fmt.Sprint(n.Load())), "")
				}()
				select {
				case <-p.stalled:
				case <-time.After(20 * time.Second):
					t.Fatal("no fetch stalled in 20s")
				}
				for range 50 {
					stalled = append(stalled, expect("a token during a stalled fetch", token("es-1", "es-1"), 200, "ok"))
				}
				<-done
			}
			expect("a token naming an unknown kid", token("es-1", "unknown-"+fmt.Sprint(n.Load())), 401, "untrusted_key")
			keys, lastErr, stale := trustStatus(t, d)
			if keys != 1 || stale {
				t.Fatalf("%s: the source has %d keys (stale %v), want the last good one", f.mode, keys, stale)
			}
			if strings.Contains(lastErr, f.err) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no failed fetch in 20s; last error %q", f.mode, lastErr)
			}
			time.Sleep(100 * time.Millisecond)
		}
		expect(f.mode+": a fresh token of the last good key", token("es-1", "es-1"), 200, "ok")
		if f.mode == "huge" && p.written.Load() >= 50<<20 {
			t.Errorf("the 50 MB body was read to its end")
		}
		t.Logf("%s: refused, last good set kept", f.mode)
	}
	p.setMode("")

	// A flood of unknown kids.
	before := p.fetches.Load()
	start := time.Now()
	var wg sync.WaitGroup
	const flood = 400
	var wrong atomic.Int64
	for w := range 4 {
		wg.Go(func() {
			for i := range flood / 4 {
				code, _, err := verifyStatus(d.addr, token("es-1", fmt.Sprintf("flood-%d-%d", w, i)), "")
				if err != nil || code != 401 {
					wrong.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	fetches := p.fetches.Load() - before
	if limit := 2 + int64(elapsed/kidRefresh) + int64(elapsed/refresh); fetches > limit || wrong.Load() > 0 {
		t.Errorf("a flood of %d unknown kids over %v: %d fetches (at most %d), %d wrong answers", flood, elapsed, fetches, limit, wrong.Load())
	}
	t.Logf("flood of %d unknown kids over %v: %d fetches", flood, elapsed, fetches)

	// Rotation: es-2 is published beside es-1; its first token makes one
	// fetch and verifies.
	old := token("es-1", "es-1")
	expect("old key before the rotation", old, 200, "ok")
	time.Sleep(kidRefresh + 50*time.Millisecond) // out of the unknown-kid rate limit
	p.add(t, "es-2")
	published := time.Now()
	before = p.fetches.Load()
	// The lookup may join a periodic fetch answered just before the
	// publication; the next kid-triggered one then brings the key.
	first := token("es-2", "es-2")
	if code, s, err := verifyStatus(d.addr, first, ""); err != nil || code != 200 {
		t.Logf("the first token of the new key answered %d %s (%v): it joined an earlier fetch; once more", code, s, err)
		time.Sleep(kidRefresh + 50*time.Millisecond)
		expect("the first token of a new key, before the next periodic refresh", first, 200, "ok")
	}
	t.Logf("the first token of a newly published key verified %v after the publication, after %d fetch(es)",
		time.Since(published).Round(time.Millisecond), p.fetches.Load()-before)
	expect("old key during the overlap", old, 200, "ok")
	// es-1 is withdrawn: refused once a fetch has seen it gone.
	p.drop("es-1")
	dropped := time.Now()
	before = p.fetches.Load()
	for p.fetches.Load() < before+2 {
		if time.Since(dropped) > 20*time.Second {
			t.Fatal("no refresh in 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	expect("a cached token of the withdrawn key", old, 401, "untrusted_key")
	expect("a fresh token of the withdrawn key", token("es-1", "es-1"), 401, "untrusted_key")
	expect("the new key after the withdrawal", token("es-2", "es-2"), 200, "ok")
	t.Logf("the withdrawn key was refused %v after it left the set (refresh %v)", time.Since(dropped).Round(time.Millisecond), refresh)

	if faultsLong() {
		b, s := percentile99(baseline), percentile99(stalled)
		t.Logf("verify p99 of fresh ES256 tokens over HTTP: %v; during stalled fetches: %v (%d tokens)", b, s, len(stalled))
		if s > 10*b+10*time.Millisecond {
			t.Errorf("verification slowed by a stalled JWKS fetch: p99 %v against %v", s, b)
		}
	}
}
