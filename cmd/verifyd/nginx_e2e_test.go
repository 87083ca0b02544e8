package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// nginxInstall is the command that installs nginx on Debian.
var nginxInstall = []string{"apt-get", "install", "-y", "-q", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=120", "nginx"}

// lookNginx returns the path of nginx, installing the Debian package when
// it is missing and the test runs as root. Otherwise the nginx tests skip,
// loudly, except under CI=true, where they fail.
func lookNginx(t *testing.T) string {
	t.Helper()
	find := func() string {
		if p, err := exec.LookPath("nginx"); err == nil {
			return p
		}
		if fi, err := os.Stat("/usr/sbin/nginx"); err == nil && fi.Mode()&0o111 != 0 {
			return "/usr/sbin/nginx"
		}
		return ""
	}
	if p := find(); p != "" {
		return p
	}
	why := "it is not installed, and the test does not run as root"
	if _, err := exec.LookPath("apt-get"); err != nil {
		why = "it is not installed, and there is no apt-get"
	} else if os.Geteuid() == 0 {
		t.Logf("nginx is missing: %s", strings.Join(nginxInstall, " "))
		err := aptGet(nginxInstall...)
		if err != nil {
			t.Logf("%v; running apt-get update and trying again", err)
			if err = aptGet("apt-get", "update", "-q", "-o", "DPkg::Lock::Timeout=120"); err == nil {
				err = aptGet(nginxInstall...)
			}
		}
		if p := find(); p != "" {
			return p
		}
		why = fmt.Sprintf("installing it failed: %v", err)
		if err == nil {
			why = "apt-get installed it, but there is no nginx binary on PATH or at /usr/sbin/nginx"
		}
	}
	msg := "!!! nginx not found (" + why + "): the nginx integration (docs/integrations/nginx.md) is NOT tested; install it with: " + strings.Join(nginxInstall, " ")
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// aptGet runs an apt-get command without prompts, for at most 2 minutes
// (installing nginx takes about 5 s).
func aptGet(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		const keep = 2000
		if len(out) > keep {
			out = out[len(out)-keep:]
		}
		return fmt.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// nginxServer is an nginx process under test.
type nginxServer struct {
	t      *testing.T
	cmd    *exec.Cmd
	dir    string
	addr   string // where it listens
	exited chan struct{}
	output bytes.Buffer // written by the process until exited closes
}

// nginxDocAddr is the address nginx listens on in docs/integrations/nginx.md.
const nginxDocAddr = "127.0.0.1:8088"

// startNginx runs nginx with block (the http-context configuration of
// docs/integrations/nginx.md, its listen address nginxDocAddr) on a free
// loopback port, and waits until the port accepts connections. The block
// is used verbatim inside http { }; the lines around it keep every file
// nginx writes (pid, logs, temp files) in a fresh directory.
func startNginx(t *testing.T, bin, block string) *nginxServer {
	t.Helper()
	for attempt := 1; ; attempt++ {
		n, bindErr := tryStartNginx(t, bin, block)
		if n != nil {
			return n
		}
		// The free port was taken between choosing it and nginx binding
		// it: another process on a shared machine. Try another.
		if attempt == 3 {
			t.Fatalf("nginx could not bind a port in 3 attempts: %s", bindErr)
		}
	}
}

// tryStartNginx starts nginx once; it returns nil and nginx's output when
// nginx could not bind its port.
func tryStartNginx(t *testing.T, bin, block string) (*nginxServer, string) {
	t.Helper()
	dir := t.TempDir()
	n := &nginxServer{t: t, dir: dir, addr: freeAddr(t), exited: make(chan struct{})}
	conf := "daemon off;\n" +
		"worker_processes 1;\n" +
		"pid " + filepath.Join(dir, "nginx.pid") + ";\n" +
		"error_log " + filepath.Join(dir, "error.log") + " info;\n" +
		"events { worker_connections 64; }\n" +
		"http {\n" +
		"access_log " + filepath.Join(dir, "access.log") + ";\n" +
		"client_body_temp_path " + filepath.Join(dir, "client_body") + ";\n" +
		"proxy_temp_path " + filepath.Join(dir, "proxy") + ";\n" +
		"fastcgi_temp_path " + filepath.Join(dir, "fastcgi") + ";\n" +
		"uwsgi_temp_path " + filepath.Join(dir, "uwsgi") + ";\n" +
		"scgi_temp_path " + filepath.Join(dir, "scgi") + ";\n" +
		replaceAddr(t, block, nginxDocAddr, n.addr) +
		"}\n"
	confFile := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	n.cmd = exec.Command(bin, "-p", dir+"/", "-c", confFile, "-e", filepath.Join(dir, "error.log"))
	n.cmd.Stdout, n.cmd.Stderr = &n.output, &n.output
	// Its own process group, so that the workers can be killed with the
	// master if it does not stop on SIGQUIT.
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { n.cmd.Wait(); close(n.exited) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", n.addr, time.Second)
		if err == nil {
			c.Close()
			t.Cleanup(n.stop)
			return n, ""
		}
		select {
		case <-n.exited:
			logs := n.logs()
			if strings.Contains(logs, "Address already in use") {
				return nil, logs
			}
			t.Fatalf("nginx exited during start:\n%s\nconfiguration:\n%s", logs, conf)
		default:
		}
		if time.Now().After(deadline) {
			n.stop()
			t.Fatalf("nginx does not listen on %s after 15s:\n%s", n.addr, n.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop asks nginx to finish (SIGQUIT, as kill -QUIT $(cat nginx.pid)
// does), and kills its process group if it has not stopped within 10s.
func (n *nginxServer) stop() {
	select {
	case <-n.exited:
		return
	default:
	}
	n.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-n.exited:
	case <-time.After(10 * time.Second):
		n.t.Errorf("nginx did not stop within 10s of SIGQUIT; killing it")
		syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
		<-n.exited
	}
}

// logs returns nginx's output and error log, for failure messages.
func (n *nginxServer) logs() string {
	var b strings.Builder
	select {
	case <-n.exited:
		b.WriteString("output:\n" + n.output.String())
	default:
	}
	errLog, _ := os.ReadFile(filepath.Join(n.dir, "error.log"))
	b.WriteString("error.log:\n" + string(errLog))
	return b.String()
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// nginxCase is one client request through nginx and what must come of it.
type nginxCase struct {
	name         string
	method, path string
	header       []string // "Name: value"
	body         string
	chunked      bool   // send the body without a length
	status       int    // the status the client must get
	subject      string // with 200: the X-Auth-Subject the upstream must get
	roles        string // with 200: the X-Auth-Roles the upstream must get ("" : none sent)
}

// TestNginxForwardAuth runs the configuration of docs/integrations/nginx.md
// in a real nginx in front of the real verifyd and a recording upstream:
// allowed requests reach the upstream with the identity headers, refused
// ones get 401 (with WWW-Authenticate) or 403 from nginx and never reach
// it, a POST's body neither hangs the auth request nor is lost, and the
// route table decides per project. The test replaces only the blocks'
// addresses (nginx 127.0.0.1:8088, verifyd 127.0.0.1:8080, upstream
// 127.0.0.1:9000) with free loopback ports, and wraps the nginx block in
// the main-context lines of a private nginx (startNginx).
func TestNginxForwardAuth(t *testing.T) {
	bin := lookNginx(t)
	up := newUpstream(t)
	d := startForwardAuthDaemon(t, gatewayDoc(t, "nginx.md", "verifyd", "yaml"))
	block := gatewayDoc(t, "nginx.md", "gateway", "nginx")
	block = replaceAddr(t, block, "127.0.0.1:8080", d.addr)
	block = replaceAddr(t, block, "127.0.0.1:9000", up.addr())
	ng := startNginx(t, bin, block)

	pub := d.createKey(map[string]any{"subject": "publisher-1", "roles": []string{"publisher"},
		"scopes": []string{"projects/p1/topics/*:publish", "projects/p1/topics/*:get"}})
	reader := d.createKey(map[string]any{"subject": "reader-1", "scopes": []string{"reports:read"}})
	gone := d.createKey(map[string]any{"subject": "gone-1", "scopes": []string{"projects/p1/topics/*:get"}})
	if code := d.adminHTTP("DELETE", "/v1/admin/keys/"+gone.ID, "", nil); code != 200 {
		t.Fatalf("revoke answered %d", code)
	}
	bearer := func(k keyAnswer) string { return "Authorization: Bearer " + k.Secret }
	const message = `{"messages":[{"data":"aGVsbG8="}]}`

	cases := []nginxCase{
		{name: "route GET, bearer", method: "GET", path: "/v1/projects/p1/topics/orders",
			header: []string{bearer(pub), "X-Auth-Subject: mallory", "X-Auth-Roles: admin"},
			status: 200, subject: "publisher-1", roles: "publisher"},
		{name: "route POST with a body", method: "POST", path: "/v1/projects/p1/topics/orders:publish",
			header: []string{bearer(pub), "Content-Type: application/json"}, body: message, status: 200, subject: "publisher-1", roles: "publisher"},
		{name: "route POST with a chunked body", method: "POST", path: "/v1/projects/p1/topics/orders:publish",
			header: []string{bearer(pub)}, body: message, chunked: true, status: 200, subject: "publisher-1", roles: "publisher"},
		{name: "AMS ?key=", method: "POST", path: "/v1/projects/p1/topics/orders:publish?key=" + pub.Secret,
			body: message, status: 200, subject: "publisher-1", roles: "publisher"},
		{name: "X-Api-Key", method: "GET", path: "/v1/projects/p1/topics/orders",
			header: []string{"X-Api-Key: " + pub.Secret}, status: 200, subject: "publisher-1", roles: "publisher"},
		{name: "Basic, the token as password", method: "GET", path: "/v1/projects/p1/topics/orders",
			header: []string{"Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("client:"+pub.Secret))},
			status: 200, subject: "publisher-1", roles: "publisher"},
		{name: "?scope= location", method: "GET", path: "/reports/daily?day=1",
			header: []string{bearer(reader), "X-Auth-Roles: admin"}, status: 200, subject: "reader-1"},

		{name: "route of another project", method: "POST", path: "/v1/projects/p2/topics/orders:publish",
			header: []string{bearer(pub)}, body: message, status: 403},
		// nginx passes $request_uri as the client sent it: verifyd sees the
		// dot segments, and no route matches.
		{name: "dot segments", method: "POST", path: "/v1/projects/p2/../p1/topics/orders:publish",
			header: []string{bearer(pub)}, body: message, status: 403},
		{name: "no route for the method", method: "DELETE", path: "/v1/projects/p1/topics/orders",
			header: []string{bearer(pub)}, status: 403},
		{name: "?scope= location, not granted", method: "GET", path: "/reports/daily",
			header: []string{bearer(pub)}, status: 403},
		{name: "no credential", method: "GET", path: "/v1/projects/p1/topics/orders", status: 401},
		{name: "no credential, POST with a body", method: "POST", path: "/v1/projects/p1/topics/orders:publish",
			body: message, status: 401},
		{name: "unknown key", method: "GET", path: "/v1/projects/p1/topics/orders",
			header: []string{"Authorization: Bearer vk_" + strings.Repeat("A", 40)}, status: 401},
		{name: "unknown ?key=", method: "GET", path: "/v1/projects/p1/topics/orders?key=" + strings.Repeat("x", 43), status: 401},
		{name: "revoked key", method: "GET", path: "/v1/projects/p1/topics/orders",
			header: []string{bearer(gone)}, status: 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { ng.check(t, up, tc) })
	}

	// The two lines the page recommends are not what keeps a POST from
	// hanging: without them nginx forwards the client's Content-Length
	// without the body, and verifyd still answers at once.
	t.Run("without the body lines", func(t *testing.T) {
		bare := block
		for _, line := range []string{"proxy_pass_request_body off;", `proxy_set_header Content-Length "";`} {
			if !strings.Contains(bare, line) {
				t.Fatalf("the nginx block of docs/integrations/nginx.md lacks %q", line)
			}
			bare = strings.ReplaceAll(bare, line, "")
		}
		ng2 := startNginx(t, bin, bare)
		ng2.check(t, up, nginxCase{method: "POST", path: "/v1/projects/p1/topics/orders:publish",
			header: []string{bearer(pub)}, body: message, status: 200, subject: "publisher-1", roles: "publisher"})
		ng2.check(t, up, nginxCase{method: "POST", path: "/v1/projects/p2/topics/orders:publish",
			header: []string{bearer(pub)}, body: message, status: 403})
	})

	// verifyd down: nginx fails closed with 500.
	d.kill()
	t.Run("verifyd unreachable", func(t *testing.T) {
		ng.check(t, up, nginxCase{method: "GET", path: "/v1/projects/p1/topics/orders", header: []string{bearer(pub)}, status: 500})
	})
}

// gatewayClient bounds every request through a gateway: a request that
// waits for a body the auth server never gets fails instead of hanging.
var gatewayClient = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// check sends tc through nginx and checks the answer and what reached the
// upstream.
func (n *nginxServer) check(t *testing.T, up *upstream, tc nginxCase) {
	t.Helper()
	var body io.Reader = http.NoBody
	if tc.body != "" {
		body = strings.NewReader(tc.body)
		if tc.chunked {
			body = io.MultiReader(body) // hides the length: sent chunked
		}
	}
	req, err := http.NewRequest(tc.method, "http://"+n.addr+tc.path, body)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range tc.header {
		name, value, _ := strings.Cut(h, ": ")
		req.Header.Add(name, value)
	}
	before := up.count()
	resp, err := gatewayClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: no answer: %v\n%s", tc.method, tc.path, err, n.logs())
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != tc.status {
		t.Fatalf("%s %s: %d %q, want %d\n%s", tc.method, tc.path, resp.StatusCode, answer, tc.status, n.logs())
	}
	reached := up.since(before)
	if tc.status != 200 {
		if len(reached) != 0 {
			t.Errorf("%s %s: refused with %d, but the upstream got %d request(s)", tc.method, tc.path, tc.status, len(reached))
		}
		// nginx copies the first challenge: verifyd's Bearer one.
		if challenge := resp.Header.Values("WWW-Authenticate"); tc.status == 401 && (len(challenge) == 0 || !strings.HasPrefix(challenge[0], `Bearer realm="verifyd"`)) {
			t.Errorf("%s %s: 401 with WWW-Authenticate %q, want verifyd's Bearer challenge", tc.method, tc.path, challenge)
		}
		return
	}
	if len(reached) != 1 {
		t.Fatalf("%s %s: allowed, and the upstream got %d request(s)", tc.method, tc.path, len(reached))
	}
	if string(answer) != upstreamAnswer {
		t.Errorf("%s %s: the client got %q, not the upstream's answer", tc.method, tc.path, answer)
	}
	got := reached[0]
	if got.method != tc.method || got.uri != tc.path || got.body != tc.body {
		t.Errorf("upstream got %s %s with body %q, want %s %s with %q", got.method, got.uri, got.body, tc.method, tc.path, tc.body)
	}
	if s := got.header.Values("X-Auth-Subject"); len(s) != 1 || s[0] != tc.subject {
		t.Errorf("upstream got X-Auth-Subject %q, want %q", s, tc.subject)
	}
	if k := got.header.Values("X-Auth-Kind"); len(k) != 1 || k[0] != "api_key" {
		t.Errorf("upstream got X-Auth-Kind %q, want api_key", k)
	}
	roles := got.header.Values("X-Auth-Roles")
	if tc.roles == "" && len(roles) != 0 || tc.roles != "" && (len(roles) != 1 || roles[0] != tc.roles) {
		t.Errorf("upstream got X-Auth-Roles %q, want %q", roles, tc.roles)
	}
}

// upstreamAnswer is the body of every upstream answer.
const upstreamAnswer = "answered by the upstream\n"

// upstream is the service behind a gateway: it records every request it
// gets and answers 200 upstreamAnswer.
type upstream struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []upstreamRequest
}

// upstreamRequest is a request as the upstream got it.
type upstreamRequest struct {
	method, uri, body string
	header            http.Header
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.got = append(u.got, upstreamRequest{method: r.Method, uri: r.RequestURI, body: string(b), header: r.Header.Clone()})
		u.mu.Unlock()
		io.WriteString(w, upstreamAnswer)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

// addr is the upstream's host:port.
func (u *upstream) addr() string { return strings.TrimPrefix(u.srv.URL, "http://") }

// count is the number of requests so far.
func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.got)
}

// since returns the requests after the first n.
func (u *upstream) since(n int) []upstreamRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]upstreamRequest(nil), u.got[n:]...)
}
