package ipc

import (
	"log/slog"
	"testing"
	"time"

	"github.com/verifyd/verifyd/verify/throttle"
)

// newThrottledEnv starts a server whose throttle trips after 3 failures,
// counting socket peers when peers is set.
func newThrottledEnv(t *testing.T, peers bool) *env {
	t.Helper()
	cfg := throttle.DefaultConfig()
	cfg.Failures, cfg.KeyFailures, cfg.Cooldown, cfg.SocketPeers = 3, 3, time.Hour, peers
	return newEnv(t, func(o *Options) {
		l, err := throttle.New(cfg, &throttle.Options{Registerer: o.Registerer, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		o.Throttle = l
	})
}

// TestThrottlePeerUID trips the cool-down of this process's uid: its
// connections, the ones open and new ones alike, get RATE_LIMITED, valid
// key included.
func TestThrottlePeerUID(t *testing.T) {
	e := newThrottledEnv(t, true)
	c, other := e.dial(), e.dial()
	if r := c.verify(1, e.token, "orders:read"); r.Status != StatusOK {
		t.Fatalf("valid key: %v", r.Status)
	}
	for i := uint64(0); i < 3; i++ {
		if r := c.verify(2+i, "unknown-key-0123456789", ""); r.Status != StatusUnknown {
			t.Fatalf("unknown key: %v", r.Status)
		}
	}
	for _, conn := range []*tconn{c, other, e.dial()} {
		if r := conn.verify(9, e.token, "orders:read"); r.Status != StatusRateLimited || r.Subject != "" {
			t.Errorf("after the failures: %+v", r)
		}
	}
	if got := e.metric("verifyd_throttle_rejected_total", "source"); got != 3 {
		t.Errorf("rejected{reason=source} = %v", got)
	}
}

// TestThrottleSocketDefault: by default the socket's peers are not
// counted, PAT ids are.
func TestThrottleSocketDefault(t *testing.T) {
	e := newThrottledEnv(t, false)
	c := e.dial()
	for i := uint64(0); i < 10; i++ {
		if r := c.verify(i, "unknown-key-0123456789", ""); r.Status != StatusUnknown {
			t.Fatalf("unknown key %d: %v", i, r.Status)
		}
	}
	if r := c.verify(20, e.token, "orders:read"); r.Status != StatusOK {
		t.Fatalf("valid key: %v", r.Status)
	}
	const pat = "pat_AAAAAAAAAAAAAAAAAAAAAA_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	for i := uint64(0); i < 3; i++ {
		c.verify(30+i, pat, "")
	}
	if r := c.verify(40, pat, ""); r.Status != StatusRateLimited {
		t.Errorf("a PAT id in a cool-down: %v", r.Status)
	}
}
