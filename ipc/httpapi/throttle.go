package httpapi

import (
	"net"
	"net/netip"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/verifyd/verifyd/verify"
	"github.com/verifyd/verifyd/verify/throttle"
)

// verifyFrom verifies token and scope for the request ctx: through the
// throttle when one is configured (answering verify.RateLimited with a
// Retry-After header), else straight from the verifier. gateway says
// that the caller asks for its own clients (/v1/authz): it is then
// counted per source only as a trusted proxy that names its client,
// since counting a gateway's own address would let one of its clients
// lock out all the others.
func (s *Server) verifyFrom(ctx *fasthttp.RequestCtx, token, scope string, gateway bool) verify.Result {
	if s.gate == nil {
		return s.opts.Verifier.Verify(token, scope)
	}
	r, retry := s.gate.Verify(s.source(ctx, gateway), token, scope)
	if r.Reason == verify.RateLimited {
		var b [20]byte
		ctx.Response.Header.SetBytesV("Retry-After", strconv.AppendInt(b[:0], int64(throttle.RetryAfterSeconds(retry)), 10))
	}
	return r
}

// source returns who the request counts for: the connection's address;
// for a trusted proxy, the client its header names (or none); for a
// gateway that is not a trusted proxy, none.
func (s *Server) source(ctx *fasthttp.RequestCtx, gateway bool) throttle.Source {
	l := s.opts.Throttle
	remote := remoteAddr(ctx)
	if !l.TrustedProxy(remote) {
		if gateway {
			return throttle.Source{}
		}
		return throttle.AddrSource(remote)
	}
	return l.ForwardedSource(b2s(ctx.Request.Header.Peek(l.ClientIPHeader())))
}

// remoteAddr returns the IP address of the connection's peer, or the zero
// Addr when it has none (an in-memory listener).
func remoteAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	if a, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}
