package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/verifyd/verifyd/verify"
)

// revocationRequest is the body of POST /v1/admin/revocations. The times
// are kept raw: each may be an RFC 3339 string or a number of Unix seconds.
type revocationRequest struct {
	JTI       string          `json:"jti"`
	Subject   string          `json:"subject"`
	ExpiresAt json.RawMessage `json:"expires_at"`
	NotBefore json.RawMessage `json:"not_before"`
}

// revocationBody is a JWT revocation as the admin API shows it: a jti with
// its optional expires_at, or a subject with its not_before.
type revocationBody struct {
	JTI       string     `json:"jti,omitempty"`
	Subject   string     `json:"subject,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	NotBefore *time.Time `json:"not_before,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	Creator   string     `json:"creator,omitempty"`
}

type revocationList struct {
	Tokens   []revocationBody `json:"tokens"`
	Subjects []revocationBody `json:"subjects"`
}

// handleRevocations serves /v1/admin/revocations.
func (s *Server) handleRevocations(ctx *fasthttp.RequestCtx) {
	if !s.isAdmin(ctx) || !allowMethod(ctx, fasthttp.MethodGet, fasthttp.MethodPost) {
		return
	}
	c, cancel := s.adminContext()
	defer cancel()
	if ctx.IsGet() {
		s.listRevocations(c, ctx)
	} else {
		s.revokeJWT(c, ctx)
	}
}

func (s *Server) revokeJWT(c context.Context, ctx *fasthttp.RequestCtx) {
	var body revocationRequest
	if err := decodeBody(ctx, s.opts.MaxBodyBytes, &body); err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, "BAD_REQUEST", err.Error())
		return
	}
	r := verify.JWTRevocation{TokenID: body.JTI, Subject: body.Subject}
	var problems []string
	var err error
	if r.ExpiresAt, err = parseTime("expires_at", body.ExpiresAt); err != nil {
		problems = append(problems, err.Error())
	}
	if r.NotBefore, err = parseTime("not_before", body.NotBefore); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		writeError(ctx, fasthttp.StatusBadRequest, "BAD_REQUEST", strings.Join(problems, "; "))
		return
	}
	got, err := s.opts.Manager.RevokeJWT(c, r, "admin")
	if err != nil {
		s.answerError(ctx, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusCreated, toRevocationBody(got))
}

func (s *Server) listRevocations(c context.Context, ctx *fasthttp.RequestCtx) {
	all, err := s.opts.Manager.ListJWTRevocations(c)
	if err != nil {
		s.answerError(ctx, err)
		return
	}
	out := revocationList{Tokens: []revocationBody{}, Subjects: []revocationBody{}}
	for _, r := range all {
		if r.TokenID != "" {
			out.Tokens = append(out.Tokens, toRevocationBody(r))
		} else {
			out.Subjects = append(out.Subjects, toRevocationBody(r))
		}
	}
	writeJSON(ctx, fasthttp.StatusOK, out)
}

func toRevocationBody(r verify.JWTRevocation) revocationBody {
	return revocationBody{
		JTI:       r.TokenID,
		Subject:   r.Subject,
		ExpiresAt: timePtr(r.ExpiresAt),
		NotBefore: timePtr(r.NotBefore),
		CreatedAt: r.CreatedAt.UTC(),
		Creator:   r.Creator,
	}
}

// parseTime reads the time field name, given as an RFC 3339 string or as a
// JSON number of Unix seconds, with at most nine decimals (a JWT
// NumericDate). An absent field or null is the zero time. The range is left
// to the Manager, which reports it with the other problems.
func parseTime(name string, raw json.RawMessage) (time.Time, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, nil
	}
	bad := func(what string) error {
		return fmt.Errorf("%s %s is not an RFC 3339 time such as \"2026-05-01T12:00:00Z\" or a number of Unix seconds", name, what)
	}
	if raw[0] == '"' {
		var str string
		if err := json.Unmarshal(raw, &str); err != nil {
			return time.Time{}, bad("")
		}
		t, err := time.Parse(time.RFC3339, str)
		if err != nil {
			return time.Time{}, bad(fmt.Sprintf("%.64q", str))
		}
		return t, nil
	}
	num := string(raw)
	whole, frac, hasFrac := strings.Cut(num, ".")
	sec, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || whole == "" || whole == "-" || whole[0] == '+' || hasFrac && (frac == "" || len(frac) > 9) {
		return time.Time{}, bad(fmt.Sprintf("%.64s", num))
	}
	var nsec int64
	if hasFrac {
		for i := range 9 {
			nsec *= 10
			if i < len(frac) {
				c := frac[i]
				if c < '0' || c > '9' {
					return time.Time{}, bad(fmt.Sprintf("%.64s", num))
				}
				nsec += int64(c - '0')
			}
		}
		if strings.HasPrefix(whole, "-") {
			nsec = -nsec
		}
	}
	return time.Unix(sec, nsec).UTC(), nil
}
