package ipc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"os"
	"os/user"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verifyd/verifyd/verify"
	"github.com/verifyd/verifyd/verify/throttle"
)

// Errors of Listen.
var (
	// ErrInUse reports that a server already answers on the socket path.
	ErrInUse = errors.New("ipc: a server is already listening on the socket path")
	// ErrNotSocket reports that the socket path names a file that is not a
	// socket, which Listen refuses to replace.
	ErrNotSocket = errors.New("ipc: the socket path exists and is not a socket")
)

// Server defaults not defined by the protocol.
const (
	DefaultMaxConnections = 4096
	DefaultIdleTimeout    = 5 * time.Minute
	DefaultReadTimeout    = 10 * time.Second
	DefaultWriteTimeout   = 10 * time.Second
	DefaultMode           = 0o660
)

// peer is what SO_PEERCRED reports of the process that connected.
type peer struct {
	uid, gid uint32
	pid      int32
}

// Server-side constants.
const (
	// drainGrace is how long a draining connection keeps answering requests
	// that arrive after the drain began with ERROR SHUTTING_DOWN.
	drainGrace = 100 * time.Millisecond
	// initialReadBuffer is the read buffer of a new connection; it grows,
	// up to MaxFrameBytes, for a longer frame or a client that fills it.
	initialReadBuffer = 4 << 10
	// flushBytes flushes the write buffer once it holds this much, whatever
	// the number of answers in it: with MaxInFlight it bounds what a
	// connection holds for a client that is slow to read.
	flushBytes = 64 << 10
)

// Verifier is what a Server asks: *verify.Verifier implements it. It must
// keep neither argument after returning, since both are views of the
// connection's read buffer.
type Verifier interface {
	Verify(token, scope string) verify.Result
}

var _ Verifier = (*verify.Verifier)(nil)

// Options configures a Server. Zero values mean the defaults shown.
type Options struct {
	// Verifier answers VERIFY: a *verify.Verifier in the daemon. Required.
	Verifier Verifier
	// Mode is the socket file's permission bits. The default value is 0660:
	// only the owner and the owner group may connect.
	Mode os.FileMode
	// Group is the socket file's owner group, a name or a numeric gid. ""
	// leaves the group the process creates files with.
	Group string
	// AllowUIDs and AllowGIDs restrict the peers. When either is not empty,
	// a peer (as SO_PEERCRED reports it at accept: the uid and primary gid
	// of the process that connected) whose uid is not in AllowUIDs and
	// whose gid is not in AllowGIDs is closed at once and logged. Empty
	// lists check nothing beyond the socket file's permissions.
	AllowUIDs, AllowGIDs []uint32
	// MaxFrameBytes is the longest frame accepted (max_frame_bytes). The
	// default value is DefaultMaxFrameBytes (16 KiB); it must be at least
	// MinFrameLimit and at most 16 MiB.
	MaxFrameBytes int
	// MaxTokenBytes and MaxScopeBytes bound a VERIFY's token and scope
	// (max_token_bytes, max_scope_bytes). The defaults are
	// DefaultMaxTokenBytes (8192) and DefaultMaxScopeBytes (1024).
	MaxTokenBytes, MaxScopeBytes int
	// MaxInFlight is the number of answers a connection holds before it
	// must write them (max_in_flight). The default value is
	// DefaultMaxInFlight (128).
	MaxInFlight int
	// MaxConnections bounds the connections served at once; one beyond it
	// is closed at accept and counted. The default value is
	// DefaultMaxConnections (4096).
	MaxConnections int
	// IdleTimeout closes a connection on which nothing arrived and nothing
	// was owed for this long. The default value is 5m.
	IdleTimeout time.Duration
	// ReadTimeout bounds the time from a frame's first byte to its last: a
	// slower frame is refused with ERROR TRUNCATED. The default value is
	// 10s.
	ReadTimeout time.Duration
	// WriteTimeout bounds the writing of one batch of answers: a client
	// that stops reading is closed after it. The default value is 10s.
	WriteTimeout time.Duration
	// Registerer receives the server's metrics. nil means none.
	Registerer prometheus.Registerer
	// Logger receives operational events. nil means slog.Default().
	Logger *slog.Logger
	// Throttle, when set, answers VERIFY through a throttle gate over
	// Verifier: PAT ids in a cool-down and spent credential rate limits
	// are answered RATE_LIMITED, and, when it counts socket peers, so is
	// a peer uid with too many failed verifications. nil: no throttling.
	Throttle *throttle.Limiter
}

// EnsureDefaults fills in the defaults of unset (zero) fields.
func (o *Options) EnsureDefaults() {
	if o.Mode == 0 {
		o.Mode = DefaultMode
	}
	if o.MaxFrameBytes == 0 {
		o.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if o.MaxTokenBytes == 0 {
		o.MaxTokenBytes = DefaultMaxTokenBytes
	}
	if o.MaxScopeBytes == 0 {
		o.MaxScopeBytes = DefaultMaxScopeBytes
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.MaxConnections == 0 {
		o.MaxConnections = DefaultMaxConnections
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Validate reports every problem with o, after EnsureDefaults.
func (o *Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("ipc: "+format, args...)) }
	if o.Verifier == nil {
		bad("a verifier is required")
	}
	if o.Mode&^fs.ModePerm != 0 {
		bad("mode %v has bits other than permissions", o.Mode)
	}
	if o.MaxFrameBytes < MinFrameLimit || o.MaxFrameBytes > 16<<20 {
		bad("max frame bytes %d is not between %d and %d", o.MaxFrameBytes, MinFrameLimit, 16<<20)
	}
	if o.MaxTokenBytes < 1 || o.MaxTokenBytes > math.MaxUint32 {
		bad("max token bytes %d is not positive", o.MaxTokenBytes)
	}
	if o.MaxScopeBytes < 1 || o.MaxScopeBytes > math.MaxUint32 {
		bad("max scope bytes %d is not positive", o.MaxScopeBytes)
	}
	if o.MaxInFlight < 1 || o.MaxInFlight > math.MaxUint32 {
		bad("max in flight %d is not positive", o.MaxInFlight)
	}
	if o.MaxConnections < 1 {
		bad("max connections %d is not positive", o.MaxConnections)
	}
	for name, d := range map[string]time.Duration{"idle": o.IdleTimeout, "read": o.ReadTimeout, "write": o.WriteTimeout} {
		if d < time.Millisecond {
			bad("%s timeout %v is shorter than 1ms", name, d)
		}
	}
	if o.IdleTimeout.Milliseconds() > math.MaxUint32 {
		bad("idle timeout %v does not fit idle_timeout_ms", o.IdleTimeout)
	}
	return errors.Join(errs...)
}

// Server serves the socket protocol on one Unix socket path. Its methods
// are safe for concurrent use.
type Server struct {
	opts    Options
	path    string
	ln      *net.UnixListener
	sock    os.FileInfo // the socket file Listen created: Shutdown removes only that one
	log     *slog.Logger
	metrics *serverMetrics
	hello   HelloOK        // the HELLO_OK body of every connection
	grace   time.Duration  // drainGrace; tests lengthen it
	gate    *throttle.Gate // nil without throttling

	draining atomic.Bool  // Shutdown began
	drainAt  atomic.Int64 // when, in Unix nanoseconds
	active   atomic.Int64 // connections served now
	connIDs  atomic.Uint64
	lastWarn atomic.Int64 // when a rate-limited warning was last logged

	mu      sync.Mutex // guards what follows
	conns   map[*serverConn]struct{}
	serving bool // Serve was called
	closed  bool // Shutdown was called
	wg      sync.WaitGroup
}

// Listen creates the socket at path and returns a Server ready to Serve.
// It refuses, with ErrInUse, a path on which a server answers; it replaces
// a socket file on which none answers (left by a server that died), and
// refuses, with ErrNotSocket, to replace any other file. The socket file
// gets opts.Mode and opts.Group.
func Listen(path string, opts Options) (*Server, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	gid := -1
	if opts.Group != "" {
		g, err := lookupGroup(opts.Group)
		if err != nil {
			return nil, err
		}
		gid = g
	}
	m, err := newServerMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	if err := clearStale(path); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("ipc: listen: %w", err)
	}
	ln.SetUnlinkOnClose(false)
	fail := func(err error) (*Server, error) {
		ln.Close()
		os.Remove(path)
		return nil, err
	}
	if err := os.Chmod(path, opts.Mode); err != nil {
		return fail(fmt.Errorf("ipc: %w", err))
	}
	if gid >= 0 {
		if err := os.Chown(path, -1, gid); err != nil {
			return fail(fmt.Errorf("ipc: %w", err))
		}
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(fmt.Errorf("ipc: %w", err))
	}
	s := &Server{
		opts:    opts,
		path:    path,
		ln:      ln,
		sock:    fi,
		log:     opts.Logger.With("socket", path),
		metrics: m,
		conns:   make(map[*serverConn]struct{}),
		grace:   drainGrace,
		hello: HelloOK{
			Version:       ProtocolVersion,
			MaxFrameBytes: uint32(opts.MaxFrameBytes),
			MaxInFlight:   uint32(opts.MaxInFlight),
			MaxTokenBytes: uint32(opts.MaxTokenBytes),
			MaxScopeBytes: uint32(opts.MaxScopeBytes),
			IdleTimeoutMS: uint32(opts.IdleTimeout.Milliseconds()),
		},
	}
	if opts.Throttle != nil {
		s.gate = opts.Throttle.Gate(opts.Verifier, "socket")
	}
	return s, nil
}

// clearStale makes path free for a new socket: absent, or a socket file on
// which no server answers, which it removes.
func clearStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ipc: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%w: %s is a %v", ErrNotSocket, path, fi.Mode().Type())
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("%w: %s", ErrInUse, path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("ipc: cannot tell whether a server answers on %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("ipc: remove stale socket: %w", err)
	}
	return nil
}

func lookupGroup(name string) (int, error) {
	if gid, err := strconv.ParseUint(name, 10, 31); err == nil {
		return int(gid), nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, fmt.Errorf("ipc: socket group: %w", err)
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return 0, fmt.Errorf("ipc: socket group %s has gid %q", name, g.Gid)
	}
	return gid, nil
}

// Addr returns the socket path.
func (s *Server) Addr() string { return s.path }

// Serve accepts and serves connections until Shutdown, and then returns
// nil, also when Shutdown came first.
func (s *Server) Serve() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	if s.serving {
		s.mu.Unlock()
		return errors.New("ipc: Serve called twice")
	}
	s.serving = true
	s.mu.Unlock()

	var backoff time.Duration
	for {
		nc, err := s.ln.AcceptUnix()
		if err != nil {
			if s.draining.Load() {
				return nil
			}
			if isTemporaryAccept(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("ipc: accept failed; retrying", "err", err, "retry_in", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("ipc: accept: %w", err)
		}
		backoff = 0
		s.accept(nc)
	}
}

func isTemporaryAccept(err error) bool {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.EINTR} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (s *Server) accept(nc *net.UnixConn) {
	if s.active.Load() >= int64(s.opts.MaxConnections) {
		s.metrics.refusedLimit.Inc()
		nc.Close()
		s.warnRateLimited("ipc: connection refused: too many connections", "max_connections", s.opts.MaxConnections)
		return
	}
	var src throttle.Source
	countPeer := s.gate != nil && s.opts.Throttle.SocketPeers()
	if countPeer || len(s.opts.AllowUIDs) > 0 || len(s.opts.AllowGIDs) > 0 {
		// A peer whose credentials cannot be read can be neither checked
		// nor counted: it is refused.
		cred, err := peerCred(nc)
		allowed := err == nil && (len(s.opts.AllowUIDs) == 0 && len(s.opts.AllowGIDs) == 0 || s.peerAllowed(cred))
		if !allowed {
			s.metrics.refusedPeer.Inc()
			nc.Close()
			if err != nil {
				s.log.Warn("ipc: connection refused: peer credentials unreadable", "err", err)
			} else {
				s.log.Warn("ipc: connection refused: peer not allowed", "uid", cred.uid, "gid", cred.gid, "pid", cred.pid)
			}
			return
		}
		if countPeer {
			src = throttle.UIDSource(cred.uid)
		}
	}
	c := &serverConn{s: s, nc: nc, id: s.connIDs.Add(1), src: src}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		nc.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	s.active.Add(1)
	s.metrics.conns.Inc()
	s.metrics.accepted.Inc()
	go c.serve()
}

func (s *Server) peerAllowed(cred peer) bool {
	for _, u := range s.opts.AllowUIDs {
		if cred.uid == u {
			return true
		}
	}
	for _, g := range s.opts.AllowGIDs {
		if cred.gid == g {
			return true
		}
	}
	return false
}

// warnRateLimited logs at Warn at most once a second, for events a client
// can cause in floods.
func (s *Server) warnRateLimited(msg string, args ...any) {
	now := time.Now().UnixNano()
	last := s.lastWarn.Load()
	if now-last < int64(time.Second) || !s.lastWarn.CompareAndSwap(last, now) {
		return
	}
	s.log.Warn(msg, args...)
}

func (s *Server) done(c *serverConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.active.Add(-1)
	s.metrics.conns.Dec()
	s.wg.Done()
}

// Shutdown stops accepting connections and removes the socket file, then
// drains every connection: the requests that had reached the server are
// answered, those arriving during a short grace period get ERROR
// SHUTTING_DOWN, and the connection is closed. It returns when every
// connection is closed, or closes the remaining ones when ctx ends and
// returns ctx.Err().
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	first := !s.closed
	if first {
		s.closed = true
		s.drainAt.Store(time.Now().UnixNano())
		s.draining.Store(true)
	}
	conns := make([]*serverConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	if first {
		s.ln.Close()
		s.removeSocket()
		// Wake connections blocked in a read; each checks draining after
		// setting its own deadline, so none misses the drain.
		for _, c := range conns {
			c.nc.SetReadDeadline(time.Unix(1, 0))
		}
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

// removeSocket removes the socket file if it is still the one Listen made.
func (s *Server) removeSocket() {
	if fi, err := os.Lstat(s.path); err == nil && os.SameFile(fi, s.sock) {
		if err := os.Remove(s.path); err != nil {
			s.log.Warn("ipc: remove socket file", "err", err)
		}
	}
}

// b2s returns a string sharing b's bytes, without copying: the package's
// one zero-copy view. The string is valid only while b is unchanged, so it
// is handed only to callees that keep no reference to it once they return
// (see serverConn.verify).
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// serverConn is one connection, served by one goroutine (serve): it reads
// into rbuf, decodes and answers each complete request into wbuf, and
// writes wbuf when no complete request is left in rbuf, or when wbuf holds
// MaxInFlight answers or flushBytes bytes. While it writes, it does not
// read: a client that does not read its answers stops being read
// (back-pressure), and is closed once a batch cannot be written within
// WriteTimeout. What a connection holds is thus bounded by MaxFrameBytes
// (rbuf) and flushBytes plus one answer (wbuf).
type serverConn struct {
	s   *Server
	nc  *net.UnixConn
	id  uint64
	src throttle.Source // who the throttle counts this connection's failures for

	rbuf    []byte // rbuf[r:w] holds bytes read and not yet decoded
	r, w    int
	wbuf    []byte // answers not yet written
	pending int    // answers in wbuf

	readAt     time.Time // when the last read returned
	deadline   time.Time // the read deadline this connection set last
	frameStart time.Time // when the first byte of the partial frame in rbuf[r:w] arrived; zero if none

	// Stream offsets, for the drain: consumed counts the bytes decoded,
	// received the bytes read, and drainEnd is the offset up to which
	// requests had reached the server when the drain began (-1 before).
	consumed, received, drainEnd int64
	draining                     bool
	graceEnd                     time.Time

	frames [OpError + 1]uint64 // frames by opcode since the last flush, for metrics
}

// closeReason tells why serve stopped.
type closeReason uint8

const (
	closeEOF closeReason = iota
	closeIdle
	closeProtocol
	closeWriteFailed
	closeReadFailed
	closeDrained
)

func (c *serverConn) serve() {
	defer c.s.done(c)
	defer c.nc.Close()
	c.drainEnd = -1
	c.rbuf = make([]byte, min(initialReadBuffer, c.s.opts.MaxFrameBytes))
	c.wbuf = make([]byte, 0, 4<<10)
	reason := c.loop()
	c.flushMetrics()
	if reason == closeProtocol || reason == closeWriteFailed {
		c.s.log.Debug("ipc: connection closed", "conn_id", c.id, "reason", reason)
	}
}

func (c *serverConn) loop() closeReason {
	s := c.s
	dec := Decoder{MaxFrameBytes: s.opts.MaxFrameBytes}
	for {
		// Decode and answer every complete frame buffered.
		decoded := false
		for {
			f, n, err := dec.Next(c.rbuf[c.r:c.w])
			if err != nil {
				var fe *FrameError
				errors.As(err, &fe)
				return c.streamError(fe.Code, fe.Detail)
			}
			if n == 0 {
				break
			}
			off := c.consumed
			c.r += n
			c.consumed += int64(n)
			decoded = true
			if reason, ok := c.handle(f, off); !ok {
				return reason
			}
			if c.pending >= s.opts.MaxInFlight || len(c.wbuf) >= flushBytes {
				if !c.flush() {
					return closeWriteFailed
				}
			}
		}
		if c.pending > 0 && !c.flush() {
			return closeWriteFailed
		}
		switch {
		case c.r == c.w:
			c.r, c.w = 0, 0
			c.frameStart = time.Time{}
		case decoded || c.frameStart.IsZero():
			// The partial frame left began in the last read.
			c.frameStart = c.readAt
		}
		c.makeRoom()

		// Read more.
		if s.draining.Load() && !c.draining {
			c.beginDrain()
		}
		if c.draining && c.received >= c.drainEnd && !time.Now().Before(c.graceEnd) {
			return closeDrained
		}
		c.deadline = c.readDeadline()
		c.nc.SetReadDeadline(c.deadline)
		if s.draining.Load() && !c.draining {
			continue // Shutdown began between the check and the deadline
		}
		n, err := c.nc.Read(c.rbuf[c.w:])
		c.readAt = time.Now()
		c.w += n
		c.received += int64(n)
		if n > 0 && c.w == len(c.rbuf) && len(c.rbuf) < s.opts.MaxFrameBytes {
			// The read filled the buffer: a pipelining client; read more at a time.
			c.grow(min(2*len(c.rbuf), s.opts.MaxFrameBytes))
		}
		if err == nil {
			continue
		}
		if n > 0 && !errors.Is(err, io.EOF) {
			continue // decode what came; the error comes again
		}
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			if s.draining.Load() && (!c.draining || c.readAt.Before(c.deadline)) {
				// Woken by Shutdown, whose wake-up deadline can also land
				// after this connection began draining and set its own:
				// not a timeout of this connection's.
				continue
			}
			if c.draining && c.received >= c.drainEnd && !c.readAt.Before(c.graceEnd) {
				return closeDrained
			}
			if c.r < c.w {
				s.metrics.timeouts[timeoutRead].Inc()
				return c.streamError(CodeTruncated, "the frame did not arrive within the read timeout "+s.opts.ReadTimeout.String())
			}
			s.metrics.timeouts[timeoutIdle].Inc()
			return closeIdle
		case errors.Is(err, io.EOF):
			if c.drainDecodable() {
				continue // decode and answer what came with the EOF, then see it again
			}
			if c.r < c.w {
				return c.streamError(CodeTruncated, "the connection ended inside a frame")
			}
			return closeEOF
		default:
			return closeReadFailed
		}
	}
}

// drainDecodable reports whether rbuf holds a complete frame (or a bad one)
// not yet handled: bytes that came with an EOF.
func (c *serverConn) drainDecodable() bool {
	dec := Decoder{MaxFrameBytes: c.s.opts.MaxFrameBytes}
	_, n, err := dec.Next(c.rbuf[c.r:c.w])
	return n > 0 || err != nil
}

// readDeadline returns the deadline of the next read: the idle timeout
// between frames, the read timeout from a frame's first byte, and the
// grace end once a draining connection has read every request that was in
// flight.
func (c *serverConn) readDeadline() time.Time {
	var d time.Time
	if c.r < c.w {
		d = c.frameStart.Add(c.s.opts.ReadTimeout)
	} else {
		d = time.Now().Add(c.s.opts.IdleTimeout)
	}
	if c.draining && c.received >= c.drainEnd && c.graceEnd.Before(d) {
		d = c.graceEnd
	}
	return d
}

// beginDrain notes where in the stream the drain began: every byte already
// buffered or queued in the socket belongs to requests in flight.
func (c *serverConn) beginDrain() {
	c.draining = true
	c.drainEnd = c.received + int64(inq(c.nc))
	c.graceEnd = time.Unix(0, c.s.drainAt.Load()).Add(c.s.grace)
}

// makeRoom moves a partial frame to the front of rbuf and grows rbuf when
// the frame is longer than it.
func (c *serverConn) makeRoom() {
	if c.r == c.w {
		return
	}
	need := len(c.rbuf)
	if c.w-c.r >= 4 {
		need = max(need, int(le.Uint32(c.rbuf[c.r:]))) // the Decoder checked it is at most MaxFrameBytes
	}
	if need > len(c.rbuf) {
		c.grow(need)
		return
	}
	if c.r > 0 && (c.w == len(c.rbuf) || len(c.rbuf)-c.r < need) {
		c.w = copy(c.rbuf, c.rbuf[c.r:c.w])
		c.r = 0
	}
}

func (c *serverConn) grow(n int) {
	if n <= len(c.rbuf) {
		return
	}
	b := make([]byte, n)
	c.w = copy(b, c.rbuf[c.r:c.w])
	c.r = 0
	c.rbuf = b
}

// handle answers one request that starts at stream offset off. ok is false
// when the connection must close.
func (c *serverConn) handle(f Frame, off int64) (closeReason, bool) {
	s := c.s
	op := f.Header.Opcode
	id := f.Header.RequestID
	c.frames[op]++
	if c.draining && off >= c.drainEnd {
		c.appendError(id, CodeShuttingDown, "the server is shutting down")
		return 0, true
	}
	switch op {
	case OpVerify:
		req, _ := DecodeVerify(f.Body) // Next validated the body
		switch {
		case len(req.Token) > s.opts.MaxTokenBytes:
			c.appendError(id, CodeTokenTooLong, "token_len "+strconv.Itoa(len(req.Token))+" is beyond max_token_bytes "+strconv.Itoa(s.opts.MaxTokenBytes))
		case len(req.Scope) > s.opts.MaxScopeBytes:
			c.appendError(id, CodeScopeTooLong, "scope_len "+strconv.Itoa(len(req.Scope))+" is beyond max_scope_bytes "+strconv.Itoa(s.opts.MaxScopeBytes))
		default:
			c.verify(id, req)
		}
	case OpPing:
		c.wbuf = AppendPong(c.wbuf, id)
		c.answered(OpPong)
	case OpHello:
		h, _ := DecodeHello(f.Body)
		if h.MinVersion > ProtocolVersion || h.MaxVersion < ProtocolVersion {
			return c.streamError(CodeUnsupportedVersion, "the client speaks versions "+strconv.Itoa(int(h.MinVersion))+" to "+strconv.Itoa(int(h.MaxVersion))+"; the server speaks 1"), false
		}
		c.wbuf = AppendHelloOK(c.wbuf, id, s.hello)
		c.answered(OpHelloOK)
	}
	return 0, true
}

// verify answers a VERIFY. Token and scope reach Verifier.Verify as
// zero-copy views of rbuf (b2s), which the next read overwrites. That is
// safe because Verify keeps no reference to either once it returns: it
// hashes the token (the caches and the store are keyed by its SHA-256), a
// PAT's embedded id is only compared, a JWT is decoded from base64url into
// fresh memory (the claims and the cached principal never alias the token),
// the scope is matched against compiled patterns and the grant returned is
// one of those patterns, and the error of an invalid scope, which quotes
// it, is dropped inside Verify.
func (c *serverConn) verify(id uint64, req VerifyRequest) {
	var res verify.Result
	if g := c.s.gate; g != nil {
		res, _ = g.Verify(c.src, b2s(req.Token), b2s(req.Scope))
	} else {
		res = c.s.opts.Verifier.Verify(b2s(req.Token), b2s(req.Scope))
	}
	r := VerifyResult{Status: Status(res.Reason)}
	if res.Reason == verify.OK || res.Reason == verify.Forbidden {
		r.CacheTTLMS = uint32(min(max(res.CacheTTL.Milliseconds(), 0), math.MaxUint32))
		if !res.ExpiresAt.IsZero() {
			r.ExpiresAtMS = res.ExpiresAt.UnixMilli()
		}
		if p := res.Principal; p != nil {
			r.Subject, r.Kind, r.KeyID, r.Source, r.Realm = p.Subject, p.Kind, p.KeyID, p.Source, p.Realm
			r.Roles = p.Roles
		}
		if res.Reason == verify.OK {
			r.Grant = res.Grant()
		}
	}
	if n := r.Len(); n < 0 || n > MaxAnswerBytes {
		c.s.warnRateLimited("ipc: a credential's answer does not fit a frame; answered unavailable", "key_id", r.KeyID)
		r = VerifyResult{Status: StatusUnavailable}
	}
	c.wbuf = AppendVerifyResult(c.wbuf, id, &r)
	c.answered(OpVerifyResult)
}

func (c *serverConn) answered(op Opcode) {
	c.frames[op]++
	c.pending++
}

func (c *serverConn) appendError(id uint64, code ErrorCode, msg string) {
	c.wbuf = AppendError(c.wbuf, id, code, msg)
	c.answered(OpError)
	c.s.metrics.errors[code].Inc()
}

// streamError writes what is owed and a stream-level ERROR, and closes.
func (c *serverConn) streamError(code ErrorCode, msg string) closeReason {
	c.appendError(0, code, msg)
	c.flush()
	c.s.log.Debug("ipc: protocol error", "conn_id", c.id, "code", code.String(), "err", msg)
	return closeProtocol
}

// flush writes wbuf within WriteTimeout.
func (c *serverConn) flush() bool {
	if len(c.wbuf) == 0 {
		return true
	}
	c.nc.SetWriteDeadline(time.Now().Add(c.s.opts.WriteTimeout))
	_, err := c.nc.Write(c.wbuf)
	c.wbuf = c.wbuf[:0]
	c.pending = 0
	c.flushMetrics()
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.s.metrics.timeouts[timeoutWrite].Inc()
			c.s.warnRateLimited("ipc: connection closed: the client did not read its answers within the write timeout", "conn_id", c.id, "write_timeout", c.s.opts.WriteTimeout)
		}
		return false
	}
	return true
}

func (c *serverConn) flushMetrics() {
	for op, n := range c.frames {
		if n != 0 {
			c.s.metrics.frames[op].Add(float64(n))
			c.frames[op] = 0
		}
	}
}

func (r closeReason) String() string {
	return [...]string{"eof", "idle", "protocol_error", "write_failed", "read_failed", "drained"}[r]
}

// Timeout kinds, the label of verifyd_ipc_timeouts_total.
const (
	timeoutIdle = iota
	timeoutRead
	timeoutWrite
	numTimeouts
)

// serverMetrics holds the server's pre-resolved metric children. Without a
// Registerer they exist unregistered, so that the code needs no nil checks.
type serverMetrics struct {
	conns                               prometheus.Gauge
	accepted, refusedPeer, refusedLimit prometheus.Counter
	frames                              [OpError + 1]prometheus.Counter          // by opcode; 0 unused
	errors                              [CodeScopeTooLong + 1]prometheus.Counter // by code; 0 unused
	timeouts                            [numTimeouts]prometheus.Counter
}

func newServerMetrics(reg prometheus.Registerer) (*serverMetrics, error) {
	conns := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "verifyd", Subsystem: "ipc", Name: "connections",
		Help: "Socket connections being served.",
	})
	connsTotal := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "verifyd", Subsystem: "ipc", Name: "connections_total",
		Help: "Socket connections accepted, by result: accepted, refused_peer (peer credentials not allowed), refused_limit (max connections reached).",
	}, []string{"result"})
	frames := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "verifyd", Subsystem: "ipc", Name: "frames_total",
		Help: "Socket frames by opcode: requests received and answers sent.",
	}, []string{"op"})
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "verifyd", Subsystem: "ipc", Name: "errors_total",
		Help: "ERROR frames sent, by error code.",
	}, []string{"code"})
	timeouts := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "verifyd", Subsystem: "ipc", Name: "timeouts_total",
		Help: "Socket connections closed by a timeout: idle, read (a frame too slow to arrive) or write (a client not reading).",
	}, []string{"kind"})
	if reg != nil {
		for _, col := range []prometheus.Collector{conns, connsTotal, frames, errs, timeouts} {
			if err := reg.Register(col); err != nil {
				return nil, err
			}
		}
	}
	m := &serverMetrics{
		conns:        conns,
		accepted:     connsTotal.WithLabelValues("accepted"),
		refusedPeer:  connsTotal.WithLabelValues("refused_peer"),
		refusedLimit: connsTotal.WithLabelValues("refused_limit"),
	}
	for op := OpHello; op <= OpError; op++ {
		m.frames[op] = frames.WithLabelValues(op.String())
	}
	for code := CodeBadFrame; code <= CodeScopeTooLong; code++ {
		m.errors[code] = errs.WithLabelValues(code.String())
	}
	for i, kind := range [numTimeouts]string{"idle", "read", "write"} {
		m.timeouts[i] = timeouts.WithLabelValues(kind)
	}
	return m, nil
}
