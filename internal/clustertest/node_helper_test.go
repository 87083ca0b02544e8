package clustertest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Bounds of the waits on verifyd processes.
const (
	nodeReadyTimeout = 30 * time.Second // a started node answers /readyz 200
	nodeStopTimeout  = 20 * time.Second // a SIGTERMed node exits
	convergeTimeout  = 30 * time.Second // every node reaches the same revision
	httpTimeout      = 15 * time.Second // one HTTP call
)

// binDir holds the verifyd binary built for this test binary.
var (
	binDir   string
	buildErr error
	building sync.Once
)

// TestMain removes the built binary after the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// verifydBinary builds ../../cmd/verifyd and ../../cmd/verifyctl once per
// test binary and returns verifyd's path.
func verifydBinary(tb testing.TB) string {
	tb.Helper()
	building.Do(func() {
		root, err := filepath.Abs("../..")
		if err != nil {
			buildErr = err
			return
		}
		if binDir, err = os.MkdirTemp("", "clustertest-bin"); err != nil {
			buildErr = err
			return
		}
		cmd := exec.Command(goTool(), "build", "-o", binDir+string(filepath.Separator), "./cmd/verifyd", "./cmd/verifyctl")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/verifyd ./cmd/verifyctl in %s: %v\n%s", root, err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return filepath.Join(binDir, "verifyd")
}

// verifyctlBinary returns the path of verifyctl, built with verifyd.
func verifyctlBinary(tb testing.TB) string {
	tb.Helper()
	return filepath.Join(filepath.Dir(verifydBinary(tb)), "verifyctl")
}

// goTool is the go command of the toolchain running the test.
func goTool() string {
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return "go"
}

// waitUntil calls cond until it reports done, at most for timeout, and
// fails the test naming what was waited for and the last state cond
// described.
func waitUntil(tb testing.TB, timeout time.Duration, what string, cond func() (done bool, state string)) {
	tb.Helper()
	start := time.Now()
	var last string
	for {
		done, state := cond()
		if done {
			return
		}
		last = state
		if time.Since(start) > timeout {
			tb.Fatalf("timed out after %v waiting for %s; last state: %s", timeout, what, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// randomHex returns n random bytes, hex-encoded.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// testCluster is an etcd cluster and the verifyd nodes that replicate it.
type testCluster struct {
	etcd       *etcdCluster
	adminKey   string
	secretFile string
	etcdTLS    etcdTLSFiles // the tls section of every node's etcd configuration
	nodes      []*node
}

// etcdTLSFiles is the cluster.etcd.tls section of a node's configuration.
// The zero value writes no section.
type etcdTLSFiles struct {
	CAFile   string
	CertFile string
	KeyFile  string
}

// yaml returns the section, indented to sit under cluster.etcd, or "".
func (f etcdTLSFiles) yaml() string {
	if f == (etcdTLSFiles{}) {
		return ""
	}
	s := "    tls:\n"
	for _, kv := range [][2]string{{"ca_file", f.CAFile}, {"cert_file", f.CertFile}, {"key_file", f.KeyFile}} {
		if kv[1] != "" {
			s += fmt.Sprintf("      %s: %q\n", kv[0], kv[1])
		}
	}
	return s
}

// clusterOptions are the settings of newTestClusterWith; the zero value
// is what newTestCluster uses.
type clusterOptions struct {
	// PKI, when set, makes etcd serve clients over TLS with client
	// certificate authentication (see withClientTLS), and every node
	// connect with PKI's CA and client certificate.
	PKI *testPKI
}

// newTestCluster starts an etcd cluster of members members and one verifyd
// node per name, and waits until every node is ready.
func newTestCluster(tb testing.TB, members int, names ...string) *testCluster {
	tb.Helper()
	return newTestClusterWith(tb, members, clusterOptions{}, names...)
}

// newTestClusterWith is newTestCluster with opts.
func newTestClusterWith(tb testing.TB, members int, opts clusterOptions, names ...string) *testCluster {
	tb.Helper()
	bin := verifydBinary(tb)
	var etcdOpts []etcdOption
	var files etcdTLSFiles
	if opts.PKI != nil {
		etcdOpts = append(etcdOpts, withClientTLS(opts.PKI))
		files = etcdTLSFiles{CAFile: opts.PKI.CAFile, CertFile: opts.PKI.ClientCert, KeyFile: opts.PKI.ClientKey}
	}
	c := &testCluster{
		etcd:       startEtcdCluster(tb, members, etcdOpts...),
		adminKey:   "clustertest-" + randomHex(16),
		secretFile: filepath.Join(tb.TempDir(), "cluster.secret"),
		etcdTLS:    files,
	}
	if err := os.WriteFile(c.secretFile, []byte(randomHex(32)+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	for _, name := range names {
		n := c.newNode(tb, bin, name)
		n.start(tb)
		c.nodes = append(c.nodes, n)
	}
	for _, n := range c.nodes {
		n.waitReady(tb)
	}
	return c
}

// node returns the node with the given name, or nil.
func (c *testCluster) node(name string) *node {
	for _, n := range c.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

// newNode writes the configuration of a node, with the cluster's etcd
// TLS files; it does not start it.
func (c *testCluster) newNode(tb testing.TB, bin, name string) *node {
	tb.Helper()
	return c.newNodeTLS(tb, bin, name, c.etcdTLS)
}

// newNodeTLS writes the configuration of a node that reaches etcd with
// the TLS files tlsFiles; it does not start it.
func (c *testCluster) newNodeTLS(tb testing.TB, bin, name string, tlsFiles etcdTLSFiles) *node {
	tb.Helper()
	dir := tb.TempDir()
	n := &node{
		name:     name,
		bin:      bin,
		dir:      dir,
		cfgPath:  filepath.Join(dir, "verifyd.yaml"),
		logPath:  filepath.Join(dir, "verifyd.log"),
		addr:     freeAddr(tb),
		adminKey: c.adminKey,
	}
	eps := make([]string, 0, len(c.etcd.Endpoints()))
	for _, ep := range c.etcd.Endpoints() {
		eps = append(eps, fmt.Sprintf("%q", ep))
	}
	cfg := fmt.Sprintf(`data_dir: %q
socket: ""
http:
  addr: %q
  shutdown_timeout: 3s
log:
  level: info
  format: text
# The tests present revoked keys on purpose, in tight loops.
throttle:
  enabled: false
# A node that kept a negative answer for a key it had not received yet
# would refuse it for this long after receiving it.
cache:
  negative_ttl: 60s
cluster:
  node: %s
  secret_file: %q
  etcd:
    endpoints: [%s]
    prefix: /verifyd/
    dial_timeout: 2s
    request_timeout: 3s
`, filepath.Join(dir, "data"), n.addr, name, c.secretFile, strings.Join(eps, ", "))
	cfg += tlsFiles.yaml()
	if err := os.WriteFile(n.cfgPath, []byte(cfg), 0o600); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		n.kill()
		if tb.Failed() {
			tb.Logf("last lines of node %s's log (%s):\n%s", n.name, n.logPath, n.logTail(40))
		}
	})
	return n
}

// node is one verifyd process of a test cluster, restartable on the same
// configuration, data directory and address.
type node struct {
	name     string
	bin      string
	dir      string
	cfgPath  string
	logPath  string
	addr     string
	adminKey string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{} // closed when cmd exited
	client *http.Client  // new for every process, so no call reuses a dead connection
}

// childEnv is the test's environment without VERIFYD_* variables (which
// would override the configuration file), plus the admin key.
func (n *node) childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VERIFYD_") {
			env = append(env, kv)
		}
	}
	return append(env, "VERIFYD_ADMIN_KEY="+n.adminKey)
}

// start runs the process, its output appended to the node's log file. It
// does not wait for readiness.
func (n *node) start(tb testing.TB) {
	tb.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		select {
		case <-n.done:
		default:
			tb.Fatalf("node %s is already running", n.name)
		}
	}
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	fmt.Fprintf(logf, "=== clustertest: starting node %s at %s\n", n.name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(n.bin, "--config", n.cfgPath)
	cmd.Env = n.childEnv()
	cmd.Stdout = logf
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		tb.Fatalf("starting node %s: %v", n.name, err)
	}
	done := make(chan struct{})
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(logf, "=== clustertest: node %s exited: %v\n", n.name, err)
		logf.Close()
		close(done)
	}()
	if n.client != nil {
		n.client.CloseIdleConnections()
	}
	n.cmd, n.done = cmd, done
	n.client = &http.Client{Timeout: httpTimeout, Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
}

// process returns the running command and its exit channel.
func (n *node) process() (*exec.Cmd, chan struct{}) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd, n.done
}

// exited reports whether the last started process has exited, and how.
func (n *node) exited() (bool, string) {
	cmd, done := n.process()
	if cmd == nil {
		return true, "never started"
	}
	select {
	case <-done:
		return true, cmd.ProcessState.String()
	default:
		return false, ""
	}
}

// waitReady waits until the node answers GET /readyz with 200, failing
// at once if the process exits.
func (n *node) waitReady(tb testing.TB) {
	tb.Helper()
	waitUntil(tb, nodeReadyTimeout, "node "+n.name+" to answer /readyz 200", func() (bool, string) {
		if gone, how := n.exited(); gone {
			tb.Fatalf("node %s exited (%s) before it was ready; its log:\n%s", n.name, how, n.logTail(30))
		}
		code, body, err := n.readyz()
		if err != nil {
			return false, err.Error()
		}
		return code == http.StatusOK, fmt.Sprintf("%d %q", code, body)
	})
}

// stop sends SIGTERM and waits for the process to exit.
func (n *node) stop(tb testing.TB) {
	tb.Helper()
	n.signal(tb, syscall.SIGTERM, nodeStopTimeout)
}

// crash sends SIGKILL and waits for the process to exit.
func (n *node) crash(tb testing.TB) {
	tb.Helper()
	n.signal(tb, syscall.SIGKILL, 5*time.Second)
}

func (n *node) signal(tb testing.TB, sig syscall.Signal, timeout time.Duration) {
	tb.Helper()
	cmd, done := n.process()
	if cmd == nil {
		tb.Fatalf("node %s was never started", n.name)
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		tb.Fatalf("signalling node %s: %v", n.name, err)
	}
	select {
	case <-done:
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-done
		tb.Fatalf("node %s did not exit within %v of %v", n.name, timeout, sig)
	}
}

// kill ends the process, if it runs, for t.Cleanup.
func (n *node) kill() {
	cmd, done := n.process()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-done
}

// restart starts the stopped process again and waits until it is ready.
func (n *node) restart(tb testing.TB) {
	tb.Helper()
	n.start(tb)
	n.waitReady(tb)
}

// logTail returns the last lines of the node's log file.
func (n *node) logTail(lines int) string {
	return tail(n.logPath, lines)
}

// tail returns the last lines of a file.
func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// httpClient returns the client of the current process.
func (n *node) httpClient() *http.Client {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.client
}

// call sends body (JSON-encoded unless nil) to the node, with the admin key
// when admin is set, and returns the status and the answer. An error means
// that no complete answer came.
func (n *node) call(method, path string, admin bool, body any) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+n.addr+path, r)
	if err != nil {
		return 0, nil, err
	}
	if admin {
		req.Header.Set("X-Admin-Key", n.adminKey)
	}
	resp, err := n.httpClient().Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// readyz returns the status and body of GET /readyz.
func (n *node) readyz() (int, string, error) {
	code, b, err := n.call(http.MethodGet, "/readyz", false, nil)
	return code, string(b), err
}

// apiError is the error body of the API: {"code","error","message"}.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// errorCode returns the "code" of an error answer, or "" when there is
// none.
func errorCode(body []byte) string {
	var e apiError
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	return e.Code
}

// testScope is the pattern every test key grants, and verifyScope a scope
// it covers.
const (
	testScope   = "cluster:test:*"
	verifyScope = "cluster:test:read"
)

// key is a created key: its id and its secret, the token to verify.
type key struct {
	ID     string `json:"id"`
	Secret string `json:"secret"`
}

// createKey creates an API key for subject granting testScope. It returns
// the key when the answer is 201, and otherwise the status and body.
func (n *node) createKey(subject string) (key, int, []byte, error) {
	code, b, err := n.call(http.MethodPost, "/v1/admin/keys", true, map[string]any{
		"subject": subject,
		"scopes":  []string{testScope},
	})
	if err != nil || code != http.StatusCreated {
		return key{}, code, b, err
	}
	var k key
	if err := json.Unmarshal(b, &k); err != nil {
		return key{}, code, b, fmt.Errorf("create answer %q: %w", b, err)
	}
	if k.ID == "" || k.Secret == "" {
		return key{}, code, b, fmt.Errorf("create answer without id or secret: %q", b)
	}
	return k, code, b, nil
}

// mustCreateKey creates a key and fails the test unless it is
// acknowledged.
func (n *node) mustCreateKey(tb testing.TB, subject string) key {
	tb.Helper()
	k, code, b, err := n.createKey(subject)
	if err != nil || code != http.StatusCreated {
		tb.Fatalf("node %s: create key for %s: %d %s %v", n.name, subject, code, b, err)
	}
	return k
}

// revokeKey revokes the key with id (DELETE /v1/admin/keys/{id}) and
// returns the status and body.
func (n *node) revokeKey(id string) (int, []byte, error) {
	return n.call(http.MethodDelete, "/v1/admin/keys/"+id, true, nil)
}

// mustRevokeKey revokes a key and fails the test unless it is
// acknowledged.
func (n *node) mustRevokeKey(tb testing.TB, id string) {
	tb.Helper()
	code, b, err := n.revokeKey(id)
	if err != nil || code != http.StatusOK {
		tb.Fatalf("node %s: revoke key %s: %d %s %v", n.name, id, code, b, err)
	}
}

// verifyAnswer is what POST /v1/verify answers that the tests look at.
type verifyAnswer struct {
	Allow  bool   `json:"allow"`
	Status string `json:"status"`
	Reason string `json:"reason"`
}

// verify asks the node whether token grants verifyScope, and returns the
// HTTP status and the answer's status ("ok", "revoked", "unknown", ...).
func (n *node) verify(token string) (int, string, error) {
	code, b, err := n.call(http.MethodPost, "/v1/verify", false, map[string]string{"token": token, "scope": verifyScope})
	if err != nil {
		return 0, "", err
	}
	var a verifyAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		return code, "", fmt.Errorf("verify answer %d %q: %w", code, b, err)
	}
	if (code == http.StatusOK) != (a.Status == "ok") || a.Allow != (a.Status == "ok") {
		return code, a.Status, fmt.Errorf("inconsistent verify answer %d %q", code, b)
	}
	return code, a.Status, nil
}

// expectVerify fails the test unless the node answers token with status
// want ("ok" with 200, "revoked" with 401).
func (n *node) expectVerify(tb testing.TB, token, want, what string) {
	tb.Helper()
	code, status, err := n.verify(token)
	if err != nil || status != want {
		tb.Fatalf("node %s: verify %s: %d %q %v, want %q", n.name, what, code, status, err, want)
	}
}

// waitVerify polls the node until it answers token with status want, and
// returns how long that took. Any answer other than want and the allowed
// interim statuses fails the test.
func (n *node) waitVerify(tb testing.TB, token, want string, timeout time.Duration, interim ...string) time.Duration {
	tb.Helper()
	start := time.Now()
	waitUntil(tb, timeout, fmt.Sprintf("node %s to answer %q", n.name, want), func() (bool, string) {
		code, status, err := n.verify(token)
		if err != nil {
			return false, err.Error()
		}
		if status == want {
			return true, ""
		}
		for _, s := range interim {
			if status == s {
				return false, fmt.Sprintf("%d %q", code, status)
			}
		}
		tb.Fatalf("node %s answered %d %q while waiting for %q", n.name, code, status, want)
		return false, ""
	})
	return time.Since(start)
}

// clusterNode is one entry of the node list of GET /v1/admin/cluster.
type clusterNode struct {
	Node       string  `json:"node"`
	State      string  `json:"state"`
	Revision   int64   `json:"revision"`
	LagSeconds float64 `json:"lag_seconds"`
	ReportedAt string  `json:"reported_at"`
}

// clusterStatus is the answer of GET /v1/admin/cluster.
type clusterStatus struct {
	Node           string        `json:"node"`
	State          string        `json:"state"`
	Revision       int64         `json:"revision"`
	LatestRevision int64         `json:"latest_revision"`
	LagSeconds     float64       `json:"lag_seconds"`
	AgeSeconds     float64       `json:"age_seconds"`
	WatchRestarts  int64         `json:"watch_restarts"`
	Resyncs        int64         `json:"resyncs"`
	Nodes          []clusterNode `json:"nodes"`
}

// clusterStatus returns the node's GET /v1/admin/cluster.
func (n *node) clusterStatus() (clusterStatus, error) {
	var s clusterStatus
	err := n.getJSON("/v1/admin/cluster", &s)
	return s, err
}

// fingerprint is the answer of GET /v1/admin/cluster/fingerprint: a hash
// of the node's replicated state at a revision.
type fingerprint struct {
	Node               string `json:"node"`
	Revision           int64  `json:"revision"`
	Fingerprint        string `json:"fingerprint"`
	Records            int64  `json:"records"`
	TokenRevocations   int64  `json:"token_revocations"`
	SubjectRevocations int64  `json:"subject_revocations"`
	Requests           int64  `json:"requests"`
}

// String shows a fingerprint with its node, revision and counts.
func (f fingerprint) String() string {
	return fmt.Sprintf("%s@%d %s (records %d, token revocations %d, subject revocations %d, requests %d)",
		f.Node, f.Revision, f.Fingerprint, f.Records, f.TokenRevocations, f.SubjectRevocations, f.Requests)
}

// fingerprint returns the node's GET /v1/admin/cluster/fingerprint.
func (n *node) fingerprint() (fingerprint, error) {
	var f fingerprint
	err := n.getJSON("/v1/admin/cluster/fingerprint", &f)
	if err == nil && (f.Fingerprint == "" || f.Revision <= 0) {
		err = fmt.Errorf("node %s: fingerprint without hash or revision: %+v", n.name, f)
	}
	return f, err
}

// getJSON decodes the 200 answer of an admin GET into out.
func (n *node) getJSON(path string, out any) error {
	code, b, err := n.call(http.MethodGet, path, true, nil)
	if err != nil {
		return fmt.Errorf("node %s: GET %s: %w", n.name, path, err)
	}
	if code != http.StatusOK {
		return fmt.Errorf("node %s: GET %s: %d %s", n.name, path, code, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("node %s: GET %s: %q: %w", n.name, path, b, err)
	}
	return nil
}

// waitConverged waits until every node of nodes (all when none are given)
// reports the same fingerprint, and returns it. It fails the test when the
// nodes report one revision, no lower than the highest revision any of
// them had applied when the wait began, with different fingerprints, and
// when they do not agree within convergeTimeout. Equal fingerprints at
// different revisions count as agreement (a node that reloaded a snapshot
// may stand at a later revision with no change in between), and are
// logged.
func (c *testCluster) waitConverged(tb testing.TB, nodes ...*node) fingerprint {
	tb.Helper()
	if len(nodes) == 0 {
		nodes = c.nodes
	}
	var target int64
	for _, n := range nodes {
		st, err := n.clusterStatus()
		if err != nil {
			tb.Fatalf("before comparing replicas: %v", err)
		}
		target = max(target, st.Revision)
	}
	var agreed []fingerprint
	start := time.Now()
	waitUntil(tb, convergeTimeout, fmt.Sprintf("every node at one fingerprint (revision >= %d)", target), func() (bool, string) {
		fps := make([]fingerprint, len(nodes))
		var seen []string
		sameRev, sameHash := true, true
		for i, n := range nodes {
			f, err := n.fingerprint()
			if err != nil {
				return false, err.Error()
			}
			fps[i] = f
			seen = append(seen, f.String())
			sameRev = sameRev && f.Revision == fps[0].Revision && f.Revision >= target
			sameHash = sameHash && f.Fingerprint == fps[0].Fingerprint
		}
		if sameRev && !sameHash {
			tb.Fatalf("replicas differ at revision %d: %s", fps[0].Revision, strings.Join(seen, "; "))
		}
		agreed = fps
		return sameHash, strings.Join(seen, "; ")
	})
	f := agreed[0]
	var revs []string
	sameRev := true
	for _, g := range agreed {
		revs = append(revs, fmt.Sprintf("%s@%d", g.Node, g.Revision))
		sameRev = sameRev && g.Revision == f.Revision
	}
	if !sameRev {
		tb.Logf("replicas hold the same state at different revisions: %s", strings.Join(revs, " "))
	}
	tb.Logf("replicas agree: %s after %v: %d records, %d token revocations",
		strings.Join(revs, " "), time.Since(start).Round(time.Millisecond), f.Records, f.TokenRevocations)
	return f
}
