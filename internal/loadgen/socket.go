package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/verifyd/verifyd/ipc"
	"github.com/verifyd/verifyd/verify"
)

// slotBits is the number of low bits of a request id that name its slot.
const slotBits = 16

// helloID is the request id of the HELLO that opens a connection; request
// ids after it have a sequence number of at least 1 above slotBits.
const helloID = 1

// socketConn is one connection to the daemon's Unix socket, driven
// directly with the ipc codec: one goroutine writes each batch of
// requests in one write and decodes the answers in place, so that the
// client spends as little CPU as it can beside the daemon.
type socketConn struct {
	nc      net.Conn
	hello   ipc.HelloOK
	timeout time.Duration
}

// dialSocket connects to path and exchanges HELLO and HELLO_OK.
func dialSocket(ctx context.Context, path string, timeout time.Duration) (*socketConn, error) {
	d := net.Dialer{Timeout: timeout}
	nc, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("loadgen: dial %s: %w", path, err)
	}
	nc.SetDeadline(time.Now().Add(timeout))
	c := &socketConn{nc: nc, timeout: timeout}
	if err := c.handshake(); err != nil {
		nc.Close()
		return nil, fmt.Errorf("loadgen: %s: %w", path, err)
	}
	nc.SetDeadline(time.Time{})
	return c, nil
}

func (c *socketConn) handshake() error {
	hello := ipc.AppendHello(nil, helloID, ipc.Hello{MinVersion: ipc.ProtocolVersion, MaxVersion: ipc.ProtocolVersion})
	if _, err := c.nc.Write(hello); err != nil {
		return fmt.Errorf("send HELLO: %w", err)
	}
	buf := make([]byte, 0, 1024)
	dec := ipc.Decoder{Answers: true}
	for {
		f, n, err := dec.Next(buf)
		if err != nil {
			return fmt.Errorf("answer to HELLO: %w", err)
		}
		if n > 0 {
			switch f.Header.Opcode {
			case ipc.OpHelloOK:
				c.hello, err = ipc.DecodeHelloOK(f.Body)
				if err == nil && c.hello.Version != ipc.ProtocolVersion {
					err = fmt.Errorf("the server chose protocol version %d", c.hello.Version)
				}
				return err
			case ipc.OpError:
				e, _ := ipc.DecodeError(f.Body)
				return fmt.Errorf("the server refused HELLO: %v: %s", e.Code, e.Message)
			default:
				return fmt.Errorf("the server answered HELLO with %v", f.Header.Opcode)
			}
		}
		if len(buf) == cap(buf) {
			return errors.New("answer to HELLO too long")
		}
		m, err := c.nc.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err != nil {
			return fmt.Errorf("read the answer to HELLO: %w", err)
		}
	}
}

// socketSlot is one request in flight.
type socketSlot struct {
	id   uint64
	sent time.Time
	req  request
}

// run sends src's requests with up to depth in flight and checks every
// answer, until src has none left and every answer is in. An error ends
// the connection; the requests in flight are then recorded as lost.
func (c *socketConn) run(w *worker, src source, depth int) (err error) {
	slots := make([]socketSlot, depth)
	free := make([]uint16, depth)
	for i := range free {
		free[i] = uint16(depth - 1 - i)
	}
	inFlight := 0
	defer func() {
		if err != nil {
			why := err.Error()
			for i := range slots {
				if slots[i].id != 0 {
					w.lostRequest(&slots[i].req, why)
				}
			}
		}
		w.flush(time.Now())
	}()
	out := make([]byte, 0, 16<<10)
	in := make([]byte, 64<<10)
	r, n := 0, 0
	dec := ipc.Decoder{Answers: true}
	var seq uint64
	done := false
	var deadlineSet time.Time
	for {
		now := time.Now()
		for !done && len(free) > 0 {
			req, ok := src.next(w)
			if !ok {
				done = true
				break
			}
			s := free[len(free)-1]
			free = free[:len(free)-1]
			seq++
			id := seq<<slotBits | uint64(s)
			slots[s] = socketSlot{id: id, sent: now, req: req}
			out = ipc.AppendVerify(out, id, req.token, req.scope)
			inFlight++
		}
		if now.Sub(deadlineSet) >= time.Second {
			c.nc.SetDeadline(now.Add(c.timeout))
			deadlineSet = now
		}
		if len(out) > 0 {
			if _, err := c.nc.Write(out); err != nil {
				return fmt.Errorf("write: %w", err)
			}
			out = out[:0]
		}
		if inFlight == 0 {
			return nil
		}
		// Make room, then read.
		if r == n {
			r, n = 0, 0
		} else if r > 0 && len(in)-n < 4096 {
			n = copy(in, in[r:n])
			r = 0
		}
		if n == len(in) {
			bigger := make([]byte, 2*len(in))
			n = copy(bigger, in[r:n])
			in, r = bigger, 0
		}
		m, err := c.nc.Read(in[n:])
		n += m
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("read: %w", err)
		}
		now = time.Now()
		for {
			f, used, err := dec.Next(in[r:n])
			if err != nil {
				return fmt.Errorf("the server sent an invalid frame: %w", err)
			}
			if used == 0 {
				break
			}
			r += used
			s := int(f.Header.RequestID & (1<<slotBits - 1))
			if s >= depth || slots[s].id != f.Header.RequestID || slots[s].id == 0 {
				if f.Header.Opcode == ipc.OpError {
					e, _ := ipc.DecodeError(f.Body)
					return fmt.Errorf("the server closed the stream: %v: %s", e.Code, e.Message)
				}
				return fmt.Errorf("the server answered request id %d, which is not in flight", f.Header.RequestID)
			}
			var failure string
			switch f.Header.Opcode {
			case ipc.OpVerifyResult:
				v, err := ipc.DecodeVerifyResult(f.Body)
				if err != nil {
					return fmt.Errorf("the server sent an invalid answer: %w", err)
				}
				failure = check(&slots[s].req, verify.Reason(v.Status), v.Subject, v.Kind)
			case ipc.OpError:
				e, _ := ipc.DecodeError(f.Body)
				failure = "server error " + e.Code.String()
			default:
				return fmt.Errorf("the server answered VERIFY with %v", f.Header.Opcode)
			}
			w.answered(&slots[s].req, slots[s].sent, now, failure)
			slots[s] = socketSlot{}
			free = append(free, uint16(s))
			inFlight--
		}
	}
}

func (c *socketConn) close() error { return c.nc.Close() }
