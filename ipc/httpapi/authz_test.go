package httpapi

import (
	"bufio"
	"encoding/base64"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// authzAnswer is what a gateway sees of a forward-auth answer.
type authzAnswer struct {
	status int
	header http.Header
	body   string
}

// authz sends method path to the server with the headers given as
// "Name: value" lines, and never follows a redirect.
func (s *testServer) authz(method, path string, headers ...string) authzAnswer {
	s.t.Helper()
	req, err := http.NewRequest(method, s.base+path, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ": ")
		req.Header.Add(name, value)
	}
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	bufio.NewReader(resp.Body).WriteTo(&b)
	return authzAnswer{status: resp.StatusCode, header: resp.Header, body: b.String()}
}

func newAuthzServer(t *testing.T, f ForwardAuth) *testServer {
	t.Helper()
	return newTestServerConfig(t, nil, nil, func(o *Options) { o.ForwardAuth = f })
}

func TestAuthzQueryScope(t *testing.T) {
	s := newAuthzServer(t, ForwardAuth{})
	k := s.create(`{"subject":"alice","scopes":["orders:read"],"roles":["reader","auditor"]}`)
	bearer := "Authorization: Bearer " + k.Secret

	a := s.authz("GET", "/v1/authz?scope=orders:read", bearer)
	if a.status != 200 || a.header.Get("X-Auth-Subject") != "alice" || a.header.Get("X-Auth-Kind") != "api_key" || a.header.Get("X-Auth-Roles") != "reader,auditor" || a.body != "" {
		t.Fatalf("allowed: %+v", a)
	}
	// Any method: Envoy keeps the client's.
	if a := s.authz("DELETE", "/v1/authz?scope=orders:read", bearer); a.status != 200 {
		t.Errorf("DELETE: %+v", a)
	}
	// No scope asked: any valid credential.
	if a := s.authz("GET", "/v1/authz", bearer); a.status != 200 || a.header.Get("X-Auth-Subject") != "alice" {
		t.Errorf("authenticate only: %+v", a)
	}
	a = s.authz("GET", "/v1/authz?scope=orders:write", bearer)
	if a.status != 403 || a.header.Get("X-Auth-Subject") != "" || !strings.Contains(a.header.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
		t.Errorf("forbidden: %+v", a)
	}
	if a := s.authz("GET", "/v1/authz?scope=bad::scope", bearer); a.status != 403 {
		t.Errorf("invalid scope: %+v", a)
	}
	if a := s.authz("GET", "/v1/authz?scope=", bearer); a.status != 403 {
		t.Errorf("empty scope: %+v", a)
	}

	a = s.authz("GET", "/v1/authz?scope=orders:read")
	challenges := a.header.Values("WWW-Authenticate")
	if a.status != 401 || len(challenges) != 2 || challenges[0] != `Bearer realm="verifyd"` || !strings.HasPrefix(challenges[1], `Basic realm="verifyd"`) {
		t.Errorf("no credential: %+v", a)
	}
	for name, h := range map[string]string{
		"unknown key":   "Authorization: Bearer vd_nosuchkeynosuchkeynosuchkeynosuchkey00000",
		"malformed":     "Authorization: Bearer x",
		"empty bearer":  "Authorization: Bearer ",
		"bad base64":    "Authorization: Basic !!!",
		"basic no pass": "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("nocolon")),
	} {
		a := s.authz("GET", "/v1/authz?scope=orders:read", h)
		if a.status != 401 || !strings.HasPrefix(a.header.Get("WWW-Authenticate"), `Bearer realm="verifyd"`) {
			t.Errorf("%s: %+v", name, a)
		}
	}
	if a := s.authz("GET", "/v1/authz?scope=orders:read", "Authorization: Bearer vd_nosuchkeynosuchkeynosuchkeynosuchkey00000"); a.header.Get("WWW-Authenticate") != `Bearer realm="verifyd", error="invalid_token"` {
		t.Errorf("invalid token challenge: %q", a.header.Get("WWW-Authenticate"))
	}
	// Revoked.
	s.do("DELETE", "/v1/admin/keys/"+k.ID, adminKey, "", nil)
	if a := s.authz("GET", "/v1/authz?scope=orders:read", bearer); a.status != 401 {
		t.Errorf("revoked: %+v", a)
	}
}

func TestAuthzCredentialSources(t *testing.T) {
	s := newAuthzServer(t, ForwardAuth{})
	k := s.create(`{"subject":"bob","scopes":["a:b"]}`)
	basic := func(user, pass string) string {
		return "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	// Percent-encode every byte of the secret, as an OAuth client may.
	var encoded strings.Builder
	for i := 0; i < len(k.Secret); i++ {
		encoded.WriteString("%" + strings.ToUpper(hex2(k.Secret[i])))
	}
	for name, h := range map[string][]string{
		"basic password":          {basic("anyone", k.Secret)},
		"basic percent-encoded":   {basic("anyone", encoded.String())},
		"basic user only":         {basic(k.Secret, "")},
		"x-api-key":               {"X-Api-Key: " + k.Secret},
		"key in the original URI": {"X-Original-URI: /v1/projects/p/topics?key=" + k.Secret + "&x=1"},
		"bearer before x-api-key": {"Authorization: Bearer " + k.Secret, "X-Api-Key: wrong"},
	} {
		if a := s.authz("GET", "/v1/authz?scope=a:b", h...); a.status != 200 || a.header.Get("X-Auth-Subject") != "bob" {
			t.Errorf("%s: %+v", name, a)
		}
	}
	// A present but wrong Bearer token is not passed over for a later source.
	if a := s.authz("GET", "/v1/authz?scope=a:b", "Authorization: Bearer wrong", "X-Api-Key: "+k.Secret); a.status != 401 {
		t.Errorf("wrong bearer, good x-api-key: %+v", a)
	}
	// An unknown scheme is skipped.
	if a := s.authz("GET", "/v1/authz?scope=a:b", "Authorization: Digest x", "X-Api-Key: "+k.Secret); a.status != 200 {
		t.Errorf("digest scheme then x-api-key: %+v", a)
	}
	// The cookie source is off unless configured; the key parameter of
	// the auth URL itself is not a source.
	if a := s.authz("GET", "/v1/authz?scope=a:b", "Cookie: session="+k.Secret); a.status != 401 {
		t.Errorf("cookie without configuration: %+v", a)
	}
	if a := s.authz("GET", "/v1/authz?scope=a:b&key="+k.Secret); a.status != 401 {
		t.Errorf("key on the auth URL: %+v", a)
	}

	// Only the configured sources.
	s2 := newAuthzServer(t, ForwardAuth{Sources: []string{SourceCookie, SourceBearer}, Cookie: "session", SubjectHeader: "X-User", RolesHeader: "off", Realm: "shop"})
	k2 := s2.create(`{"subject":"carol","scopes":["a:b"],"roles":["r"]}`)
	a := s2.authz("GET", "/v1/authz?scope=a:b", "Cookie: other=1; session="+k2.Secret)
	if a.status != 200 || a.header.Get("X-User") != "carol" || a.header.Get("X-Auth-Roles") != "" || a.header.Get("X-Auth-Subject") != "" {
		t.Errorf("cookie: %+v", a)
	}
	for name, h := range map[string]string{
		"basic off":     basic("u", k2.Secret),
		"x-api-key off": "X-Api-Key: " + k2.Secret,
		"query off":     "X-Original-URI: /x?key=" + k2.Secret,
	} {
		a := s2.authz("GET", "/v1/authz?scope=a:b", h)
		if a.status != 401 || len(a.header.Values("WWW-Authenticate")) != 1 || a.header.Get("WWW-Authenticate") != `Bearer realm="shop"` {
			t.Errorf("%s: %+v", name, a)
		}
	}
}

// nginxAnon asks as nginx would, without a credential.
func nginxAnon(s *testServer, method, uri string) authzAnswer {
	return s.authz("GET", "/v1/authz", "X-Original-Method: "+method, "X-Original-URI: "+uri)
}

// rawGet sends GET path exactly as written (net/http would clean it) and
// returns the status.
func rawGet(t *testing.T, s *testServer, path string) int {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte("GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func hex2(b byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[b>>4], digits[b&15]})
}

func TestAuthzRoutes(t *testing.T) {
	f := ForwardAuth{Routes: []Route{
		{Method: "POST", Path: "/v1/projects/{project}/topics/{topic}:publish", Scope: "projects/{project}/topics/{topic}:publish"},
		{Method: "GET", Path: "/v1/projects/{project}/topics/{topic}", Scope: "projects/{project}/topics/{topic}:get"},
		{Path: "/v1/projects", Scope: "projects:list"},
	}}
	s := newAuthzServer(t, f)
	k := s.create(`{"subject":"pub","scopes":["projects/p1/topics/*:publish","projects/p1/topics/*:get"]}`)
	bearer := "Authorization: Bearer " + k.Secret
	nginx := func(method, uri string) authzAnswer {
		return s.authz("GET", "/v1/authz", bearer, "X-Original-Method: "+method, "X-Original-URI: "+uri)
	}
	for _, c := range []struct {
		method, uri string
		status      int
	}{
		{"POST", "/v1/projects/p1/topics/orders:publish", 200},
		{"POST", "/v1/projects/p1/topics/orders:publish?x=1", 200},
		{"POST", "/v1/projects/p1/topics/or%64ers:publish", 200}, // decoded: orders
		{"GET", "/v1/projects/p1/topics/orders", 200},
		{"POST", "/v1/projects/p2/topics/orders:publish", 403},   // not granted
		{"DELETE", "/v1/projects/p1/topics/orders:publish", 403}, // no route for the method
		{"GET", "/v1/projects", 403},                             // routed, not granted
		{"POST", "/v1/projects/p1/topics/a%2Fb:publish", 403},    // '/' in a value
		{"POST", "/v1/projects/p1/topics/a%3Ab:publish", 403},    // ':' in a value
		{"POST", "/v1/projects/p1/topics/..:publish", 403},
		{"POST", "/v1/projects/p1/topics/%zz:publish", 403},
		{"POST", "/v1/projects/p1/topics/:publish", 403},
		{"POST", "/v1/projects/p1/topics/x/../orders:publish", 403},
		{"POST", "/v1/projects//topics/orders:publish", 403},
		{"GET", "/elsewhere", 403}, // unmatched requests are denied when routes exist
	} {
		if a := nginx(c.method, c.uri); a.status != c.status {
			t.Errorf("%s %s: %d, want %d (%s)", c.method, c.uri, a.status, c.status, a.body)
		}
	}
	// No original URI at all: no route, denied; without a credential,
	// challenged like any other request.
	if a := s.authz("GET", "/v1/authz", bearer); a.status != 403 {
		t.Errorf("no original URI: %+v", a)
	}
	if a := nginxAnon(s, "GET", "/elsewhere"); a.status != 401 {
		t.Errorf("no credential on an unrouted path: %+v", a)
	}
	if a := s.authz("GET", "/v1/authz", "Authorization: Bearer vd_nosuchkeynosuchkeynosuchkeynosuchkey00000", "X-Original-URI: /elsewhere"); a.status != 401 {
		t.Errorf("unknown key on an unrouted path: %+v", a)
	}
	// Envoy appends the client's path: a path that climbs out of
	// /v1/authz is still a forward-auth request, never another endpoint.
	for _, p := range []string{"/v1/authz/../../healthz", "/v1/authz/..%2F..%2Fhealthz", "/v1/authz/%2e%2e/%2e%2e/readyz", "/v1/authz/x/../../../metrics"} {
		if a := rawGet(t, s, p); a != 401 {
			t.Errorf("%s without a credential: %d, want 401", p, a)
		}
	}
	// ?scope= on the auth URL wins over the routes.
	if a := s.authz("GET", "/v1/authz?scope=projects/p1/topics/x:get", bearer, "X-Original-URI: /elsewhere"); a.status != 200 {
		t.Errorf("?scope= with routes: %+v", a)
	}
	// Envoy: the original path under /v1/authz, with the original method;
	// the query is the client's, never a scope.
	if a := s.authz("POST", "/v1/authz/v1/projects/p1/topics/orders:publish", bearer); a.status != 200 {
		t.Errorf("envoy path: %+v", a)
	}
	if a := s.authz("POST", "/v1/authz/v1/projects/p2/topics/orders:publish?scope=projects/p1/topics/x:get", bearer); a.status != 403 {
		t.Errorf("envoy path with a client's ?scope=: %+v", a)
	}
	if a := s.authz("GET", "/v1/authz/v1/projects/p1/topics/orders?key="+k.Secret); a.status != 200 {
		t.Errorf("envoy path with ?key=: %+v", a)
	}
	// Headers other than the configured ones are ignored: a client of a
	// gateway that passes headers through cannot pick the URI.
	if a := s.authz("GET", "/v1/authz", bearer, "X-Forwarded-Method: POST", "X-Forwarded-Uri: /v1/projects/p1/topics/orders:publish"); a.status != 403 {
		t.Errorf("x-forwarded headers under the nginx configuration: %+v", a)
	}

	// Traefik: X-Forwarded-Uri and X-Forwarded-Method; unmatched requests
	// only authenticate when so configured.
	f.OriginalURIHeader, f.OriginalMethodHeader, f.Unmatched = "X-Forwarded-Uri", "X-Forwarded-Method", UnmatchedAuthenticate
	s2 := newAuthzServer(t, f)
	k2 := s2.create(`{"subject":"pub","scopes":["projects/p1/topics/*:publish"]}`)
	traefik := func(uri string, extra ...string) int {
		h := append([]string{"Authorization: Bearer " + k2.Secret, "X-Forwarded-Method: POST", "X-Forwarded-Uri: " + uri}, extra...)
		return s2.authz("GET", "/v1/authz", h...).status
	}
	if st := traefik("/v1/projects/p1/topics/t:publish"); st != 200 {
		t.Errorf("traefik allowed: %d", st)
	}
	if st := traefik("/v1/projects/p2/topics/t:publish", "X-Original-URI: /v1/projects/p1/topics/t:publish"); st != 403 {
		t.Errorf("traefik with a client's X-Original-URI: %d", st)
	}
	if st := traefik("/static/logo.png"); st != 200 {
		t.Errorf("traefik unmatched, authenticate: %d", st)
	}
}

// TestAuthzReadsNoBody: nginx sends the client's Content-Length without
// the body; the answer must come at once, and the connection must close
// so that a body that does follow is never read as a request.
func TestAuthzReadsNoBody(t *testing.T) {
	s := newAuthzServer(t, ForwardAuth{})
	k := s.create(`{"subject":"dan","scopes":["a:b"]}`)
	addr := strings.TrimPrefix(s.base, "http://")
	for name, req := range map[string]string{
		"content-length, no body": "GET /v1/authz?scope=a:b HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + k.Secret + "\r\nContent-Length: 7\r\n\r\n",
		"chunked, no body":        "POST /v1/authz?scope=a:b HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + k.Secret + "\r\nTransfer-Encoding: chunked\r\n\r\n",
		"body that follows":       "POST /v1/authz?scope=a:b HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + k.Secret + "\r\nContent-Length: 20\r\n\r\nGET / HTTP/1.1\r\n\r\n\r\n",
	} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		// Far below the server's 10s read timeout: a server that waited for
		// the body would not have answered by then.
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: no answer: %v", name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-Auth-Subject") != "dan" || !resp.Close {
			t.Errorf("%s: %d %v close=%v", name, resp.StatusCode, resp.Header, resp.Close)
		}
		// Nothing more comes: the connection is closed.
		if n, err := br.ReadByte(); err == nil {
			t.Errorf("%s: more after the answer: %q", name, n)
		}
		conn.Close()
	}
}

func TestAppendHeaderValue(t *testing.T) {
	for in, want := range map[string]string{
		"alice":             "alice",
		"a\r\nX-Evil: 1":    "a%0D%0AX-Evil: 1",
		"50%":               "50%25",
		"r,s":               "r%2Cs",
		"caf\u00e9\x7f\x00": "caf\u00e9%7F%00",
	} {
		if got := string(appendHeaderValue(nil, in, ',')); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
	if got := string(appendHeaderValue(nil, "r,s", 0)); got != "r,s" {
		t.Errorf("no separator: %q", got)
	}
}

func TestForwardAuthValidate(t *testing.T) {
	f := ForwardAuth{
		Sources:       []string{"bearer", "cookies", "bearer"},
		QueryParam:    "a&b",
		SubjectHeader: "X Bad",
		Realm:         `a"b`,
		Unmatched:     "allow",
		Routes: []Route{
			{Method: "get", Path: "/a", Scope: "a:b"},
			{Path: "a", Scope: "a:b"},
			{Path: "/a/{x}/{x}", Scope: "a:{x}"},
			{Path: "/a/{x", Scope: "a:b"},
			{Path: "/a/{x}", Scope: "a:{y}"},
			{Path: "/a/{x}", Scope: "a::{x}"},
			{Path: "/b/{x}", Scope: "b:{x}"},
			{Method: "*", Path: "/b/{x}", Scope: "c:{x}"},
			{Path: "/a/{x}{y}", Scope: "a:{x}"},
			{Path: "/a/../b", Scope: "a:b"},
		},
	}
	f.EnsureDefaults()
	err := f.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`unknown source "cookies"`, `"bearer" is listed twice`, "query_param", "subject_header", "realm", `unmatched: "allow"`,
		"routes[0]: method", "routes[1]: path", "routes[2]: path", "appears twice", "routes[3]", "routes[4]: scope", "routes[5]: scope",
		"routes[7]: the same method and path as routes[6]", "routes[8]", "routes[9]",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	cookie := ForwardAuth{Sources: []string{"cookie"}}
	cookie.EnsureDefaults()
	if err := cookie.Validate(); err == nil || !strings.Contains(err.Error(), "cookie") {
		t.Errorf("cookie source without a name: %v", err)
	}
	named := ForwardAuth{Cookie: "sid"}
	named.EnsureDefaults()
	if err := named.Validate(); err == nil {
		t.Error("a cookie name without the cookie source is accepted")
	}
	ok := ForwardAuth{Routes: []Route{{Path: "/v1/projects/{project}/topics/{topic}:publish", Scope: "projects/{project}/topics/{topic}:publish"}}}
	ok.EnsureDefaults()
	if err := ok.Validate(); err != nil || ok.Unmatched != UnmatchedDeny {
		t.Errorf("valid: %v, unmatched %q", err, ok.Unmatched)
	}
}
