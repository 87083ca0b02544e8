package httpapi

import (
	"errors"
	"fmt"
	"strings"
)

// ForwardAuth configures the forward-auth endpoint /v1/authz (nginx
// auth_request, Traefik forwardAuth, Envoy ext_authz in HTTP mode). The
// YAML keys are the snake_case names in the field tags; README.md and
// docs/integrations/ document each one.
type ForwardAuth struct {
	// Sources lists where a credential may be read from: "bearer"
	// (Authorization: Bearer), "basic" (Authorization: Basic, the password
	// being the token), "header" (APIKeyHeader), "query" (QueryParam of
	// the original URI) and "cookie" (Cookie). They are tried in that
	// order, whatever the order of the list. Default: bearer, basic,
	// header, query.
	Sources []string `yaml:"sources"`
	// APIKeyHeader is the header of the "header" source. Default
	// "X-Api-Key".
	APIKeyHeader string `yaml:"api_key_header"`
	// QueryParam is the query parameter of the original URI of the
	// "query" source. Default "key".
	QueryParam string `yaml:"query_param"`
	// Cookie is the cookie of the "cookie" source, required with it.
	Cookie string `yaml:"cookie"`
	// OriginalURIHeader and OriginalMethodHeader name the headers that
	// carry the original request's URI and method. Defaults
	// "X-Original-URI" and "X-Original-Method" (nginx); Traefik sends
	// X-Forwarded-Uri and X-Forwarded-Method. Only the headers named here
	// are read: a gateway that passes its clients' headers through must
	// not let a client choose the URI that is authorized. A request to
	// /v1/authz/<path> (Envoy's path_prefix) is its own original request,
	// and these headers are ignored for it.
	OriginalURIHeader    string `yaml:"original_uri_header"`
	OriginalMethodHeader string `yaml:"original_method_header"`
	// SubjectHeader, KindHeader and RolesHeader name the identity headers
	// of an allowed answer; "off" leaves one out. Defaults
	// "X-Auth-Subject", "X-Auth-Kind" and "X-Auth-Roles" (roles joined by
	// commas).
	SubjectHeader string `yaml:"subject_header"`
	KindHeader    string `yaml:"kind_header"`
	RolesHeader   string `yaml:"roles_header"`
	// Realm is the realm of the WWW-Authenticate challenges. Default
	// "verifyd".
	Realm string `yaml:"realm"`
	// Routes map the original method and path to the scope to decide,
	// when the auth URL carries no ?scope=. The first route that matches
	// wins.
	Routes []Route `yaml:"routes"`
	// Unmatched says what a request gets when neither ?scope= nor a route
	// gives its scope: "deny" (403) or "authenticate" (any valid
	// credential is allowed). Default: deny when routes are configured,
	// authenticate when none are.
	Unmatched string `yaml:"unmatched"`
}

// The credential sources of ForwardAuth.Sources, in the order they are
// tried.
const (
	SourceBearer = "bearer"
	SourceBasic  = "basic"
	SourceHeader = "header"
	SourceQuery  = "query"
	SourceCookie = "cookie"
)

var sourceOrder = [...]string{SourceBearer, SourceBasic, SourceHeader, SourceQuery, SourceCookie}

// The values of ForwardAuth.Unmatched.
const (
	UnmatchedDeny         = "deny"
	UnmatchedAuthenticate = "authenticate"
)

// headerOff leaves an identity header out.
const headerOff = "off"

// EnsureDefaults fills in unset fields.
func (f *ForwardAuth) EnsureDefaults() {
	if f.Sources == nil {
		f.Sources = []string{SourceBearer, SourceBasic, SourceHeader, SourceQuery}
	}
	def := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	def(&f.APIKeyHeader, "X-Api-Key")
	def(&f.QueryParam, "key")
	def(&f.OriginalURIHeader, "X-Original-URI")
	def(&f.OriginalMethodHeader, "X-Original-Method")
	def(&f.SubjectHeader, "X-Auth-Subject")
	def(&f.KindHeader, "X-Auth-Kind")
	def(&f.RolesHeader, "X-Auth-Roles")
	def(&f.Realm, "verifyd")
	if f.Unmatched == "" {
		f.Unmatched = UnmatchedAuthenticate
		if len(f.Routes) > 0 {
			f.Unmatched = UnmatchedDeny
		}
	}
}

// Validate reports every problem of f at once; call EnsureDefaults first.
func (f *ForwardAuth) Validate() error {
	_, err := f.compile()
	return err
}

// has reports whether source is enabled.
func (f *ForwardAuth) has(source string) bool {
	for _, s := range f.Sources {
		if s == source {
			return true
		}
	}
	return false
}

// compile checks f and returns what the handler needs.
func (f *ForwardAuth) compile() (*authzConfig, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("forward_auth."+format, args...)) }
	seen := map[string]bool{}
	for _, s := range f.Sources {
		known := false
		for _, k := range sourceOrder {
			known = known || s == k
		}
		switch {
		case !known:
			bad("sources: unknown source %q (bearer, basic, header, query, cookie)", s)
		case seen[s]:
			bad("sources: %q is listed twice", s)
		}
		seen[s] = true
	}
	if f.has(SourceCookie) && f.Cookie == "" {
		bad("cookie: the cookie source needs the cookie's name")
	}
	if !f.has(SourceCookie) && f.Cookie != "" {
		bad("cookie: %q is set, but \"cookie\" is not in sources", f.Cookie)
	}
	for name, v := range map[string]string{
		"api_key_header": f.APIKeyHeader, "original_uri_header": f.OriginalURIHeader,
		"original_method_header": f.OriginalMethodHeader, "subject_header": f.SubjectHeader,
		"kind_header": f.KindHeader, "roles_header": f.RolesHeader,
	} {
		if !validHeaderName(v) {
			bad("%s: %q is not an HTTP header name", name, v)
		}
	}
	if f.QueryParam == "" || strings.ContainsAny(f.QueryParam, "&=?# ") {
		bad("query_param: %q is not a query parameter name", f.QueryParam)
	}
	if strings.ContainsAny(f.Realm, "\"\\\r\n") || f.Realm == "" {
		bad("realm: %q must be non-empty text without quotes or backslashes", f.Realm)
	}
	if f.Unmatched != UnmatchedDeny && f.Unmatched != UnmatchedAuthenticate {
		bad("unmatched: %q is not deny or authenticate", f.Unmatched)
	}
	routes, err := compileRoutes(f.Routes)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	c := &authzConfig{
		bearer: f.has(SourceBearer), basic: f.has(SourceBasic),
		apiKeyHeader: headerIf(f.has(SourceHeader), f.APIKeyHeader),
		queryParam:   headerIf(f.has(SourceQuery), f.QueryParam),
		cookie:       headerIf(f.has(SourceCookie), f.Cookie),
		uriHeader:    f.OriginalURIHeader, methodHeader: f.OriginalMethodHeader,
		subjectHeader: headerIf(f.SubjectHeader != headerOff, f.SubjectHeader),
		kindHeader:    headerIf(f.KindHeader != headerOff, f.KindHeader),
		rolesHeader:   headerIf(f.RolesHeader != headerOff, f.RolesHeader),
		routes:        routes,
		denyUnmatched: f.Unmatched == UnmatchedDeny,
	}
	c.challengeMissing = `Bearer realm="` + f.Realm + `"`
	c.challengeInvalid = `Bearer realm="` + f.Realm + `", error="invalid_token"`
	c.challengeScope = `Bearer realm="` + f.Realm + `", error="insufficient_scope"`
	if c.basic {
		c.challengeBasic = `Basic realm="` + f.Realm + `", charset="UTF-8"`
	}
	return c, nil
}

func headerIf(on bool, name string) string {
	if on {
		return name
	}
	return ""
}

// validHeaderName reports whether name is an HTTP field name (an RFC 9110
// token), or "off".
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}

// authzConfig is a compiled ForwardAuth: header names of disabled sources
// and identity headers are empty.
type authzConfig struct {
	bearer, basic                      bool
	apiKeyHeader, queryParam, cookie   string
	uriHeader, methodHeader            string
	subjectHeader, kindHeader          string
	rolesHeader                        string
	routes                             *routeTable
	denyUnmatched                      bool
	challengeMissing, challengeInvalid string
	challengeScope, challengeBasic     string
}
