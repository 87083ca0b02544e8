package loadgen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/verifyd/verifyd/internal/adminclient"
)

// keyLifetime is the validity of created keys: an interrupted run leaves
// nothing valid for long.
const keyLifetime = 24 * time.Hour

// keySubject is the subject of created keys, followed by their index.
const keySubject = "verifybench-"

// key is one API key of the run.
type key struct {
	id      string
	subject string
	secret  string
}

// createKeys creates n API keys granting grantedPattern, conns admin calls
// at a time. On failure it returns the keys created so far with the
// error, so that the caller can revoke them.
func createKeys(ctx context.Context, c *adminclient.Client, n, conns int) ([]key, error) {
	keys := make([]key, n)
	var next atomic.Int64
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for range min(conns, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				sub := keySubject + strconv.Itoa(i)
				k, err := c.CreateKey(ctx, adminclient.KeySpec{
					Subject:   sub,
					Kind:      adminclient.KindAPIKey,
					Name:      "verifybench",
					Scopes:    []string{grantedPattern},
					ExpiresIn: adminclient.Duration(keyLifetime),
				})
				if err != nil {
					cancel(fmt.Errorf("loadgen: create key %d of %d: %w", i+1, n, err))
					return
				}
				if !strings.HasPrefix(k.Secret, "vk_") || len(k.Secret) != 43 {
					cancel(fmt.Errorf("loadgen: create key %d of %d: the daemon returned a secret that is not an API key", i+1, n))
					return
				}
				keys[i] = key{id: k.ID, subject: sub, secret: k.Secret}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		created := keys[:0]
		for _, k := range keys {
			if k.id != "" {
				created = append(created, k)
			}
		}
		return created, err
	}
	return keys, nil
}

// revokeKeys revokes keys, conns admin calls at a time, and reports every
// failure (at most the first 5, with the count).
func revokeKeys(ctx context.Context, c *adminclient.Client, keys []key, conns int) error {
	var next, failed atomic.Int64
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for range min(conns, len(keys)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(keys) {
					return
				}
				if _, err := c.RevokeKey(ctx, keys[i].id); err != nil {
					failed.Add(1)
					mu.Lock()
					if len(errs) < 5 {
						errs = append(errs, fmt.Errorf("key %s: %w", keys[i].id, err))
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("loadgen: %d of %d keys could not be revoked (they expire %v after creation): %w", n, len(keys), keyLifetime, errors.Join(errs...))
	}
	return nil
}

// saveKeys writes keys to path, which must not exist, with mode 0600: one
// line of id, subject and secret, separated by tabs, per key.
func saveKeys(path string, keys []key) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("loadgen: save keys: %w (the file must not exist)", err)
	}
	w := bufio.NewWriter(f)
	for _, k := range keys {
		w.WriteString(k.id + "\t" + k.subject + "\t" + k.secret + "\n")
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("loadgen: save keys: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("loadgen: save keys: %w", err)
	}
	return nil
}

// loadKeys reads a file written by saveKeys. It never reports a secret.
func loadKeys(path string) ([]key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("loadgen: keys-from: %w", err)
	}
	defer f.Close()
	var keys []key
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		parts := strings.Split(sc.Text(), "\t")
		if len(parts) != 3 || parts[0] == "" || parts[1] == "" || !strings.HasPrefix(parts[2], "vk_") || len(parts[2]) != 43 {
			return nil, fmt.Errorf("loadgen: keys-from %s: line %d is not id, subject and API key separated by tabs (write the file with --save-keys)", path, line)
		}
		keys = append(keys, key{id: parts[0], subject: parts[1], secret: parts[2]})
		if len(keys) > MaxKeys {
			return nil, fmt.Errorf("loadgen: keys-from %s: more than %d keys", path, MaxKeys)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("loadgen: keys-from %s: %w", path, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("loadgen: keys-from %s: no keys", path)
	}
	return keys, nil
}

// forge returns k's secret with its last checksum character changed: a
// well-formed API key whose checksum cannot verify.
func forge(secret string) string {
	b := []byte(secret)
	if b[len(b)-1] == 'A' {
		b[len(b)-1] = 'B'
	} else {
		b[len(b)-1] = 'A'
	}
	return string(b)
}
