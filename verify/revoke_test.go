package verify

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verifyd/verifyd/keystore"
)

// TestVerifyAfterRevokeNeverSucceeds drives the whole decision path:
// readers verify the same keys continuously while a writer revokes or
// rotates them through the Manager. A reader loads a key's "written" mark
// before its Verify starts; a Verify that started after the write returned
// must refuse the old secret. Bounded in keys, reads and time.
func TestVerifyAfterRevokeNeverSucceeds(t *testing.T) {
	const keys, readers, maxReads = 64, 3, 200000
	// A cache much smaller than the key set keeps evicting, so that many
	// verifications read the store and refill the cache while the writes
	// happen: stale asynchronous cache fills are then in play.
	f := newFixtureWith(t, &keystore.Options{CacheEntries: keys / 8})
	type key struct {
		id, secret string
		rotate     bool
		written    atomic.Bool
	}
	ks := make([]key, keys)
	for i := range ks {
		rec, secret := f.create(t, KeySpec{Subject: "stress", Kind: keystore.KindAgent, Scopes: []string{"mailbox:stress:*"}})
		ks[i] = key{id: rec.ID, secret: secret, rotate: i%2 == 1}
	}
	deadline := time.Now().Add(20 * time.Second)
	var allWritten atomic.Bool
	var checked, violations atomic.Int64
	var wg sync.WaitGroup
	for r := range readers {
		wg.Go(func() {
			after := 0 // reads started after the last write returned
			for i := 0; i < maxReads && after < 2*keys && time.Now().Before(deadline); i++ {
				if allWritten.Load() {
					after++
				}
				k := &ks[(i*7+r)%keys]
				written := k.written.Load()
				res := f.v.Verify(k.secret, "mailbox:stress:inbox")
				if written {
					checked.Add(1)
					if res.Allowed() && violations.Add(1) <= 3 {
						t.Errorf("key %s (rotate %v) verified after its write returned", k.id, k.rotate)
					}
				}
			}
		})
	}
	for i := range ks {
		k := &ks[i]
		var err error
		if k.rotate {
			_, _, err = f.m.RotateKey(context.Background(), k.id, 0)
		} else {
			_, err = f.m.RevokeKey(context.Background(), k.id)
		}
		if err != nil {
			t.Fatal(err)
		}
		k.written.Store(true)
	}
	allWritten.Store(true)
	wg.Wait()
	if checked.Load() == 0 {
		t.Fatal("no Verify started after a write returned")
	}
}
