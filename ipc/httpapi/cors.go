package httpapi

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/valyala/fasthttp"
)

// CORS lets web pages of other origins call POST /v1/verify, the PAT API
// (/v1/pats) and the admin API (/v1/admin/) from a browser. It is off
// unless origins are listed. Forward auth, introspection, the broker
// adapters, the probes and /metrics never answer cross-origin requests:
// their callers are gateways and brokers, not browsers.
//
// Origins are listed exactly; there is no wildcard. The API's credentials
// travel in headers (Authorization, X-Admin-Key, X-Api-Key), never in
// cookies, so answers never carry Access-Control-Allow-Credentials, and a
// page of a listed origin still needs a credential of its own for every
// call but /v1/verify.
type CORS struct {
	// AllowedOrigins lists the origins allowed, each scheme://host[:port]
	// in lower case without a path, exactly as browsers send it in the
	// Origin header ("https://console.example",
	// "http://localhost:3000"). "*" and "null" are refused. Empty means
	// CORS is off: no answer carries CORS headers, and a preflight gets
	// what any OPTIONS request gets.
	AllowedOrigins []string `yaml:"allowed_origins"`
}

// Validate reports every origin that is not listed exactly as browsers
// send it.
func (c CORS) Validate() error {
	var errs []error
	for i, o := range c.AllowedOrigins {
		if err := checkOrigin(o); err != nil {
			errs = append(errs, fmt.Errorf("http.cors.allowed_origins[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

// checkOrigin reports what keeps o from being the serialization of an
// origin that a browser sends.
func checkOrigin(o string) error {
	switch o {
	case "*":
		return errors.New(`"*" is not allowed: list each origin, such as "https://console.example"`)
	case "null":
		return errors.New(`"null" is not allowed: sandboxed pages and local files all send it`)
	}
	u, err := url.Parse(o)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.Opaque != "" || u.User != nil ||
		u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.HasSuffix(o, "#") {
		return fmt.Errorf("%.128q is not an origin: want scheme://host[:port], scheme http or https, with no path (not even a trailing /)", o)
	}
	if o != strings.ToLower(o) {
		return fmt.Errorf("%.128q: write it in lower case, as browsers send it", o)
	}
	if p := u.Port(); u.Scheme == "http" && p == "80" || u.Scheme == "https" && p == "443" {
		return fmt.Errorf("%.128q: leave out the default port, as browsers do", o)
	}
	return nil
}

// Cross-origin access allowed by a preflight answer.
const (
	corsMethods      = "GET, POST, PATCH, DELETE"
	corsAllowHeaders = "Authorization, Content-Type, X-Admin-Key, X-Api-Key"
	corsMaxAge       = "600" // seconds a browser may keep a preflight answer
)

// corsPolicy is a compiled CORS configuration. It is immutable.
type corsPolicy struct {
	origins map[string]bool
}

// compile returns the policy of c, or nil when CORS is off.
func (c CORS) compile() (*corsPolicy, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if len(c.AllowedOrigins) == 0 {
		return nil, nil
	}
	p := &corsPolicy{origins: make(map[string]bool, len(c.AllowedOrigins))}
	for _, o := range c.AllowedOrigins {
		p.origins[o] = true
	}
	return p, nil
}

// corsRoute reports whether the endpoint at path may be called
// cross-origin.
func corsRoute(path string) bool {
	return path == "/v1/verify" || path == "/v1/pats" || strings.HasPrefix(path, "/v1/pats/") || strings.HasPrefix(path, "/v1/admin/")
}

// apply handles the CORS side of a request to path, before it is routed.
// A preflight (OPTIONS with Access-Control-Request-Method) is answered
// here, and apply reports true: 204 with the access allowed for a listed
// origin, 403 for any other; it carries no data of the endpoint, which
// never sees it. For an actual request from a listed origin, apply adds
// Access-Control-Allow-Origin to the answer, so that the page may read it;
// the request is served as any other, with the same authentication.
func (p *corsPolicy) apply(ctx *fasthttp.RequestCtx, path string) bool {
	if !corsRoute(path) {
		return false
	}
	h := &ctx.Response.Header
	h.Add("Vary", "Origin")
	origin := ctx.Request.Header.Peek("Origin")
	allowed := len(origin) > 0 && p.origins[string(origin)]
	if !ctx.IsOptions() || len(ctx.Request.Header.Peek("Access-Control-Request-Method")) == 0 {
		if allowed {
			h.SetBytesV("Access-Control-Allow-Origin", origin)
		}
		return false
	}
	if !allowed {
		writeError(ctx, fasthttp.StatusForbidden, "FORBIDDEN", "this origin may not call verifyd from a browser (http.cors.allowed_origins)")
		return true
	}
	h.SetBytesV("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Methods", corsMethods)
	h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
	h.Set("Access-Control-Max-Age", corsMaxAge)
	ctx.SetStatusCode(fasthttp.StatusNoContent)
	return true
}
