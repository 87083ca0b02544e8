package mqtt

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/verifyd/verifyd/ipc/httpapi"
)

// docBlock returns the fenced block that follows <!-- test: name --> on a
// page of docs/integrations.
func docBlock(t *testing.T, page, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "integrations", page))
	if err != nil {
		t.Fatal(err)
	}
	marker := "<!-- test: " + name + " -->\n"
	_, after, ok := strings.Cut(string(b), marker)
	if !ok {
		t.Fatalf("%s has no %q", page, strings.TrimSpace(marker))
	}
	fence, rest, ok := strings.Cut(after, "\n")
	if !ok || !strings.HasPrefix(fence, "```") {
		t.Fatalf("%s: %s is not followed by a fenced block", page, name)
	}
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatalf("%s: the block %s is not closed", page, name)
	}
	return block
}

// goAuthOpts reads the auth_opt_* lines of a mosquitto.conf.
func goAuthOpts(conf string) map[string]string {
	opts := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(conf))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && strings.HasPrefix(f[0], "auth_opt_") {
			opts[strings.TrimPrefix(f[0], "auth_opt_")] = f[1]
		}
	}
	return opts
}

// serve mounts a's contracts on a real verifyd HTTP server on loopback and
// returns its address.
func (e *env) serve(a *Adapter) string {
	e.t.Helper()
	srv, err := httpapi.New(httpapi.Options{
		Verifier: e.v,
		Manager:  e.m,
		Adapters: a.Adapters(),
		Logger:   quiet,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	e.t.Cleanup(func() {
		if err := srv.Shutdown(context.Background()); err != nil {
			e.t.Errorf("Shutdown: %v", err)
		}
		<-done
	})
	return ln.Addr().String()
}

// goAuth is mosquitto-go-auth's HTTP backend (backends/http.go) as
// configured by a mosquitto.conf: it builds the same requests and reads
// the answers the same way.
type goAuth struct {
	t                           *testing.T
	addr                        string // replaces http_host:http_port
	userURI, superURI, aclURI   string
	paramsMode, responseMode    string
	method                      string
	lastStatus                  int
	lastBody, lastCT, lastAgent string
}

func newGoAuth(t *testing.T, opts map[string]string, addr string) *goAuth {
	g := &goAuth{t: t, addr: addr, userURI: opts["http_getuser_uri"], superURI: opts["http_superuser_uri"],
		aclURI: opts["http_aclcheck_uri"], paramsMode: "json", responseMode: "status", method: http.MethodPost}
	if opts["http_params_mode"] == "form" {
		g.paramsMode = "form"
	}
	if m := opts["http_response_mode"]; m == "json" || m == "text" {
		g.responseMode = m
	}
	if m := opts["http_method"]; m == http.MethodGet || m == http.MethodPut {
		g.method = m
	}
	return g
}

func (g *goAuth) user(username, password, clientid string) bool {
	return g.request(g.userURI, map[string]any{"username": username, "password": password, "clientid": clientid},
		url.Values{"username": {username}, "password": {password}, "clientid": {clientid}})
}

func (g *goAuth) superuser(username string) bool {
	return g.request(g.superURI, map[string]any{"username": username}, url.Values{"username": {username}})
}

func (g *goAuth) acl(username, topic, clientid string, acc int32) bool {
	return g.request(g.aclURI, map[string]any{"username": username, "clientid": clientid, "topic": topic, "acc": acc},
		url.Values{"username": {username}, "clientid": {clientid}, "topic": {topic}, "acc": {strconv.Itoa(int(acc))}})
}

// request is the plugin's httpRequest: an error means false.
func (g *goAuth) request(uri string, dataMap map[string]any, urlValues url.Values) bool {
	g.t.Helper()
	full := "http://" + g.addr + uri
	var resp *http.Response
	var err error
	if g.paramsMode == "form" {
		resp, err = http.PostForm(full, urlValues)
	} else {
		data, _ := json.Marshal(dataMap)
		req, _ := http.NewRequest(g.method, full, bytes.NewReader(data))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "mosquitto-2.0.11")
		resp, err = http.DefaultClient.Do(req)
	}
	if err != nil {
		g.t.Fatalf("%s: %v", uri, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	g.lastStatus, g.lastBody, g.lastCT = resp.StatusCode, string(body), resp.Header.Get("Content-Type")
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return false
	}
	switch g.responseMode {
	case "text":
		return string(body) == "ok"
	case "json":
		r := struct {
			Ok    bool   `json:"ok"`
			Error string `json:"error"`
		}{}
		if err := json.Unmarshal(body, &r); err != nil {
			return false
		}
		return r.Ok
	}
	return true
}

// TestGoAuthContract replays the captured exchange of mosquitto-go-auth,
// and its denials, in both params modes, every HTTP method and every
// response mode, with the paths of the mosquitto.conf of
// docs/integrations/mqtt.md.
func TestGoAuthContract(t *testing.T) {
	opts := goAuthOpts(docBlock(t, "mqtt.md", "mosquitto.conf"))
	if opts["backends"] != "http" || opts["http_getuser_uri"] != GoAuthPrefix+"user" || opts["http_aclcheck_uri"] != GoAuthPrefix+"acl" || opts["http_superuser_uri"] != GoAuthPrefix+"superuser" {
		t.Fatalf("the documented mosquitto.conf does not point at verifyd: %v", opts)
	}
	documented := opts["http_params_mode"] + "/" + opts["http_response_mode"]
	tested := map[string]bool{}
	for _, response := range []string{ResponseStatus, ResponseJSON, ResponseText} {
		e := newEnv(t, Config{ResponseMode: response, SuperuserRole: "mqtt-admin"})
		e.policy(aclPolicy)
		addr := e.serve(e.a)
		rootID, root := e.key("root", nil, "mqtt-admin")
		for _, params := range []string{"json", "form"} {
			methods := []string{http.MethodPost, http.MethodGet, http.MethodPut}
			if params == "form" {
				methods = methods[:1] // the plugin posts forms whatever the method
			}
			for _, method := range methods {
				name := params + "/" + response + "/" + method
				t.Run(name, func(t *testing.T) {
					tested[params+"/"+response] = true
					o := map[string]string{}
					for k, v := range opts {
						o[k] = v
					}
					o["http_params_mode"], o["http_response_mode"], o["http_method"] = params, response, method
					g := newGoAuth(t, o, addr)
					_, alice := e.key("alice", []string{"mqtt/topic/sensors/*:publish"})
					// The captured exchange.
					for _, step := range []struct {
						name string
						ok   bool
						want bool
					}{
						{"user sub1", g.user("alice", alice, "sub1"), true},
						{"user pub1", g.user("alice", alice, "pub1"), true},
						{"superuser alice", g.superuser("alice"), false},
						{"acl subscribe sensors/#", g.acl("alice", "sensors/#", "sub1", 4), false}, // an ACL under the filter
						{"acl subscribe sensors/+/temp", g.acl("alice", "sensors/+/temp", "sub1", 4), true},
						{"acl publish sensors/temp", g.acl("alice", "sensors/temp", "pub1", 2), true},
						{"acl read sensors/temp", g.acl("alice", "sensors/temp", "sub1", 1), true},
						{"acl read sensors/vault/door", g.acl("alice", "sensors/vault/door", "sub1", 1), false},
						{"acl unsubscribe", g.acl("alice", "sensors/#", "sub1", 8), true},
						{"acl publish elsewhere", g.acl("alice", "other/temp", "pub1", 2), false},
						{"acl unknown client", g.acl("alice", "sensors/temp", "pub9", 2), false},
						{"acl bad acc", g.acl("alice", "sensors/temp", "pub1", 3), false},
						{"acl invalid filter", g.acl("alice", "sensors/#/x", "sub1", 4), false},
						{"user wrong password", g.user("alice", "not-a-key", "x1"), false},
						{"user wrong username", g.user("bob", alice, "x2"), false},
						{"user root", g.user("root", root, "admin1"), true},
						{"superuser root", g.superuser("root"), true},
						{"superuser nobody", g.superuser("nobody"), false},
					} {
						if step.ok != step.want {
							t.Errorf("%s: %v, want %v (status %d, body %q)", step.name, step.ok, step.want, g.lastStatus, g.lastBody)
						}
					}
					// The answers' bytes.
					g.acl("alice", "sensors/temp", "pub1", 2)
					checkGoAuthAnswer(t, response, g, true, "")
					g.acl("alice", "other/temp", "pub1", 2)
					checkGoAuthAnswer(t, response, g, false, "no_grant")
					g.acl("alice", "sensors/temp", "nobody", 2)
					checkGoAuthAnswer(t, response, g, false, "no_binding")
				})
			}
		}
		// A revoked superuser key is refused at its next check.
		e.revoke(rootID)
		g := newGoAuth(t, map[string]string{"http_getuser_uri": opts["http_getuser_uri"], "http_superuser_uri": opts["http_superuser_uri"],
			"http_aclcheck_uri": opts["http_aclcheck_uri"], "http_response_mode": response}, addr)
		if g.superuser("root") || g.acl("root", "x", "admin1", 2) {
			t.Errorf("%s: a revoked superuser key is still allowed", response)
		}
	}
	if !tested[documented] {
		t.Errorf("the documented modes %s were not tested", documented)
	}
}

// checkGoAuthAnswer checks the exact answer of the last request.
func checkGoAuthAnswer(t *testing.T, mode string, g *goAuth, allow bool, reason string) {
	t.Helper()
	wantStatus := http.StatusOK
	if !allow {
		wantStatus = http.StatusForbidden
	}
	var wantBody, wantCT string
	switch mode {
	case ResponseStatus:
		wantCT = "text/plain; charset=utf-8"
	case ResponseJSON:
		wantCT = "application/json"
		wantBody = `{"ok":true,"error":""}`
		if !allow {
			wantBody = `{"ok":false,"error":"` + reason + `"}`
		}
	case ResponseText:
		wantCT = "text/plain; charset=utf-8"
		wantBody = "ok"
		if !allow {
			wantBody = reason
		}
	}
	if g.lastStatus != wantStatus || g.lastBody != wantBody || g.lastCT != wantCT {
		t.Errorf("%s answer: %d %q %q, want %d %q %q", mode, g.lastStatus, g.lastCT, g.lastBody, wantStatus, wantCT, wantBody)
	}
}

// TestGoAuthModeMismatch: whatever response mode the plugin uses, a denial
// of verifyd is never read as an allow.
func TestGoAuthModeMismatch(t *testing.T) {
	modes := []string{ResponseStatus, ResponseJSON, ResponseText}
	for _, ours := range modes {
		e := newEnv(t, Config{ResponseMode: ours})
		addr := e.serve(e.a)
		_, k := e.key("alice", []string{"mqtt/topic/a:publish"})
		for _, theirs := range modes {
			g := newGoAuth(t, map[string]string{"http_getuser_uri": GoAuthPrefix + "user", "http_aclcheck_uri": GoAuthPrefix + "acl", "http_response_mode": theirs}, addr)
			g.user("alice", k, "c1")
			if g.acl("alice", "b", "c1", 2) || g.user("alice", "wrong", "c2") || g.acl("alice", "a", "c9", 2) {
				t.Errorf("verifyd %s, plugin %s: a denial was read as an allow", ours, theirs)
			}
			if got := g.acl("alice", "a", "c1", 2); got != (ours == theirs || theirs == ResponseStatus) {
				t.Errorf("verifyd %s, plugin %s: an allow was read as %v", ours, theirs, got)
			}
		}
	}
}

// TestGoAuthHTTPErrors: unknown paths, methods and malformed bodies.
func TestGoAuthHTTPErrors(t *testing.T) {
	e := newEnv(t, Config{})
	addr := e.serve(e.a)
	_, k := e.key("alice", []string{"mqtt/topic/a:publish"})
	base := "http://" + addr + GoAuthPrefix
	post := func(method, path, ct, body string) int {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	good := fmt.Sprintf(`{"username":"alice","password":%q,"clientid":"c1"}`, k)
	for _, tc := range []struct {
		name, method, path, ct, body string
		want                         int
	}{
		{"login", "POST", "user", "application/json", good, 200},
		{"login, charset", "POST", "user", "application/json; charset=utf-8", good, 200},
		{"unknown path", "POST", "users", "application/json", good, 404},
		{"method", "DELETE", "user", "application/json", good, 405},
		{"no content type", "POST", "user", "", good, 403},
		{"text body", "POST", "user", "text/plain", good, 403},
		{"not JSON", "POST", "user", "application/json", "{", 403},
		{"not an object", "POST", "user", "application/json", `["alice"]`, 403},
		{"missing field", "POST", "user", "application/json", `{"username":"alice","clientid":"c1"}`, 403},
		{"duplicate field", "POST", "user", "application/json", fmt.Sprintf(`{"username":"bob","username":"alice","password":%q,"clientid":"c1"}`, k), 403},
		{"number username", "POST", "user", "application/json", fmt.Sprintf(`{"username":1,"password":%q,"clientid":"c1"}`, k), 403},
		{"extra fields", "POST", "user", "application/json", fmt.Sprintf(`{"username":"alice","password":%q,"clientid":"c1","ip":"::1"}`, k), 200},
		{"acc as a string in JSON", "POST", "acl", "application/json", `{"username":"alice","clientid":"c1","topic":"a","acc":"2"}`, 403},
		{"acc 2.0", "POST", "acl", "application/json", `{"username":"alice","clientid":"c1","topic":"a","acc":2.0}`, 403},
		{"acc as JSON number", "POST", "acl", "application/json", `{"username":"alice","clientid":"c1","topic":"a","acc":2}`, 200},
		{"form, duplicate topic", "POST", "acl", "application/x-www-form-urlencoded", "username=alice&clientid=c1&topic=b&topic=a&acc=2", 403},
		{"form", "POST", "acl", "application/x-www-form-urlencoded", "username=alice&clientid=c1&topic=a&acc=2", 200},
		{"query", "GET", "acl?username=alice&clientid=c1&topic=a&acc=2", "", "", 200},
	} {
		if got := post(tc.method, tc.path, tc.ct, tc.body); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

// emqxSource is the HTTP part of an EMQX authenticator or authorization
// source, read from a HOCON block with a line-based reader: enough for the
// flat blocks of docs/integrations/emqx.md, not a HOCON parser.
type emqxSource struct {
	method, url string
	body        map[string]string
	headers     map[string]string
	top         map[string]string // other key = value lines
}

func parseEMQX(t *testing.T, block string) emqxSource {
	t.Helper()
	s := emqxSource{body: map[string]string{}, headers: map[string]string{}, top: map[string]string{}}
	var in map[string]string
	sc := bufio.NewScanner(strings.NewReader(block))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "body {":
			in = s.body
			continue
		case line == "headers {":
			in = s.headers
			continue
		case line == "}" && in != nil:
			in = nil
			continue
		}
		k, v, ok := strings.Cut(line, " = ")
		if !ok {
			continue
		}
		k, v = unquote(t, k), unquote(t, v)
		switch {
		case in != nil:
			in[k] = v
		case k == "method":
			s.method = v
		case k == "url":
			s.url = v
		default:
			s.top[k] = v
		}
	}
	if s.method == "" || s.url == "" || len(s.body) == 0 {
		t.Fatalf("no method, url or body in %q", block)
	}
	return s
}

func unquote(t *testing.T, s string) string {
	if strings.HasPrefix(s, `"`) {
		u, err := strconv.Unquote(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		return u
	}
	return s
}

// emqx renders src's request for vars as EMQX does and reads the answer
// as EMQX does: "allow", "deny" or "ignore" (any other status, an
// unsupported content type, no result), and is_superuser.
func (s emqxSource) call(t *testing.T, addr, method string, vars map[string]string) (result string, superuser bool) {
	t.Helper()
	u, err := url.Parse(s.url)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = addr
	render := func(v string) string {
		for k, val := range vars {
			v = strings.ReplaceAll(v, "${"+k+"}", val)
		}
		return v
	}
	var req *http.Request
	if method == "get" {
		q := url.Values{}
		for k, v := range s.body {
			q.Set(k, render(v))
		}
		u.RawQuery = q.Encode()
		req, _ = http.NewRequest(http.MethodGet, u.String(), nil)
		for k, v := range s.headers {
			if !strings.EqualFold(k, "content-type") {
				req.Header.Set(k, render(v))
			}
		}
	} else {
		body := map[string]string{}
		for k, v := range s.body {
			body[k] = render(v)
		}
		b, _ := json.Marshal(body)
		req, _ = http.NewRequest(http.MethodPost, u.String(), bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range s.headers {
			req.Header.Set(k, render(v))
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	switch resp.StatusCode {
	case http.StatusNoContent:
		return "allow", false
	case http.StatusOK:
	default:
		return "ignore", false
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" {
		return "ignore", false
	}
	var r struct {
		Result      string `json:"result"`
		IsSuperuser bool   `json:"is_superuser"`
	}
	if err := json.Unmarshal(raw, &r); err != nil || r.Result == "" {
		return "ignore", false
	}
	return r.Result, r.IsSuperuser
}

// TestEMQXContract sends the requests EMQX renders from the authn and authz
// blocks of docs/integrations/emqx.md, by POST and by GET.
func TestEMQXContract(t *testing.T) {
	authn := parseEMQX(t, docBlock(t, "emqx.md", "emqx-authn.conf"))
	authz := parseEMQX(t, docBlock(t, "emqx.md", "emqx-authz.conf"))
	if authz.top["no_match"] != "deny" {
		t.Errorf("the documented authorization does not set no_match = deny: %v", authz.top)
	}
	for _, s := range []emqxSource{authn, authz} {
		if s.method != "post" || !strings.Contains(s.url, EMQXPrefix) {
			t.Errorf("the documented source %s %s does not POST to verifyd", s.method, s.url)
		}
	}
	e := newEnv(t, Config{SuperuserScope: "mqtt:superuser"})
	e.policy(strings.NewReplacer("roles:\n", "roles:\n  root: {scopes: [\"mqtt:superuser\"]}\n",
		"subjects:\n", "subjects:\n  root: {roles: [root]}\n").Replace(aclPolicy))
	addr := e.serve(e.a)
	_, alice := e.key("alice", []string{"mqtt/topic/sensors/*:publish"})
	_, root := e.key("root", nil)
	for _, method := range []string{"post", "get"} {
		t.Run(method, func(t *testing.T) {
			login := func(user, pass, client string) (string, bool) {
				return authn.call(t, addr, method, map[string]string{"username": user, "password": pass, "clientid": client})
			}
			can := func(user, client, action, topic string) string {
				r, _ := authz.call(t, addr, method, map[string]string{"username": user, "clientid": client, "action": action, "topic": topic})
				return r
			}
			if r, su := login("alice", alice, "c1-"+method); r != "allow" || su {
				t.Errorf("alice login: %s, superuser %v", r, su)
			}
			if r, su := login("root", root, "r1-"+method); r != "allow" || !su {
				t.Errorf("root login: %s, superuser %v", r, su)
			}
			for _, tc := range []struct{ user, pass string }{{"alice", "wrong"}, {"bob", alice}, {"alice", ""}} {
				if r, su := login(tc.user, tc.pass, "x"); r != "deny" || su {
					t.Errorf("login %s/%q: %s, superuser %v", tc.user, tc.pass, r, su)
				}
			}
			for _, tc := range []struct{ user, client, action, topic, want string }{
				{"alice", "c1-" + method, "publish", "sensors/t1", "allow"},
				{"alice", "c1-" + method, "publish", "other/t1", "deny"},
				{"alice", "c1-" + method, "subscribe", "sensors/+", "allow"},
				{"alice", "c1-" + method, "subscribe", "sensors/#", "deny"}, // the ACL on sensors/vault/door
				{"alice", "c1-" + method, "subscribe", "sensors/garden/#", "allow"},
				{"alice", "c1-" + method, "subscribe", "$share/g/sensors/+", "allow"},
				{"alice", "c1-" + method, "subscribe", "#", "deny"},
				{"alice", "c1-" + method, "all", "sensors/t1", "allow"}, // her key publishes, her role subscribes
				{"alice", "c1-" + method, "all", "sensors", "deny"},     // subscribes, but does not publish
				{"alice", "c1-" + method, "all", "sensors/+", "deny"},   // a filter is no topic name
				{"alice", "c1-" + method, "retain", "sensors/t1", "deny"},
				{"alice", "c1-" + method, "publish", "sensors/a b", "deny"},
				{"alice", "nobody", "publish", "sensors/t1", "deny"},
				{"root", "r1-" + method, "all", "anything/at/all", "allow"},
				{"root", "r1-" + method, "subscribe", "#", "allow"},
				{"root", "r1-" + method, "all", "anything/#", "deny"}, // not a topic name, even for a superuser
			} {
				if got := can(tc.user, tc.client, tc.action, tc.topic); got != tc.want {
					t.Errorf("%s %s %s %q: %s, want %s", tc.user, tc.client, tc.action, tc.topic, got, tc.want)
				}
			}
		})
	}
	// Every answer is 200 application/json, unknown paths included, so
	// that EMQX never reads one as ignore.
	for _, path := range []string{"authn", "authz", "authx", ""} {
		resp, err := http.Post("http://"+addr+EMQXPrefix+path, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := `{"result":"deny"}`
		if path == "authn" {
			want = `{"result":"deny","is_superuser":false}`
		}
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || string(raw) != want {
			t.Errorf("%s: %d %s %q, want 200 application/json %q", path, resp.StatusCode, resp.Header.Get("Content-Type"), raw, want)
		}
	}
}
