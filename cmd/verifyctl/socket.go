package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/verifyd/verifyd/internal/adminclient"
	"github.com/verifyd/verifyd/ipc"
	"github.com/verifyd/verifyd/verify"
)

// socketPath returns the Unix socket a command should use: flagPath when
// the command's --socket was given, else $VERIFYD_SOCKET unless --addr was
// given (an explicit HTTP address wins over the environment). "" means
// HTTP.
func (s *session) socketPath(flagPath string) string {
	if flagPath != "" {
		return flagPath
	}
	if s.g.addrSet {
		return ""
	}
	return s.getenv(envSocket)
}

// dialSocket connects to the daemon's Unix socket with one connection,
// within the --timeout of the command.
func (s *session) dialSocket(ctx context.Context, path string) (*ipc.Client, error) {
	if s.g.timeout <= 0 {
		return nil, usagef(s.cmd.name, "--timeout must be positive")
	}
	c, err := ipc.Dial(ctx, path, &ipc.ClientOptions{
		Conns:       1,
		DialTimeout: s.g.timeout,
		Logger:      slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return nil, socketError(path, err, s.g.timeout)
	}
	return c, nil
}

// socketError describes a failure to reach the daemon on its socket or to
// get an answer from it, with the exit status it maps to.
func socketError(path string, err error, timeout time.Duration) error {
	var se *ipc.ServerError
	switch {
	case errors.Is(err, ipc.ErrTooLong):
		return &exitError{code: exitUsage, msg: fmt.Sprintf("socket %s: the token or scope is longer than the daemon accepts", path)}
	case errors.As(err, &se) && se.Code == ipc.CodeShuttingDown:
		return &exitError{code: exitUnavailable, msg: fmt.Sprintf("socket %s: the daemon is shutting down", path)}
	case errors.Is(err, context.DeadlineExceeded):
		return &exitError{code: exitUnavailable, msg: fmt.Sprintf("socket %s: no answer within %v", path, timeout)}
	}
	return &exitError{code: exitUnavailable, msg: fmt.Sprintf("socket %s: %v", path, err)}
}

// verifySocket runs verify over the Unix socket at path: the same decision,
// output and exit status as over HTTP.
func verifySocket(ctx context.Context, s *session, path, token, scope string) error {
	ctx, cancel := context.WithTimeout(ctx, s.g.timeout)
	defer cancel()
	c, err := s.dialSocket(ctx, path)
	if err != nil {
		return err
	}
	defer c.Close()
	r, err := c.Verify(ctx, token, scope)
	if err != nil {
		return socketError(path, err, s.g.timeout)
	}
	res := decisionOf(r)
	if st := r.Status.HTTPStatus(); st == http.StatusBadRequest || st >= http.StatusInternalServerError {
		// Over HTTP these are error answers (invalid_scope, unavailable):
		// the decision is printed only for scripts, and the status is 2 or 3.
		if s.g.output.json {
			if err := s.printJSON(res); err != nil {
				return err
			}
		}
		return &adminclient.APIError{Status: st, Code: res.Code, Err: res.Error, Message: res.Message}
	}
	if err := s.writeDecision(res, false); err != nil {
		return err
	}
	if !res.Allow {
		return &deniedError{msg: res.Message}
	}
	return nil
}

// decisionOf converts a socket answer into the HTTP API's decision, field
// for field. As over HTTP, a refusal carries no principal. The socket
// protocol does not carry the credential's own scopes, the policy's reason
// or what matched beyond the grant.
func decisionOf(r ipc.Result) adminclient.VerifyResult {
	if r.Status != verify.OK {
		return adminclient.VerifyResult{
			Status:  r.Status.String(),
			Code:    r.Status.ErrorCode(),
			Error:   r.Status.String(),
			Message: r.Status.Message(),
		}
	}
	d := adminclient.VerifyResult{
		Allow:      true,
		Status:     r.Status.String(),
		Subject:    r.Subject,
		Kind:       r.Kind,
		KeyID:      r.KeyID,
		Source:     r.Source,
		Realm:      r.Realm,
		Roles:      r.Roles,
		Grant:      r.Grant,
		CacheTTLMS: r.CacheTTL.Milliseconds(),
	}
	if !r.ExpiresAt.IsZero() {
		d.ExpiresAt = r.ExpiresAt.UTC()
	}
	return d
}

// pingResult is the output of ping -o json.
type pingResult struct {
	Socket        string `json:"socket"`
	RoundTripUS   int64  `json:"round_trip_us"`
	Version       uint16 `json:"version"`
	MaxFrameBytes uint32 `json:"max_frame_bytes"`
	MaxInFlight   uint32 `json:"max_in_flight"`
	MaxTokenBytes uint32 `json:"max_token_bytes"`
	MaxScopeBytes uint32 `json:"max_scope_bytes"`
	IdleTimeoutMS uint32 `json:"idle_timeout_ms"`
}

var pingCmd = &command{
	name:     "ping",
	synopsis: "ping [--socket PATH]",
	summary:  "check that the daemon answers on its Unix socket",
	help: `Connects to the daemon's Unix socket, sends PING and prints the round-trip time
and the limits the daemon states for the connection: the protocol version, the
longest frame, token and scope it accepts, the requests a client may have
unanswered on one connection, and the idle timeout. No admin key is needed.

The socket is --socket PATH, else $VERIFYD_SOCKET. The exit status is 0 when
the daemon answered and 3 when it cannot be reached or does not answer within
--timeout.

Flags:
  --socket PATH               the daemon's Unix socket (default $VERIFYD_SOCKET)
`,
	maxArgs: 0,
	bind: func(fs *flag.FlagSet) func(context.Context, *session, []string) error {
		var socket string
		fs.StringVar(&socket, "socket", "", "")
		return func(ctx context.Context, s *session, _ []string) error {
			path := socket
			if path == "" {
				path = s.getenv(envSocket)
			}
			if path == "" {
				return usagef("ping", "no socket: pass --socket PATH or set %s", envSocket)
			}
			if s.g.timeout <= 0 {
				return usagef("ping", "--timeout must be positive")
			}
			ctx, cancel := context.WithTimeout(ctx, s.g.timeout)
			defer cancel()
			c, err := s.dialSocket(ctx, path)
			if err != nil {
				return err
			}
			defer c.Close()
			start := time.Now()
			if err := c.Ping(ctx); err != nil {
				return socketError(path, err, s.g.timeout)
			}
			rtt := time.Since(start)
			return s.printPing(path, rtt, c.Limits())
		}
	},
}

// printPing prints the answer to ping: as JSON, or as a field list.
func (s *session) printPing(path string, rtt time.Duration, h ipc.HelloOK) error {
	if s.g.output.json {
		return s.printJSON(pingResult{
			Socket:        path,
			RoundTripUS:   rtt.Microseconds(),
			Version:       h.Version,
			MaxFrameBytes: h.MaxFrameBytes,
			MaxInFlight:   h.MaxInFlight,
			MaxTokenBytes: h.MaxTokenBytes,
			MaxScopeBytes: h.MaxScopeBytes,
			IdleTimeoutMS: h.IdleTimeoutMS,
		})
	}
	tw := newTabWriter(s.stdout)
	row := func(name, value string) { fmt.Fprintf(tw, "%s:\t%s\n", name, value) }
	u := func(v uint32) string { return strconv.FormatUint(uint64(v), 10) }
	row("socket", clean(path))
	row("round trip", rtt.Round(time.Microsecond).String())
	row("protocol version", strconv.Itoa(int(h.Version)))
	row("max frame bytes", u(h.MaxFrameBytes))
	row("max in flight", u(h.MaxInFlight))
	row("max token bytes", u(h.MaxTokenBytes))
	row("max scope bytes", u(h.MaxScopeBytes))
	row("idle timeout", (time.Duration(h.IdleTimeoutMS) * time.Millisecond).String())
	return tw.Flush()
}
