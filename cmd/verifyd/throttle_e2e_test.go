package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/verifyd/verifyd/ipc"
	"github.com/verifyd/verifyd/verify"
)

const throttleAdminKey = "throttle-e2e-admin-key-01"

// throttleAnswer is what a verification over HTTP answered.
type throttleAnswer struct {
	status     int
	retryAfter int
	state      string // "status" of /v1/verify, "code" of other errors
}

// postFrom sends POST /v1/verify from the local address local (a loopback
// address: each is another client to the daemon), with headers (name,
// value, ...).
func postFrom(t *testing.T, local, addr, token string, headers ...string) throttleAnswer {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext:       (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}).DialContext,
		DisableKeepAlives: true,
	}}
	req, err := http.NewRequest("POST", "http://"+addr+"/v1/verify", bytes.NewReader([]byte(`{"token":"`+token+`","scope":"tool:data:read"}`)))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Status, Code string }
	json.NewDecoder(resp.Body).Decode(&body)
	a := throttleAnswer{status: resp.StatusCode, state: body.Status}
	if a.state == "" {
		a.state = body.Code
	}
	a.retryAfter, _ = strconv.Atoi(resp.Header.Get("Retry-After"))
	return a
}

// TestThrottleEndToEnd drives the throttle of the daemon binary: a client
// address that fails too often is answered 429 (valid key included) while
// another address is served; a gateway's forwarded clients are told apart;
// the socket's peer uid trips the same way; a key's own rate limit and a
// role's are enforced; and an invalid limit is refused by the admin API.
func TestThrottleEndToEnd(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "verifyd.yaml")
	replaceFile(t, cfg, []byte(`throttle:
  failures: 5
  key_failures: 5
  window: 1m
  cooldown: 1h
  trusted_proxies: [127.0.0.9]
  socket_peers: true
  role_rate_limits: {metered: 3/h}
`))
	d := startDaemon(t, t.TempDir(), "VERIFYD_CONFIG="+cfg, "VERIFYD_ADMIN_KEY="+throttleAdminKey)
	create := func(spec string) keyAnswer {
		t.Helper()
		var k keyAnswer
		req, _ := http.NewRequest("POST", "http://"+d.addr+"/v1/admin/keys", strings.NewReader(spec))
		req.Header.Set("X-Admin-Key", throttleAdminKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		json.NewDecoder(resp.Body).Decode(&k)
		if resp.StatusCode != 201 {
			t.Fatalf("create %s: %d", spec, resp.StatusCode)
		}
		return k
	}
	good := create(`{"subject":"alice","scopes":["tool:data:*"]}`)
	limited := create(`{"subject":"bob","scopes":["tool:data:*"],"metadata":{"rate_limit":"2/h"}}`)
	metered := create(`{"subject":"carol","scopes":["tool:data:*"],"roles":["metered"]}`)

	// Rate limits: the key's own, then the role's; other keys are not
	// slowed by them.
	for i, want := range []int{200, 200, 429} {
		if a := postFrom(t, "127.0.0.2", d.addr, limited.Secret); a.status != want {
			t.Errorf("limited key, request %d: %+v, want %d", i+1, a, want)
		}
	}
	for i, want := range []int{200, 200, 200, 429} {
		if a := postFrom(t, "127.0.0.2", d.addr, metered.Secret); a.status != want || want == 429 && (a.state != "rate_limited" || a.retryAfter < 1) {
			t.Errorf("metered key, request %d: %+v, want %d", i+1, a, want)
		}
	}
	if a := postFrom(t, "127.0.0.2", d.addr, good.Secret); a.status != 200 {
		t.Errorf("unlimited key: %+v", a)
	}

	// A client address guessing: 5 failures, then even a valid key is
	// refused, for the cool-down; another address is served.
	for i := 0; i < 5; i++ {
		if a := postFrom(t, "127.0.0.3", d.addr, fmt.Sprintf("guessed-key-%020d", i)); a.status != 401 || a.state != "unknown" {
			t.Fatalf("guess %d: %+v", i, a)
		}
	}
	if a := postFrom(t, "127.0.0.3", d.addr, good.Secret); a.status != 429 || a.state != "rate_limited" || a.retryAfter < 3500 || a.retryAfter > 3600 {
		t.Errorf("valid key from the throttled address: %+v", a)
	}
	if a := postFrom(t, "127.0.0.4", d.addr, good.Secret); a.status != 200 {
		t.Errorf("valid key from another address: %+v", a)
	}

	// A trusted proxy's clients are told apart by X-Forwarded-For; what a
	// client writes in the header itself does not count (the rightmost
	// address is the one the proxy appended).
	for i := 0; i < 5; i++ {
		postFrom(t, "127.0.0.9", d.addr, "guessed-key-000000000000000000", "X-Forwarded-For", "192.0.2.66, 198.51.100.7")
	}
	if a := postFrom(t, "127.0.0.9", d.addr, good.Secret, "X-Forwarded-For", "198.51.100.7"); a.status != 429 {
		t.Errorf("the forwarded guessing client: %+v", a)
	}
	if a := postFrom(t, "127.0.0.9", d.addr, good.Secret, "X-Forwarded-For", "192.0.2.66"); a.status != 200 {
		t.Errorf("the address the guessing client wrote itself: %+v", a)
	}
	// An address that is not a trusted proxy cannot choose its source.
	if a := postFrom(t, "127.0.0.3", d.addr, good.Secret, "X-Forwarded-For", "192.0.2.1"); a.status != 429 {
		t.Errorf("the throttled address naming another client: %+v", a)
	}

	// The socket: this process's uid guesses and is throttled, on every
	// connection.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := ipc.Dial(ctx, d.socket, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if r, err := c.Verify(ctx, good.Secret, "tool:data:read"); err != nil || r.Status != verify.OK {
		t.Fatalf("socket, valid key: %v %v", r.Status, err)
	}
	for i := 0; i < 5; i++ {
		if r, err := c.Verify(ctx, fmt.Sprintf("guessed-key-%020d", i), ""); err != nil || r.Status != verify.Unknown {
			t.Fatalf("socket guess %d: %v %v", i, r.Status, err)
		}
	}
	if r, err := c.Verify(ctx, good.Secret, "tool:data:read"); err != nil || r.Status != verify.RateLimited {
		t.Errorf("socket, valid key after the guesses: %v %v", r.Status, err)
	}
	// HTTP from an address that has not failed is still served.
	if a := postFrom(t, "127.0.0.4", d.addr, good.Secret); a.status != 200 {
		t.Errorf("HTTP after the socket's cool-down: %+v", a)
	}

	// The admin API refuses a rate limit it cannot read, and stores nothing.
	var list struct{ Keys []keyAnswer }
	req, _ := http.NewRequest("POST", "http://"+d.addr+"/v1/admin/keys", strings.NewReader(`{"subject":"dave","metadata":{"rate_limit":"100/d"}}`))
	req.Header.Set("X-Admin-Key", throttleAdminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	req, _ = http.NewRequest("GET", "http://"+d.addr+"/v1/admin/keys", nil)
	req.Header.Set("X-Admin-Key", throttleAdminKey)
	lr, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(lr.Body).Decode(&list)
	lr.Body.Close()
	if resp.StatusCode != 400 || len(list.Keys) != 3 {
		t.Errorf("invalid rate_limit: %d, then %d keys", resp.StatusCode, len(list.Keys))
	}

	for series, want := range map[string]string{
		`verifyd_throttle_rejected_total{interface="http",reason="credential"}`: "2",
		`verifyd_throttle_rejected_total{interface="http",reason="source"}`:     "3",
		`verifyd_throttle_rejected_total{interface="socket",reason="source"}`:   "1",
		`verifyd_throttle_cooldowns_total{interface="http",kind="source"}`:      "2",
		`verifyd_throttle_cooldowns_total{interface="socket",kind="source"}`:    "1",
	} {
		if got := d.metric(series); got != want {
			t.Errorf("%s = %q, want %s", series, got, want)
		}
	}
	waitFor(t, "the log of a cool-down", func() bool { return strings.Contains(d.output(), "too many failed verifications from one source") })
}

// TestThrottleConfigErrors checks that an invalid throttle section stops
// verifyd at start with exit status 2, naming every problem.
func TestThrottleConfigErrors(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "verifyd.yaml")
	replaceFile(t, cfg, []byte("throttle:\n  failures: -1\n  trusted_proxies: [10.0.0.0/40]\n  role_rate_limits: {r: fast}\n"))
	code, out := runOnce(t, nil, "--data-dir", t.TempDir(), "--config", cfg, "--http-addr", "127.0.0.1:0")
	for _, want := range []string{"throttle.failures", "10.0.0.0/40", "role_rate_limits.r"} {
		if code != exitConfig || !strings.Contains(out, want) {
			t.Errorf("exit %d, want %d naming %s:\n%s", code, exitConfig, want, out)
		}
	}
}
