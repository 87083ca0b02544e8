package httpapi

import (
	"errors"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/verifyd/verifyd/rbac"
	"github.com/verifyd/verifyd/verify"
)

// ErrNoPolicyFile is returned by a PolicyAdmin's Reload when no policy file
// is configured: the default policy is in force and there is nothing to
// reload. The endpoint answers 409.
var ErrNoPolicyFile = errors.New("httpapi: no policy file is configured")

// PolicyAdmin reloads the authorization policy from its file and reports
// on it; cmd/verifyd implements it (only cmd reads files). Implementations
// must be safe for concurrent use.
type PolicyAdmin interface {
	// ReloadPolicy reads and validates the policy file and puts it in
	// force, unless it is Equal to the policy in force. On error the
	// policy in force is kept: the error is a *rbac.PolicyError listing
	// every problem of an invalid file, ErrNoPolicyFile, or another error
	// for a file that cannot be read. The status is returned either way.
	ReloadPolicy() (PolicyStatus, error)
	// PolicyStatus reports the policy in force and the last reload.
	PolicyStatus() PolicyStatus
}

// PolicyStatus describes the policy in force.
type PolicyStatus struct {
	Policy *rbac.Policy // in force; never nil
	File   string       // the policy file; "" when none is configured
	// LoadedAt is when the policy in force was put in force: at start, or
	// by the last reload that changed it.
	LoadedAt time.Time
	// LastReload is when the policy was last reloaded, successfully or
	// not; zero when it was not since start.
	LastReload time.Time
	// LastError is the error of the last reload; nil when it succeeded
	// (or there was none).
	LastError error
	// Changed reports, for a reload, whether it put a new policy in force
	// (false: the file holds the same policy).
	Changed bool
}

// policySummary is rbac.Summary as JSON.
type policySummary struct {
	Roles     int `json:"roles"`
	Patterns  int `json:"patterns"`
	Subjects  int `json:"subjects"`
	ACLs      int `json:"acls"`
	Streams   int `json:"streams"`
	BoundSets int `json:"bound_sets"`
}

// problemBody is one problem of an invalid policy file.
type problemBody struct {
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
	Text    string `json:"text"` // "line:column: path: message"
}

// policyBody is the answer of GET /v1/admin/policy and of a reload.
type policyBody struct {
	Mode       string        `json:"mode"`
	File       string        `json:"file"`
	LoadedAt   *time.Time    `json:"loaded_at,omitempty"`
	Summary    policySummary `json:"summary"`
	Changed    *bool         `json:"changed,omitempty"` // reloads only
	LastReload *time.Time    `json:"last_reload,omitempty"`
	LastError  string        `json:"last_error,omitempty"`
	Problems   []problemBody `json:"problems,omitempty"` // of LastError, for an invalid file
}

// policyErrorBody is the 400 answer of a reload that failed.
type policyErrorBody struct {
	errorBody
	Problems []problemBody `json:"problems,omitempty"`
}

func problemsOf(err error) []problemBody {
	var pe *rbac.PolicyError
	if !errors.As(err, &pe) {
		return nil
	}
	out := make([]problemBody, 0, len(pe.Problems))
	for _, p := range pe.Problems {
		out = append(out, problemBody{Line: p.Line, Column: p.Column, Path: p.Path, Message: p.Message, Text: p.String()})
	}
	return out
}

func (s *Server) policyStatus() PolicyStatus {
	if s.opts.Policy != nil {
		return s.opts.Policy.PolicyStatus()
	}
	return PolicyStatus{Policy: s.opts.Verifier.Policy()}
}

func policyJSON(st PolicyStatus) policyBody {
	p := st.Policy
	sum := p.Summary()
	out := policyBody{
		Mode: p.Mode().String(),
		File: st.File,
		Summary: policySummary{
			Roles: sum.Roles, Patterns: sum.Patterns, Subjects: sum.Subjects,
			ACLs: sum.ACLs, Streams: sum.Streams, BoundSets: sum.BoundSets,
		},
		LoadedAt:   timePtr(st.LoadedAt),
		LastReload: timePtr(st.LastReload),
	}
	if st.LastError != nil {
		out.LastError = st.LastError.Error()
		out.Problems = problemsOf(st.LastError)
	}
	return out
}

// handlePolicy serves /v1/admin/policy; rest is the path after it ("",
// "/reload" or "/explain").
func (s *Server) handlePolicy(ctx *fasthttp.RequestCtx, rest string) {
	if !s.isAdmin(ctx) {
		return
	}
	switch rest {
	case "", "/":
		if allowMethod(ctx, fasthttp.MethodGet) {
			writeJSON(ctx, fasthttp.StatusOK, policyJSON(s.policyStatus()))
		}
	case "/reload":
		if allowMethod(ctx, fasthttp.MethodPost) {
			s.reloadPolicy(ctx)
		}
	case "/explain":
		switch {
		case ctx.IsPost():
			s.explainToken(ctx)
		case allowMethod(ctx, fasthttp.MethodGet, fasthttp.MethodPost):
			s.explainPolicy(ctx)
		}
	default:
		writeError(ctx, fasthttp.StatusNotFound, "NOT_FOUND", "no such endpoint: "+string(ctx.Path()))
	}
}

// reloadPolicy serves POST /v1/admin/policy/reload: 200 with the policy in
// force (changed or not), 400 with every problem of an invalid file (the
// old policy keeps serving), 409 when no policy file is configured.
func (s *Server) reloadPolicy(ctx *fasthttp.RequestCtx) {
	if len(ctx.PostBody()) > 0 {
		var none struct{}
		if err := decodeBody(ctx, s.opts.MaxBodyBytes, &none); err != nil {
			writeError(ctx, fasthttp.StatusBadRequest, "BAD_REQUEST", err.Error())
			return
		}
	}
	if s.opts.Policy == nil {
		s.auditReload(PolicyStatus{}, ErrNoPolicyFile)
		writeError(ctx, fasthttp.StatusConflict, "CONFLICT", "no policy file is configured (policy: in the configuration): the default policy, deny_all, is in force")
		return
	}
	st, err := s.opts.Policy.ReloadPolicy()
	s.auditReload(st, err)
	switch {
	case err == nil:
		out := policyJSON(st)
		out.Changed = &st.Changed
		writeJSON(ctx, fasthttp.StatusOK, out)
	case errors.Is(err, ErrNoPolicyFile):
		writeError(ctx, fasthttp.StatusConflict, "CONFLICT", "no policy file is configured (policy: in the configuration): the default policy, deny_all, is in force")
	default:
		msg := err.Error() + " (the policy in force is unchanged)"
		writeJSON(ctx, fasthttp.StatusBadRequest, policyErrorBody{
			errorBody: errorBody{Code: "BAD_REQUEST", Error: "bad_request", Message: msg},
			Problems:  problemsOf(err),
		})
	}
}

// explainDecision is rbac.Decision as JSON.
type explainDecision struct {
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason"`
	Role    string `json:"role,omitempty"`
	Project string `json:"project,omitempty"`
	Pattern string `json:"pattern,omitempty"`
	Text    string `json:"text"`
}

// explainStep is rbac.Step as JSON.
type explainStep struct {
	Kind    string `json:"kind"`
	Role    string `json:"role,omitempty"`
	Via     string `json:"via,omitempty"`
	Project string `json:"project,omitempty"`
	Pattern string `json:"pattern,omitempty"`
	Filled  string `json:"filled,omitempty"`
	Matched bool   `json:"matched"`
	Note    string `json:"note,omitempty"`
	Text    string `json:"text"`
}

// explainBody is rbac.Explanation as JSON.
type explainBody struct {
	Scope     string          `json:"scope"`
	Mode      string          `json:"mode"`
	Subject   string          `json:"subject,omitempty"`
	Anonymous bool            `json:"anonymous"`
	Decision  explainDecision `json:"decision"`
	Steps     []explainStep   `json:"steps"`
	Text      string          `json:"text"`
}

// maxExplainRoles bounds the roles of one explain request.
const maxExplainRoles = 256

// explainPolicy serves GET /v1/admin/policy/explain?subject=&project=&realm=&role=&scope=:
// how the policy in force decides scope for a principal with that subject
// and realm, carrying the roles given (global ones, or with project, held
// in that project) besides those the policy assigns to the subject. With
// no subject, role or realm, it explains an anonymous request. With
// key_id instead, the principal is that of the stored key: its subject,
// roles, project roles and own scopes.
func (s *Server) explainPolicy(ctx *fasthttp.RequestCtx) {
	q := ctx.QueryArgs()
	scope := string(q.Peek("scope"))
	subject := string(q.Peek("subject"))
	project := string(q.Peek("project"))
	realm := string(q.Peek("realm"))
	keyID := string(q.Peek("key_id"))
	var roles []string
	for _, r := range q.PeekMulti("role") {
		roles = append(roles, string(r))
	}
	var problems []string
	if scope == "" {
		problems = append(problems, "scope is required")
	}
	if keyID != "" && (subject != "" || len(roles) > 0 || realm != "" || project != "") {
		problems = append(problems, "key_id names the whole principal: leave out subject, role, realm and project")
	}
	if subject == "" && (len(roles) > 0 || realm != "" || project != "") {
		problems = append(problems, "subject is required with role, realm or project (leave all out to explain an anonymous request)")
	}
	if project != "" && len(roles) == 0 {
		problems = append(problems, "project needs at least one role held in it")
	}
	if len(roles) > maxExplainRoles {
		problems = append(problems, "too many roles")
	}
	for _, r := range roles {
		if r == "" {
			problems = append(problems, "role must not be empty")
			break
		}
	}
	for _, f := range [...]struct{ name, v string }{{"scope", scope}, {"subject", subject}, {"project", project}, {"realm", realm}, {"key_id", keyID}} {
		if len(f.v) > rbac.MaxLen {
			problems = append(problems, f.name+" is too long")
		}
	}
	if len(problems) > 0 {
		writeError(ctx, fasthttp.StatusBadRequest, "BAD_REQUEST", strings.Join(problems, "; "))
		return
	}
	var pr *rbac.Principal
	if keyID != "" {
		rec, err := s.opts.Manager.GetKey(keyID)
		if err != nil {
			s.answerError(ctx, err)
			return
		}
		pr = &rbac.Principal{Subject: rec.Subject, KeyID: rec.ID, ExpiresAt: rec.ExpiresAt, Profile: &rbac.Profile{
			Kind: rec.Kind.String(), Roles: rec.Roles, ProjectRoles: rec.ProjectRoles, Scopes: rec.Scopes,
		}}
	} else if subject != "" {
		pr = &rbac.Principal{Subject: subject, Profile: &rbac.Profile{Realm: realm}}
		if project != "" {
			pr.ProjectRoles = map[string][]string{project: roles}
		} else {
			pr.Roles = roles
		}
	}
	s.writeExplanation(ctx, pr, scope)
}

// explainTokenRequest is the body of POST /v1/admin/policy/explain.
type explainTokenRequest struct {
	Token string `json:"token"`
	Scope string `json:"scope"`
}

// explainToken serves POST /v1/admin/policy/explain {"token", "scope"}:
// how the policy in force decides scope for the principal of a credential,
// verified as POST /v1/verify would (a JWT's realm, roles and scope claims
// included). A credential that is not valid is refused with its status:
// there is no principal to explain.
func (s *Server) explainToken(ctx *fasthttp.RequestCtx) {
	var req explainTokenRequest
	if err := decodeBody(ctx, s.opts.MaxBodyBytes, &req); err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, "BAD_REQUEST", err.Error())
		return
	}
	var problems []string
	if req.Token == "" {
		problems = append(problems, "token is required")
	}
	if req.Scope == "" {
		problems = append(problems, "scope is required")
	} else if len(req.Scope) > rbac.MaxLen {
		problems = append(problems, "scope is too long")
	}
	if len(problems) > 0 {
		writeError(ctx, fasthttp.StatusBadRequest, "BAD_REQUEST", strings.Join(problems, "; "))
		return
	}
	r := s.opts.Verifier.Authenticate(req.Token)
	if r.Reason != verify.OK {
		writeJSON(ctx, fasthttp.StatusUnprocessableEntity, verifyDenied{
			Status:  r.Reason.String(),
			Reason:  r.Reason.String(),
			Code:    "INVALID_CREDENTIAL",
			Error:   "invalid_credential",
			Message: "the token is not a valid credential (" + r.Reason.String() + "): " + r.Reason.Message(),
		})
		return
	}
	s.writeExplanation(ctx, r.Principal, req.Scope)
}

// writeExplanation answers with how the policy in force decides scope for
// pr (nil: an anonymous request).
func (s *Server) writeExplanation(ctx *fasthttp.RequestCtx, pr *rbac.Principal, scope string) {
	e := s.opts.Verifier.Policy().Explain(pr, scope)
	d := e.Decision
	out := explainBody{
		Scope:     e.Scope,
		Mode:      e.Mode.String(),
		Subject:   e.Subject,
		Anonymous: e.Anonymous,
		Decision:  explainDecision{Allowed: d.Allowed, Reason: d.Reason.String(), Role: d.Role, Project: d.Project, Pattern: d.Pattern, Text: d.String()},
		Steps:     make([]explainStep, 0, len(e.Steps)),
		Text:      e.String(),
	}
	for _, st := range e.Steps {
		out.Steps = append(out.Steps, explainStep{
			Kind: st.Kind, Role: st.Role, Via: st.Via, Project: st.Project, Pattern: st.Pattern,
			Filled: st.Filled, Matched: st.Matched, Note: st.Note, Text: st.String(),
		})
	}
	writeJSON(ctx, fasthttp.StatusOK, out)
}
