package httpapi

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/verify"
)

// accessRequestBody is the body of POST /v1/auth/request.
type accessRequestBody struct {
	AgentID     string `json:"agent_id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	CallbackURL string `json:"callback_url"`
}

// accessTicketBody answers POST /v1/auth/request.
type accessTicketBody struct {
	RequestToken string    `json:"request_token"`
	RequestID    string    `json:"request_id"`
	Status       string    `json:"status"`
	ExpiresAt    time.Time `json:"expires_at"`
}

// requestStatusBody answers GET /v1/auth/status/{request_token}: never a
// secret.
type requestStatusBody struct {
	RequestID string     `json:"request_id"`
	AgentID   string     `json:"agent_id"`
	Status    string     `json:"status"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	DecidedAt *time.Time `json:"decided_at,omitempty"`
	KeyID     string     `json:"key_id,omitempty"`
	Message   string     `json:"message"`
}

// requestBody is an access request as the admin API shows it: never the
// request token.
type requestBody struct {
	ID          string     `json:"id"`
	AgentID     string     `json:"agent_id"`
	Name        string     `json:"name,omitempty"`
	Description string     `json:"description,omitempty"`
	CallbackURL string     `json:"callback_url,omitempty"`
	ClientAddr  string     `json:"client_addr,omitempty"`
	Status      string     `json:"status"`
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   time.Time  `json:"expires_at"`
	DecidedAt   *time.Time `json:"decided_at,omitempty"`
	DecidedBy   string     `json:"decided_by,omitempty"`
	KeyID       string     `json:"key_id,omitempty"`
}

type requestList struct {
	Requests []requestBody `json:"requests"`
}

// approveBody is the optional body of POST /v1/admin/requests/{ref}/approve.
type approveBody struct {
	Roles     []string `json:"roles"`
	Scopes    []string `json:"scopes"`
	ExpiresIn string   `json:"expires_in"`
}

// approvalBody answers an approval: the agent's key, shown this once.
type approvalBody struct {
	RequestID string     `json:"request_id"`
	AgentID   string     `json:"agent_id"`
	KeyID     string     `json:"key_id"`
	AgentKey  string     `json:"agent_key"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	Roles     []string   `json:"roles"`
	Scopes    []string   `json:"scopes"`
	Message   string     `json:"message"`
}

// agentRevocationBody answers DELETE /v1/admin/agents/{agent_id}.
type agentRevocationBody struct {
	AgentID string   `json:"agent_id"`
	Revoked []string `json:"revoked"`
}

// handleAuth serves the agents' side of the access-request flow, which
// needs no credential: POST /v1/auth/request and GET
// /v1/auth/status/{request_token}. rest is the path after /v1/auth.
func (s *Server) handleAuth(ctx *fasthttp.RequestCtx, rest string) {
	ctx.Response.Header.Set("Cache-Control", "no-store")
	switch {
	case rest == "/request":
		if allowMethod(ctx, fasthttp.MethodPost) {
			s.requestAccess(ctx)
		}
	case strings.HasPrefix(rest, "/status/"):
		if allowMethod(ctx, fasthttp.MethodGet) {
			s.requestStatus(ctx, rest[len("/status/"):])
		}
	default:
		writeError(ctx, fasthttp.StatusNotFound, "NOT_FOUND", "no such endpoint: "+string(ctx.Path()))
	}
}

func (s *Server) requestAccess(ctx *fasthttp.RequestCtx) {
	var body accessRequestBody
	if err := decodeBody(ctx, s.opts.MaxBodyBytes, &body); err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, "BAD_REQUEST", err.Error())
		return
	}
	c, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	t, err := s.opts.Manager.RequestAccess(c, verify.AccessSpec{
		AgentID: body.AgentID, Name: body.Name, Description: body.Description, CallbackURL: body.CallbackURL,
		ClientAddr: ctx.RemoteIP().String(),
	})
	if err != nil {
		s.answerRequestError(ctx, err)
		return
	}
	status := fasthttp.StatusCreated
	if t.Repeat {
		status = fasthttp.StatusOK
	}
	writeJSON(ctx, status, accessTicketBody{RequestToken: t.Token, RequestID: t.Request.ID, Status: "pending", ExpiresAt: t.Request.ExpiresAt.UTC()})
}

func (s *Server) requestStatus(ctx *fasthttp.RequestCtx, token string) {
	r, err := s.opts.Manager.RequestStatus(token)
	if err != nil {
		s.answerRequestError(ctx, err)
		return
	}
	st := s.opts.Manager.RequestState(&r)
	out := requestStatusBody{
		RequestID: r.ID, AgentID: r.AgentID, Status: st, CreatedAt: r.CreatedAt.UTC(), ExpiresAt: r.ExpiresAt.UTC(),
		DecidedAt: timePtr(r.DecidedAt), KeyID: r.KeyID,
	}
	switch st {
	case "pending":
		out.Message = "waiting for an administrator's decision"
	case "approved":
		out.Message = "approved: the key was handed to the approving administrator, who passes it on; it is never shown here"
	case "denied":
		out.Message = "denied by an administrator"
	case "expired":
		out.Message = "expired without a decision; the agent may ask again"
	}
	writeJSON(ctx, fasthttp.StatusOK, out)
}

// handleAdminRequests serves /v1/admin/requests; rest is the path after it
// ("", "/{ref}", "/{ref}/approve" or "/{ref}/deny", where ref is a
// request's ID or token).
func (s *Server) handleAdminRequests(ctx *fasthttp.RequestCtx, rest string) {
	if !s.isAdmin(ctx) {
		return
	}
	c, cancel := s.adminContext()
	defer cancel()
	m := s.opts.Manager
	if rest == "" || rest == "/" {
		if !allowMethod(ctx, fasthttp.MethodGet) {
			return
		}
		args := ctx.QueryArgs()
		if args.Len() > 1 || args.Len() == 1 && !args.Has("status") {
			writeError(ctx, fasthttp.StatusBadRequest, "BAD_REQUEST", "the only parameter is status (pending, approved, denied, expired or all)")
			return
		}
		state := string(args.Peek("status"))
		if state == "" {
			state = "pending"
		}
		rs, err := m.ListRequests(state)
		if err != nil {
			s.answerRequestError(ctx, err)
			return
		}
		out := requestList{Requests: make([]requestBody, 0, len(rs))}
		for i := range rs {
			out.Requests = append(out.Requests, s.requestBody(&rs[i]))
		}
		writeJSON(ctx, fasthttp.StatusOK, out)
		return
	}
	ref, action, _ := strings.Cut(rest[1:], "/")
	switch action {
	case "":
		if allowMethod(ctx, fasthttp.MethodGet) {
			s.getRequest(ctx, ref)
		}
	case "approve":
		if !allowMethod(ctx, fasthttp.MethodPost) {
			return
		}
		var body approveBody
		if len(ctx.PostBody()) > 0 {
			if err := decodeBody(ctx, s.opts.MaxBodyBytes, &body); err != nil {
				writeError(ctx, fasthttp.StatusBadRequest, "BAD_REQUEST", err.Error())
				return
			}
		}
		g := verify.Grant{Roles: body.Roles, Scopes: body.Scopes}
		if body.ExpiresIn != "" {
			d, err := time.ParseDuration(body.ExpiresIn)
			if err != nil || d <= 0 {
				writeError(ctx, fasthttp.StatusBadRequest, "BAD_REQUEST", fmt.Sprintf("expires_in %.64q is not a positive duration such as \"2160h\"", body.ExpiresIn))
				return
			}
			g.ExpiresIn = d
		}
		a, err := m.ApproveRequest(c, ref, g)
		if err != nil {
			s.answerRequestError(ctx, err)
			return
		}
		ctx.Response.Header.Set("Cache-Control", "no-store")
		writeJSON(ctx, fasthttp.StatusOK, approvalBody{
			RequestID: a.Request.ID, AgentID: a.Request.AgentID, KeyID: a.Key.ID, AgentKey: a.Secret,
			ExpiresAt: timePtr(a.Key.ExpiresAt), Roles: nonNil(a.Key.Roles), Scopes: nonNil(a.Key.Scopes),
			Message: "the agent key is shown only this once: pass it to the agent now; it cannot be retrieved again",
		})
	case "deny":
		if !allowMethod(ctx, fasthttp.MethodPost) {
			return
		}
		if len(ctx.PostBody()) > 0 {
			var none struct{}
			if err := decodeBody(ctx, s.opts.MaxBodyBytes, &none); err != nil {
				writeError(ctx, fasthttp.StatusBadRequest, "BAD_REQUEST", err.Error())
				return
			}
		}
		r, err := m.DenyRequest(c, ref)
		if err != nil {
			s.answerRequestError(ctx, err)
			return
		}
		writeJSON(ctx, fasthttp.StatusOK, s.requestBody(&r))
	default:
		writeError(ctx, fasthttp.StatusNotFound, "NOT_FOUND", "no such endpoint: "+string(ctx.Path()))
	}
}

// getRequest answers GET /v1/admin/requests/{ref}.
func (s *Server) getRequest(ctx *fasthttp.RequestCtx, ref string) {
	r, err := s.opts.Manager.GetRequest(ref)
	if err != nil {
		s.answerRequestError(ctx, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, s.requestBody(&r))
}

// handleAdminAgents serves DELETE /v1/admin/agents/{agent_id}; rest is the
// path after /v1/admin/agents.
func (s *Server) handleAdminAgents(ctx *fasthttp.RequestCtx, rest string) {
	if !s.isAdmin(ctx) {
		return
	}
	agent, ok := strings.CutPrefix(rest, "/")
	if !ok || agent == "" || strings.Contains(agent, "/") {
		writeError(ctx, fasthttp.StatusNotFound, "NOT_FOUND", "no such endpoint: "+string(ctx.Path()))
		return
	}
	if !allowMethod(ctx, fasthttp.MethodDelete) {
		return
	}
	c, cancel := s.adminContext()
	defer cancel()
	revoked, err := s.opts.Manager.RevokeAgent(c, agent)
	if errors.Is(err, keystore.ErrNotFound) {
		writeError(ctx, fasthttp.StatusNotFound, "NOT_FOUND", "no key has this agent as its subject")
		return
	}
	if err != nil {
		s.answerError(ctx, err)
		return
	}
	out := agentRevocationBody{AgentID: agent, Revoked: []string{}}
	for _, r := range revoked {
		out.Revoked = append(out.Revoked, r.ID)
	}
	writeJSON(ctx, fasthttp.StatusOK, out)
}

func (s *Server) requestBody(r *keystore.AccessRequest) requestBody {
	return requestBody{
		ID: r.ID, AgentID: r.AgentID, Name: r.Name, Description: r.Description, CallbackURL: r.CallbackURL,
		ClientAddr: r.ClientAddr, Status: s.opts.Manager.RequestState(r), CreatedAt: r.CreatedAt.UTC(),
		ExpiresAt: r.ExpiresAt.UTC(), DecidedAt: timePtr(r.DecidedAt), DecidedBy: r.DecidedBy, KeyID: r.KeyID,
	}
}

// answerRequestError maps an error of the access-request flow to a
// response.
func (s *Server) answerRequestError(ctx *fasthttp.RequestCtx, err error) {
	var state *verify.RequestStateError
	msg := strings.TrimPrefix(err.Error(), "verify: ")
	switch {
	case errors.Is(err, verify.ErrRequestNotFound):
		writeError(ctx, fasthttp.StatusNotFound, "NOT_FOUND", "no access request with this token or id")
	case errors.As(err, &state):
		writeError(ctx, fasthttp.StatusConflict, "CONFLICT", msg+"; a request is decided once")
	case errors.Is(err, verify.ErrAgentHasKey):
		writeError(ctx, fasthttp.StatusConflict, "CONFLICT", msg+"; an administrator must revoke it (DELETE /v1/admin/agents/{agent_id}) before the agent may ask again")
	case errors.Is(err, verify.ErrRequestPending):
		writeError(ctx, fasthttp.StatusConflict, "CONFLICT", msg+" with a different name, description or callback_url; repeat it exactly to get its token, or wait for its decision or expiry")
	case errors.Is(err, verify.ErrTooManyRequests):
		writeError(ctx, fasthttp.StatusTooManyRequests, "RATE_LIMITED", msg)
	default:
		s.answerError(ctx, err)
	}
}
