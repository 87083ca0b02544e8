package bench

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/verifyd/verifyd/ipc"
	"github.com/verifyd/verifyd/verify"
)

// socketShapes are the connection counts and pipelining depths measured.
var socketShapes = []struct{ conns, depth int }{
	{1, 1}, {16, 1}, {64, 1}, {1, 64}, {2, 64},
}

// echoVerifier answers every request with the same allowed result, with
// no work: the floor's handler.
type echoVerifier struct{ r verify.Result }

func (e *echoVerifier) Verify(token, scope string) verify.Result { return e.r }

// BenchmarkSocket measures verifications over a real Unix socket, each
// shape against a floor that runs the same server and client harness with
// an echo handler in place of verify. verify/... verifies cache-hit opaque
// keys. Reported: requests/s, and p50 and p99 latency of a request from the
// write of its batch to the read of its answer.
func BenchmarkSocket(b *testing.B) {
	e := newEnv(b, b.TempDir(), hotKeys, 2*hotKeys)
	defer e.store.Close()
	e.warm(b, e.secrets)
	echo := &echoVerifier{r: e.v.Verify(e.secrets[0], "tool:data:read")}
	for _, h := range []struct {
		name string
		v    ipc.Verifier
	}{{"verify", e.v}, {"floor", echo}} {
		for _, s := range socketShapes {
			b.Run(fmt.Sprintf("%s/conns=%d/depth=%d", h.name, s.conns, s.depth), func(b *testing.B) {
				benchSocket(b, h.v, e.secrets, s.conns, s.depth)
			})
		}
	}
}

func benchSocket(b *testing.B, v ipc.Verifier, secrets []string, conns, depth int) {
	dir, err := os.MkdirTemp("", "vdb")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	srv, err := ipc.Listen(filepath.Join(dir, "s"), ipc.Options{
		Verifier:       v,
		MaxConnections: conns + 4,
		Logger:         slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve()
	defer srv.Shutdown(b.Context())

	clients := make([]*socketClient, conns)
	for i := range clients {
		c, err := dialSocket(srv.Addr(), depth, secrets, i)
		if err != nil {
			b.Fatal(err)
		}
		defer c.conn.Close()
		clients[i] = c
	}
	// Split b.N requests into batches of depth over the connections.
	batches := (b.N + depth - 1) / depth
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i, c := range clients {
		n := batches / conns
		if i < batches%conns {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.run(n); err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	var lat []time.Duration
	for _, c := range clients {
		lat = append(lat, c.lat...)
	}
	slices.Sort(lat)
	total := batches * depth
	b.ReportMetric(float64(total)/elapsed.Seconds(), "req/s")
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
		b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
	}
}

// socketClient pipelines batches of depth VERIFY requests on one
// connection, with buffers made once, so that allocations per request
// are the server's.
type socketClient struct {
	conn  net.Conn
	depth int
	out   []byte // one batch of requests, encoded once
	in    []byte // bytes read; in[off:] not yet decoded
	off   int
	dec   ipc.Decoder
	lat   []time.Duration
}

func dialSocket(path string, depth int, secrets []string, seed int) (*socketClient, error) {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return nil, err
	}
	c := &socketClient{conn: conn, depth: depth, in: make([]byte, 0, 64<<10), dec: ipc.Decoder{Answers: true}}
	for i := range depth {
		c.out = ipc.AppendVerify(c.out, uint64(i+1), secrets[(seed*depth+i)%len(secrets)], "tool:data:read")
	}
	return c, nil
}

// run sends n batches and reads every answer, recording one latency
// sample per request (at most 100k per connection).
func (c *socketClient) run(n int) error {
	if cap(c.lat) == 0 {
		c.lat = make([]time.Duration, 0, min(n*c.depth, 100000))
	}
	for range n {
		sent := time.Now()
		if _, err := c.conn.Write(c.out); err != nil {
			return err
		}
		for got := 0; got < c.depth; {
			f, used, err := c.dec.Next(c.in[c.off:])
			if err != nil {
				return err
			}
			if used == 0 {
				// Keep the partial frame, at the front, and read more.
				c.in = c.in[:copy(c.in, c.in[c.off:])]
				c.off = 0
				if len(c.in) == cap(c.in) {
					return fmt.Errorf("answer larger than the read buffer")
				}
				m, err := c.conn.Read(c.in[len(c.in):cap(c.in)])
				if err != nil {
					if err == io.EOF {
						return io.ErrUnexpectedEOF
					}
					return err
				}
				c.in = c.in[:len(c.in)+m]
				continue
			}
			c.off += used
			if f.Header.Opcode != ipc.OpVerifyResult {
				return fmt.Errorf("answer opcode %v", f.Header.Opcode)
			}
			r, err := ipc.DecodeVerifyResult(f.Body)
			if err != nil || !r.Allowed() {
				return fmt.Errorf("answer %v %v", r.Status, err)
			}
			got++
			if len(c.lat) < cap(c.lat) {
				c.lat = append(c.lat, time.Since(sent))
			}
		}
	}
	return nil
}
