package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// gatewayDoc returns the fenced block of docs/integrations/<page> that the
// line "<!-- test: <which> -->" right before it marks, and checks that
// the page has exactly one such block, tagged lang.
func gatewayDoc(t *testing.T, page, which, lang string) string {
	t.Helper()
	file := filepath.Join("..", "..", "docs", "integrations", page)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	marker := "<!-- test: " + which + " -->"
	lines := strings.Split(string(b), "\n")
	var block string
	found := 0
	for i, l := range lines {
		if strings.TrimSpace(l) != marker {
			continue
		}
		found++
		if i+1 == len(lines) || strings.TrimSpace(lines[i+1]) != "```"+lang {
			t.Fatalf("%s: %s is not followed by a ```%s fence", file, marker, lang)
		}
		var body strings.Builder
		closed := false
		for _, l := range lines[i+2:] {
			if strings.TrimSpace(l) == "```" {
				closed = true
				break
			}
			body.WriteString(l + "\n")
		}
		if !closed {
			t.Fatalf("%s: the block after %s is not closed", file, marker)
		}
		block = body.String()
	}
	if found != 1 {
		t.Fatalf("%s: %d blocks marked %s, want 1", file, found, marker)
	}
	return block
}

// replaceAddr replaces every occurrence of the documented address old in
// text by new; the documented address must occur.
func replaceAddr(t *testing.T, text, old, new string) string {
	t.Helper()
	if !strings.Contains(text, old) {
		t.Fatalf("the configuration does not use the documented address %s:\n%s", old, text)
	}
	return strings.ReplaceAll(text, old, new)
}

// startForwardAuthDaemon runs verifyd with the configuration file body
// (a forward_auth: section) and the admin key policyAdminKey.
func startForwardAuthDaemon(t *testing.T, body string) *daemon {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "verifyd.yaml")
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return startDaemon(t, t.TempDir(), "VERIFYD_CONFIG="+cfg, "VERIFYD_ADMIN_KEY="+policyAdminKey)
}

// gatewayKeys are the principals of the contract tests.
type gatewayKeys struct {
	pub, reader, roleless keyAnswer
}

// createGatewayKeys creates the principals: a publisher of project p1
// with two roles, a reader of reports, and an agent without roles.
func createGatewayKeys(d *daemon) gatewayKeys {
	return gatewayKeys{
		pub: d.createKey(map[string]any{"subject": "publisher-1", "roles": []string{"publisher", "auditor"},
			"scopes": []string{"projects/p1/topics/*:publish", "projects/p1/topics/*:get"}}),
		reader:   d.createKey(map[string]any{"subject": "reader-1", "scopes": []string{"reports:read"}}),
		roleless: d.createKey(map[string]any{"subject": "agent-7", "kind": "agent", "scopes": []string{"projects/p1/topics/*:get"}}),
	}
}

// authAnswer is an answer of verifyd as a gateway reads it.
type authAnswer struct {
	status int
	header http.Header
	body   []byte
}

// checkRefusal checks a refusal as it reaches the client through a gateway
// that passes verifyd's answer on: status, a challenge on 401, and the
// small JSON error body.
func checkRefusal(t *testing.T, what string, a authAnswer, status int) {
	t.Helper()
	if a.status != status {
		t.Errorf("%s: %d %s, want %d", what, a.status, a.body, status)
		return
	}
	var e struct{ Code, Error, Message string }
	if err := json.Unmarshal(a.body, &e); err != nil || len(a.body) > 1024 || e.Message == "" {
		t.Errorf("%s: body %q is not a small JSON error (%v)", what, a.body, err)
	}
	want := map[int]string{401: "UNAUTHORIZED", 403: "FORBIDDEN"}[status]
	if e.Code != want {
		t.Errorf("%s: code %q, want %q", what, e.Code, want)
	}
	if a.header.Get("Location") != "" {
		t.Errorf("%s: a Location header: %q", what, a.header.Get("Location"))
	}
	challenge := a.header.Get("WWW-Authenticate")
	if status == 401 && !strings.HasPrefix(challenge, `Bearer realm="verifyd"`) {
		t.Errorf("%s: 401 with WWW-Authenticate %q", what, challenge)
	}
}

// checkIdentity checks that an allowed answer carries every header of
// names (present even when empty, so that it replaces a client's header
// of that name), with the subject and roles of the principal.
func checkIdentity(t *testing.T, what string, a authAnswer, names []string, subject, roles string) {
	t.Helper()
	for _, name := range names {
		if _, ok := a.header[textproto.CanonicalMIMEHeaderKey(name)]; !ok {
			t.Errorf("%s: allowed without the identity header %s (has %v)", what, name, a.header)
		}
	}
	if got := a.header.Get("X-Auth-Subject"); got != subject {
		t.Errorf("%s: X-Auth-Subject %q, want %q", what, got, subject)
	}
	if got := a.header.Get("X-Auth-Roles"); got != roles {
		t.Errorf("%s: X-Auth-Roles %q, want %q", what, got, roles)
	}
}

// identityHeaders are the headers of verifyd's allowed answers under the
// pages' configurations.
var identityHeaders = []string{"X-Auth-Subject", "X-Auth-Kind", "X-Auth-Roles"}

// requireIdentityHeaders checks that the gateway setting field of page
// copies every identity header to the upstream.
func requireIdentityHeaders(t *testing.T, page, field string, names []string) {
	t.Helper()
	for _, want := range identityHeaders {
		found := false
		for _, n := range names {
			found = found || strings.EqualFold(n, want)
		}
		if !found {
			t.Errorf("%s: %s does not list %s", page, field, want)
		}
	}
}

// traefikForwardAuth is a forwardAuth middleware of the Traefik page.
type traefikForwardAuth struct {
	Address             string   `yaml:"address"`
	TrustForwardHeader  *bool    `yaml:"trustForwardHeader"`
	AuthResponseHeaders []string `yaml:"authResponseHeaders"`
	AuthRequestHeaders  []string `yaml:"authRequestHeaders"`
	ForwardBody         bool     `yaml:"forwardBody"`
	AuthSigninURL       string   `yaml:"authSigninURL"`
}

// traefikMiddlewares reads the forwardAuth middlewares of the Traefik
// page's dynamic configuration, and checks the settings the page requires
// of each.
func traefikMiddlewares(t *testing.T) map[string]traefikForwardAuth {
	t.Helper()
	var dyn struct {
		HTTP struct {
			Middlewares map[string]struct {
				ForwardAuth *traefikForwardAuth `yaml:"forwardAuth"`
			} `yaml:"middlewares"`
		} `yaml:"http"`
	}
	if err := yaml.Unmarshal([]byte(gatewayDoc(t, "traefik.md", "gateway", "yaml")), &dyn); err != nil {
		t.Fatalf("traefik.md: %v", err)
	}
	out := map[string]traefikForwardAuth{}
	for name, m := range dyn.HTTP.Middlewares {
		fa := m.ForwardAuth
		if fa == nil {
			continue
		}
		switch {
		case fa.TrustForwardHeader == nil || *fa.TrustForwardHeader:
			t.Errorf("traefik.md: middleware %s must set trustForwardHeader: false", name)
		case len(fa.AuthRequestHeaders) > 0:
			t.Errorf("traefik.md: middleware %s narrows authRequestHeaders; the contract below assumes every client header", name)
		case fa.ForwardBody || fa.AuthSigninURL != "":
			t.Errorf("traefik.md: middleware %s sets forwardBody or authSigninURL", name)
		}
		requireIdentityHeaders(t, "traefik.md", name+".authResponseHeaders", fa.AuthResponseHeaders)
		out[name] = *fa
	}
	return out
}

// hopHeaders are the hop-by-hop headers Traefik does not copy into the
// auth request.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Trailers", "Transfer-Encoding", "Upgrade"}

// forward sends the auth request Traefik's forwardAuth sends for a client
// request method uri with header (each "Name: value"): a GET to the
// address, verifyd's documented address replaced by daemonAddr, with the
// client's headers minus hop-by-hop ones, the client's X-Forwarded-*
// replaced by Traefik's own (trustForwardHeader false), and no body.
func (fa traefikForwardAuth) forward(t *testing.T, daemonAddr, method, uri string, header ...string) authAnswer {
	t.Helper()
	req, err := http.NewRequest("GET", replaceAddr(t, fa.Address, "127.0.0.1:8080", daemonAddr), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range header {
		name, value, _ := strings.Cut(h, ": ")
		req.Header.Add(name, value)
	}
	for _, h := range hopHeaders {
		req.Header.Del(h)
	}
	for name := range req.Header {
		if strings.HasPrefix(name, "X-Forwarded-") {
			req.Header.Del(name)
		}
	}
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	req.Header.Set("X-Forwarded-Proto", "http")
	req.Header.Set("X-Forwarded-Method", method)
	req.Header.Set("X-Forwarded-Host", "api.example")
	req.Header.Set("X-Forwarded-Port", "8088")
	req.Header.Set("X-Forwarded-Uri", uri)
	resp, err := gatewayClient.Do(req)
	if err != nil {
		t.Fatalf("auth request for %s %s: %v", method, uri, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return authAnswer{status: resp.StatusCode, header: resp.Header, body: body}
}

// TestGatewayTraefikContract checks docs/integrations/traefik.md against
// the real daemon: requests shaped as Traefik's forwardAuth sends them
// (docs/integrations/traefik.md and the forwardAuth contract of Traefik
// v3), to the middlewares' addresses, under the page's verifyd
// configuration.
func TestGatewayTraefikContract(t *testing.T) {
	mws := traefikMiddlewares(t)
	routes, fixed := mws["verifyd"], mws["verifyd-reports"]
	if routes.Address == "" || fixed.Address == "" || !strings.Contains(fixed.Address, "?scope=") {
		t.Fatalf("traefik.md: want the middlewares verifyd (routes) and verifyd-reports (?scope=), have %+v", mws)
	}
	verifydConf := gatewayDoc(t, "traefik.md", "verifyd", "yaml")
	d := startForwardAuthDaemon(t, verifydConf)
	k := createGatewayKeys(d)
	bearer := func(k keyAnswer) string { return "Authorization: Bearer " + k.Secret }
	const publish = "/v1/projects/p1/topics/orders:publish"

	// Any 2xx allows; the authResponseHeaders are what reaches the upstream.
	allowed := func(what string, fa traefikForwardAuth, method, uri, subject, roles string, header ...string) {
		t.Helper()
		a := fa.forward(t, d.addr, method, uri, header...)
		if a.status < 200 || a.status > 299 {
			t.Errorf("%s: %d %s, want 2xx", what, a.status, a.body)
			return
		}
		checkIdentity(t, what, a, fa.AuthResponseHeaders, subject, roles)
	}
	allowed("publish", routes, "POST", publish, "publisher-1", "publisher,auditor",
		bearer(k.pub), "Content-Type: application/json", "Connection: keep-alive", "X-Forwarded-Uri: /forged")
	allowed("get", routes, "GET", "/v1/projects/p1/topics/orders", "publisher-1", "publisher,auditor", "X-Api-Key: "+k.pub.Secret)
	allowed("AMS ?key=", routes, "POST", publish+"?key="+k.pub.Secret, "publisher-1", "publisher,auditor")
	allowed("no roles", routes, "GET", "/v1/projects/p1/topics/orders", "agent-7", "", bearer(k.roleless))
	allowed("?scope= middleware", fixed, "GET", "/reports/daily?day=1", "reader-1", "", bearer(k.reader))

	// Anything else goes back to the client as it is.
	checkRefusal(t, "no credential", routes.forward(t, d.addr, "POST", publish), 401)
	checkRefusal(t, "unknown key", routes.forward(t, d.addr, "POST", publish, "Authorization: Bearer vk_"+strings.Repeat("A", 40)), 401)
	checkRefusal(t, "another project", routes.forward(t, d.addr, "POST", "/v1/projects/p2/topics/orders:publish", bearer(k.pub)), 403)
	checkRefusal(t, "no route", routes.forward(t, d.addr, "DELETE", "/v1/projects/p1/topics/orders", bearer(k.pub)), 403)
	checkRefusal(t, "dot segments", routes.forward(t, d.addr, "POST", "/v1/projects/p2/../p1/topics/orders:publish", bearer(k.pub)), 403)
	checkRefusal(t, "?scope= middleware, not granted", fixed.forward(t, d.addr, "GET", "/reports/daily", bearer(k.pub)), 403)

	// Traefik passes a client's X-Original-URI through: under the page's
	// configuration verifyd ignores it ...
	forged := []string{bearer(k.pub), "X-Original-URI: " + publish, "X-Original-Method: POST"}
	p2 := "/v1/projects/p2/topics/orders:publish"
	checkRefusal(t, "forged X-Original-URI", routes.forward(t, d.addr, "POST", p2, forged...), 403)
	// ... while under verifyd's default (nginx) headers it would choose
	// the request that is authorized: the page's two keys are what
	// protects.
	var conf map[string]map[string]any
	if err := yaml.Unmarshal([]byte(verifydConf), &conf); err != nil {
		t.Fatal(err)
	}
	if conf["forward_auth"]["original_uri_header"] != "X-Forwarded-Uri" || conf["forward_auth"]["original_method_header"] != "X-Forwarded-Method" {
		t.Fatalf("traefik.md: verifyd must read X-Forwarded-Uri and X-Forwarded-Method: %v", conf)
	}
	delete(conf["forward_auth"], "original_uri_header")
	delete(conf["forward_auth"], "original_method_header")
	nginxDefaults, err := yaml.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	d2 := startForwardAuthDaemon(t, string(nginxDefaults))
	pub2 := d2.createKey(map[string]any{"subject": "publisher-1", "scopes": []string{"projects/p1/topics/*:publish"}})
	if a := routes.forward(t, d2.addr, "POST", p2, "Authorization: Bearer "+pub2.Secret, "X-Original-URI: "+publish, "X-Original-Method: POST"); a.status != 200 {
		t.Errorf("under verifyd's default headers, the forged X-Original-URI was not believed (%d): the check above proves nothing", a.status)
	}
}

// envoyExtAuthz is what the Envoy page's ext_authz filter configures.
type envoyExtAuthz struct {
	pathPrefix string
	allowed    []envoyMatcher // allowed_headers
	upstream   []string       // allowed_upstream_headers
}

// envoyMatcher is one pattern of an Envoy ListStringMatcher.
type envoyMatcher struct {
	Exact, Prefix string
}

// envoyPatterns decodes a ListStringMatcher; only exact and prefix
// patterns are understood here.
type envoyPatterns struct {
	Patterns []map[string]any `yaml:"patterns"`
}

func (p envoyPatterns) matchers(t *testing.T, field string) []envoyMatcher {
	t.Helper()
	var out []envoyMatcher
	for _, m := range p.Patterns {
		var em envoyMatcher
		for k, v := range m {
			s, _ := v.(string)
			switch k {
			case "exact":
				em.Exact = s
			case "prefix":
				em.Prefix = s
			default:
				t.Fatalf("envoy.md: %s: a %s pattern; the contract test understands exact and prefix", field, k)
			}
		}
		out = append(out, em)
	}
	return out
}

// passes reports whether Envoy passes the client header name to the
// authorization server: authorization always, the others when
// allowed_headers matches them.
func (f envoyExtAuthz) passes(name string) bool {
	name = strings.ToLower(name)
	if name == "authorization" {
		return true
	}
	for _, m := range f.allowed {
		if m.Exact != "" && m.Exact == name || m.Prefix != "" && strings.HasPrefix(name, m.Prefix) {
			return true
		}
	}
	return false
}

// envoyConfig reads the ext_authz filter of the Envoy page's bootstrap,
// and checks that it calls verifyd at its documented address.
func envoyConfig(t *testing.T) envoyExtAuthz {
	t.Helper()
	doc := gatewayDoc(t, "envoy.md", "gateway", "yaml")
	var root any
	if err := yaml.Unmarshal([]byte(doc), &root); err != nil {
		t.Fatalf("envoy.md: %v", err)
	}
	const extAuthzType = "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz"
	filters := findMaps(root, func(m map[string]any) bool { return m["@type"] == extAuthzType })
	if len(filters) != 1 {
		t.Fatalf("envoy.md: %d ext_authz filters, want 1", len(filters))
	}
	var filter struct {
		HTTPService struct {
			ServerURI struct {
				URI     string `yaml:"uri"`
				Cluster string `yaml:"cluster"`
				Timeout string `yaml:"timeout"`
			} `yaml:"server_uri"`
			PathPrefix            string `yaml:"path_prefix"`
			AuthorizationResponse struct {
				AllowedUpstreamHeaders envoyPatterns `yaml:"allowed_upstream_headers"`
			} `yaml:"authorization_response"`
		} `yaml:"http_service"`
		AllowedHeaders   envoyPatterns `yaml:"allowed_headers"`
		FailureModeAllow bool          `yaml:"failure_mode_allow"`
		WithRequestBody  any           `yaml:"with_request_body"`
	}
	remarshal(t, filters[0], &filter)
	hs := filter.HTTPService
	if hs.ServerURI.URI != "http://127.0.0.1:8080" || filter.FailureModeAllow || filter.WithRequestBody != nil {
		t.Fatalf("envoy.md: the filter must call http://127.0.0.1:8080, with failure_mode_allow false and no request body: %+v", filter)
	}
	// The cluster the filter names must be verifyd's address too.
	clusters := findMaps(root, func(m map[string]any) bool { return m["cluster_name"] == hs.ServerURI.Cluster })
	addrs := findMaps(clusters, func(m map[string]any) bool { _, ok := m["port_value"]; return ok })
	if len(clusters) != 1 || len(addrs) != 1 || addrs[0]["address"] != "127.0.0.1" || addrs[0]["port_value"] != 8080 {
		t.Fatalf("envoy.md: cluster %q must hold the one endpoint 127.0.0.1:8080: %v", hs.ServerURI.Cluster, clusters)
	}
	f := envoyExtAuthz{pathPrefix: hs.PathPrefix, allowed: filter.AllowedHeaders.matchers(t, "allowed_headers")}
	for _, m := range hs.AuthorizationResponse.AllowedUpstreamHeaders.matchers(t, "allowed_upstream_headers") {
		if m.Exact == "" {
			t.Fatalf("envoy.md: allowed_upstream_headers: use exact names")
		}
		f.upstream = append(f.upstream, m.Exact)
	}
	requireIdentityHeaders(t, "envoy.md", "allowed_upstream_headers", f.upstream)
	return f
}

// findMaps returns every map under node (node included) for which match
// holds.
func findMaps(node any, match func(map[string]any) bool) []map[string]any {
	var out []map[string]any
	switch n := node.(type) {
	case map[string]any:
		if match(n) {
			out = append(out, n)
		}
		for _, v := range n {
			out = append(out, findMaps(v, match)...)
		}
	case []any:
		for _, v := range n {
			out = append(out, findMaps(v, match)...)
		}
	case []map[string]any:
		for _, v := range n {
			out = append(out, findMaps(v, match)...)
		}
	}
	return out
}

// remarshal decodes the generic YAML value v into out.
func remarshal(t *testing.T, v, out any) {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err == nil {
		err = yaml.Unmarshal(b, out)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// check sends the check request Envoy's ext_authz (HTTP service) sends
// for a client request method uri with header (each "Name: value"): the
// same method, path_prefix + uri as the path, host, content-length 0 and
// no body, and only the client headers the filter passes, lower-cased as
// Envoy writes them. It returns the answer and how long verifyd took.
func (f envoyExtAuthz) check(t *testing.T, daemonAddr, method, uri string, header ...string) (authAnswer, time.Duration) {
	t.Helper()
	var req strings.Builder
	fmt.Fprintf(&req, "%s %s%s HTTP/1.1\r\nhost: api.example\r\ncontent-length: 0\r\n", method, f.pathPrefix, uri)
	for _, h := range header {
		name, value, _ := strings.Cut(h, ": ")
		if f.passes(name) {
			fmt.Fprintf(&req, "%s: %s\r\n", strings.ToLower(name), value)
		}
	}
	req.WriteString("\r\n")
	conn, err := net.Dial("tcp", daemonAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	if _, err := io.WriteString(conn, req.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("check %s %s: no answer: %v", method, uri, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return authAnswer{status: resp.StatusCode, header: resp.Header, body: body}, time.Since(start)
}

// TestGatewayEnvoyContract checks docs/integrations/envoy.md against the
// real daemon: check requests shaped as Envoy's ext_authz HTTP service
// sends them (docs/integrations/envoy.md and the ext_authz contract of
// Envoy v1.40), under the page's verifyd configuration.
func TestGatewayEnvoyContract(t *testing.T) {
	f := envoyConfig(t)
	if f.pathPrefix != "/v1/authz" {
		t.Fatalf("envoy.md: path_prefix %q, want /v1/authz", f.pathPrefix)
	}
	verifydConf := gatewayDoc(t, "envoy.md", "verifyd", "yaml")
	var conf struct {
		ForwardAuth struct {
			Sources []string `yaml:"sources"`
		} `yaml:"forward_auth"`
	}
	if err := yaml.Unmarshal([]byte(verifydConf), &conf); err != nil {
		t.Fatal(err)
	}
	// Every header a credential source of verifyd reads must reach it.
	for _, s := range conf.ForwardAuth.Sources {
		header := map[string]string{"bearer": "authorization", "basic": "authorization", "header": "x-api-key", "cookie": "cookie"}[s]
		if header != "" && !f.passes(header) {
			t.Errorf("envoy.md: verifyd reads the %s source, but allowed_headers does not pass %s", s, header)
		}
	}
	d := startForwardAuthDaemon(t, verifydConf)
	k := createGatewayKeys(d)
	bearer := func(k keyAnswer) string { return "Authorization: Bearer " + k.Secret }
	const publish = "/v1/projects/p1/topics/orders:publish"

	// Only 200 allows: an allowed check must be answered exactly 200, with
	// every allowed_upstream_headers header.
	var slowest time.Duration
	allowed := func(what, method, uri, subject, roles string, header ...string) {
		t.Helper()
		a, took := f.check(t, d.addr, method, uri, header...)
		slowest = max(slowest, took)
		if a.status != 200 {
			t.Errorf("%s: %d %s, want exactly 200", what, a.status, a.body)
			return
		}
		checkIdentity(t, what, a, f.upstream, subject, roles)
	}
	allowed("publish", "POST", publish, "publisher-1", "publisher,auditor", bearer(k.pub), "Content-Type: application/json")
	allowed("get", "GET", "/v1/projects/p1/topics/orders", "publisher-1", "publisher,auditor", "X-Api-Key: "+k.pub.Secret)
	allowed("AMS ?key=", "POST", publish+"?key="+k.pub.Secret, "publisher-1", "publisher,auditor")
	allowed("no roles", "GET", "/v1/projects/p1/topics/orders", "agent-7", "", bearer(k.roleless), "X-Auth-Roles: admin")
	t.Logf("slowest allowed check: %v (Envoy's default timeout: 200ms)", slowest)

	refused := func(what string, status int, method, uri string, header ...string) {
		t.Helper()
		a, _ := f.check(t, d.addr, method, uri, header...)
		checkRefusal(t, what, a, status)
	}
	refused("no credential", 401, "POST", publish)
	refused("unknown key", 401, "POST", publish, "Authorization: Bearer vk_"+strings.Repeat("A", 40))
	refused("another project", 403, "POST", "/v1/projects/p2/topics/orders:publish", bearer(k.pub))
	refused("no route", 403, "DELETE", "/v1/projects/p1/topics/orders", bearer(k.pub))
	refused("dot segments", 403, "POST", "/v1/projects/p2/../p1/topics/orders:publish", bearer(k.pub))
	refused("no route for a fixed-scope path", 403, "GET", "/reports/daily", bearer(k.reader))

	// The client's query travels in the path: its ?scope= must not choose
	// the scope, although that scope is granted (as the auth URL's own
	// ?scope= shows), and neither may a header naming another URI.
	p2 := "/v1/projects/p2/topics/orders:publish"
	refused("client's ?scope=", 403, "POST", p2+"?scope=projects/p1/topics/orders:publish", bearer(k.pub))
	authURL := envoyExtAuthz{pathPrefix: "/v1/authz?scope=projects/p1/topics/orders:publish"}
	if a, _ := authURL.check(t, d.addr, "GET", "", bearer(k.pub)); a.status != 200 {
		t.Errorf("the scope of the ?scope= check above is not granted (%d %s): that check proves nothing", a.status, a.body)
	}
	// Envoy does not pass X-Original-URI; were it allowed, verifyd would
	// still decide on the path itself.
	leaky := f
	leaky.allowed = append(leaky.allowed[:len(leaky.allowed):len(leaky.allowed)], envoyMatcher{Prefix: "x-original-"})
	a, _ := leaky.check(t, d.addr, "POST", p2, bearer(k.pub), "X-Original-URI: "+publish, "X-Original-Method: POST")
	checkRefusal(t, "client's X-Original-URI", a, 403)
}

// TestGatewayEnvoyPathStaysInAuthz: Envoy puts the client's path, as the
// client wrote it, under path_prefix. However a client writes its path
// (dot segments, percent-encoded dots and slashes, which Envoy passes on
// unless configured to normalise or reject them), the check request must
// be decided by the forward-auth endpoint: an answer from another endpoint
// of verifyd (200 from /healthz, /readyz or /metrics) would let Envoy pass
// the request on without any credential.
func TestGatewayEnvoyPathStaysInAuthz(t *testing.T) {
	f := envoyConfig(t)
	d := startForwardAuthDaemon(t, gatewayDoc(t, "envoy.md", "verifyd", "yaml"))
	for _, uri := range []string{
		"/../../healthz",
		"/..%2F..%2Fhealthz",
		"/%2e%2e/%2e%2e/readyz",
		"/v1/projects/p1/topics/t:publish/..%2F..%2F..%2F..%2F..%2F..%2F..%2Fmetrics",
		"/x/../../../metrics",
	} {
		a, _ := f.check(t, d.addr, "GET", uri)
		if a.status != 401 && a.status != 403 {
			t.Errorf("check of %s, without a credential: %d %.80q; want a forward-auth refusal (401 or 403)", f.pathPrefix+uri, a.status, a.body)
		}
	}
}
