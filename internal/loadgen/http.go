package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/verifyd/verifyd/verify"
)

// httpConn is one HTTP/1.1 connection to the daemon, on which requests to
// POST /v1/verify are pipelined: up to depth are written before their
// answers are read, and the answers come back in order.
type httpConn struct {
	nc      net.Conn
	br      *bufio.Reader
	host    string
	timeout time.Duration
	body    []byte // the body of the last answer
}

// dialHTTP connects to host (host:port).
func dialHTTP(ctx context.Context, host string, timeout time.Duration) (*httpConn, error) {
	d := net.Dialer{Timeout: timeout}
	nc, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, fmt.Errorf("loadgen: dial %s: %w", host, err)
	}
	return &httpConn{nc: nc, br: bufio.NewReaderSize(nc, 64<<10), host: host, timeout: timeout}, nil
}

// httpSlot is one request in flight.
type httpSlot struct {
	sent time.Time
	req  request
}

// verifyStatus maps the "status" of an answer to its reason.
var verifyStatus = func() map[string]verify.Reason {
	m := map[string]verify.Reason{}
	for _, r := range verify.Reasons() {
		m[r.String()] = r
	}
	return m
}()

// run sends src's requests with up to depth in flight and checks every
// answer, until src has none left and every answer is in. An error ends
// the connection; the requests in flight are then recorded as lost.
func (c *httpConn) run(w *worker, src source, depth int) (err error) {
	ring := make([]httpSlot, depth) // in flight: ring[head], ring[head+1], ... (mod depth)
	head, count := 0, 0
	defer func() {
		if err != nil {
			why := err.Error()
			for i := range count {
				w.lostRequest(&ring[(head+i)%depth].req, why)
			}
		}
		w.flush(time.Now())
	}()
	out := make([]byte, 0, 16<<10)
	done := false
	var deadlineSet time.Time
	var answer struct {
		Allow   bool   `json:"allow"`
		Status  string `json:"status"`
		Subject string `json:"subject"`
		Kind    string `json:"kind"`
	}
	for {
		now := time.Now()
		for !done && count < depth {
			req, ok := src.next(w)
			if !ok {
				done = true
				break
			}
			ring[(head+count)%depth] = httpSlot{sent: now, req: req}
			count++
			out = c.appendRequest(out, req.token, req.scope)
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
		if count == 0 {
			return nil
		}
		// Read one answer, and those already buffered after it.
		for {
			code, err := c.readResponse()
			if err != nil {
				return err
			}
			now = time.Now()
			slot := &ring[head]
			answer.Allow, answer.Status, answer.Subject, answer.Kind = false, "", "", ""
			var failure string
			if err := json.Unmarshal(c.body, &answer); err != nil {
				failure = fmt.Sprintf("HTTP %d with a body that is not a verify answer", code)
			} else if got, ok := verifyStatus[answer.Status]; !ok {
				failure = fmt.Sprintf("HTTP %d with an unknown status", code)
			} else if failure = check(&slot.req, got, []byte(answer.Subject), []byte(answer.Kind)); failure == "" {
				if code != got.HTTPStatus() || answer.Allow != (got == verify.OK) {
					failure = fmt.Sprintf("HTTP %d with status %s and allow %t", code, got, answer.Allow)
				}
			}
			w.answered(&slot.req, slot.sent, now, failure)
			*slot = httpSlot{}
			head = (head + 1) % depth
			count--
			if count == 0 || c.br.Buffered() == 0 {
				break
			}
		}
	}
}

// appendRequest appends a POST /v1/verify request for token and scope.
func (c *httpConn) appendRequest(b []byte, token, scope string) []byte {
	n := len(`{"token":"","scope":""}`) + jsonLen(token) + jsonLen(scope)
	b = append(b, "POST /v1/verify HTTP/1.1\r\nHost: "...)
	b = append(b, c.host...)
	b = append(b, "\r\nContent-Type: application/json\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, "\r\n\r\n"+`{"token":"`...)
	b = appendJSON(b, token)
	b = append(b, `","scope":"`...)
	b = appendJSON(b, scope)
	return append(b, `"}`...)
}

// jsonLen returns the length of s escaped by appendJSON.
func jsonLen(s string) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			n++
		case c < 0x20:
			n += 5
		}
	}
	return n
}

// appendJSON appends s escaped as the inside of a JSON string. s is
// valid UTF-8.
func appendJSON(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return b
}

// errChunked reports an answer the pipelining reader does not handle.
var errChunked = errors.New("the server sent a chunked answer; only answers with Content-Length are read")

// readResponse reads one answer: its status code, and its body into c.body.
func (c *httpConn) readResponse() (int, error) {
	line, err := c.readLine()
	if err != nil {
		return 0, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, fmt.Errorf("the server sent %q, not an HTTP/1.1 status line", truncate(line))
	}
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("the server sent %q, not an HTTP/1.1 status line", truncate(line))
	}
	length := -1
	closing := false
	for {
		line, err := c.readLine()
		if err != nil {
			return 0, err
		}
		if len(line) == 0 {
			break
		}
		name, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil || length < 0 || length > 1<<20 {
				return 0, fmt.Errorf("the server sent Content-Length %q", truncate(value))
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return 0, errChunked
		case bytes.EqualFold(name, []byte("Connection")):
			closing = bytes.EqualFold(value, []byte("close"))
		}
	}
	if length < 0 {
		return 0, errors.New("the server sent an answer without Content-Length")
	}
	if cap(c.body) < length {
		c.body = make([]byte, length)
	}
	c.body = c.body[:length]
	if _, err := io.ReadFull(c.br, c.body); err != nil {
		return 0, fmt.Errorf("read an answer's body: %w", err)
	}
	if closing {
		return 0, fmt.Errorf("the server closed the connection after an answer (HTTP %d)", code)
	}
	return code, nil
}

// readLine reads one line without its CR LF.
func (c *httpConn) readLine() ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("read: %w", err)
	}
	return bytes.TrimSuffix(line[:len(line)-1], []byte("\r")), nil
}

// truncate shortens b for an error message.
func truncate(b []byte) string {
	if len(b) > 40 {
		b = b[:40]
	}
	return string(b)
}

func (c *httpConn) close() error { return c.nc.Close() }
