package clustertest

import (
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// refusedNodeWatch is how long a node without a client certificate is
// watched to make sure it never becomes ready.
const refusedNodeWatch = 5 * time.Second

// Log lines the refused node leaves: its own report of a failed read from
// etcd, and the etcd member's report of a TLS handshake without a client
// certificate.
var (
	followFailedLine = regexp.MustCompile(`following etcd failed.*err=`)
	noClientCertLine = regexp.MustCompile(`rejected connection on client endpoint.*didn't provide a certificate`)
	// The etcd client's own warning, which names the cause its errors drop.
	clientCauseLine = regexp.MustCompile(`etcd client: .*(?i:certificate|tls|handshake)`)
	rejectedLine    = regexp.MustCompile(`rejected connection`)
)

// TestReplicationOverTLS: with etcd serving clients over TLS and requiring
// a client certificate, nodes a and b, which present one, replicate: a key
// created on a verifies on b, and a revocation on b is refused on a. A
// node c that trusts etcd's CA but has no client certificate never loads
// its replica: /readyz answers 503 throughout, verifications answer
// unavailable, it logs its failed reads from etcd, and etcd logs the
// handshakes it rejected for want of a client certificate.
func TestReplicationOverTLS(t *testing.T) {
	pki := newTestPKI(t)
	c := newTestClusterWith(t, 1, clusterOptions{PKI: pki}, "a", "b")
	a, b := c.node("a"), c.node("b")
	for _, ep := range c.etcd.Endpoints() {
		if !strings.HasPrefix(ep, "https://") {
			t.Fatalf("etcd client endpoint %s is not https", ep)
		}
	}
	for _, n := range c.nodes {
		expectReadyz(t, n, "ready", "ok")
	}

	k := a.mustCreateKey(t, "alice")
	acked := time.Now()
	b.waitVerify(t, k.Secret, "ok", propagationBound, "unknown")
	t.Logf("node b verified the key created on a %v after the acknowledgement", time.Since(acked).Round(time.Microsecond))

	r := a.mustCreateKey(t, "mallory")
	b.waitVerify(t, r.Secret, "ok", propagationBound, "unknown")
	b.mustRevokeKey(t, r.ID)
	acked = time.Now()
	b.expectVerify(t, r.Secret, "revoked", "a key right after its revocation on b was acknowledged")
	a.waitVerify(t, r.Secret, "revoked", propagationBound, "ok")
	t.Logf("node a refused the key revoked on b %v after the acknowledgement", time.Since(acked).Round(time.Microsecond))
	a.expectVerify(t, k.Secret, "ok", "the key not revoked")
	c.waitConverged(t)

	// The harness's own client goes through the same TLS listener.
	rev := c.etcd.Compact(c.etcd.Client())
	t.Logf("etcd compacted at revision %d over TLS with the client certificate", rev)

	// Every connection so far presented the client certificate.
	if l := fileLine(t, c.etcd.logPath(0), rejectedLine); l != "" {
		t.Fatalf("etcd rejected a connection before the node without a client certificate started: %s", l)
	}
	noCert := c.newNodeTLS(t, verifydBinary(t), "c", etcdTLSFiles{CAFile: pki.CAFile})
	noCert.start(t)
	expectNeverReady(t, noCert, refusedNodeWatch)
	code, status, err := noCert.verify(k.Secret)
	if err != nil || code != http.StatusServiceUnavailable || status != "unavailable" {
		t.Errorf("node c without a client certificate: verify a valid key: %d %q %v, want 503 unavailable", code, status, err)
	}
	t.Logf("node c logged: %s", waitFileLine(t, "node c's log", noCert.logPath, followFailedLine, 15*time.Second))
	t.Logf("node c logged: %s", waitFileLine(t, "node c's log", noCert.logPath, clientCauseLine, 15*time.Second))
	t.Logf("etcd logged: %s", waitFileLine(t, "etcd member m0's log", c.etcd.logPath(0), noClientCertLine, 15*time.Second))
	noCert.crash(t)

	// a and b were not disturbed by the refused node.
	for _, n := range c.nodes {
		expectReadyz(t, n, "ready", "ok")
	}
}

// expectNeverReady waits until the node's HTTP server answers, then polls
// GET /readyz for watch and fails the test on any answer other than 503
// saying that the replica has not been loaded, or when the process exits.
func expectNeverReady(t *testing.T, n *node, watch time.Duration) {
	t.Helper()
	waitUntil(t, nodeReadyTimeout, "node "+n.name+" to answer /readyz", func() (bool, string) {
		if gone, how := n.exited(); gone {
			t.Fatalf("node %s exited (%s); its log:\n%s", n.name, how, n.logTail(30))
		}
		_, _, err := n.readyz()
		if err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	start := time.Now()
	polls := 0
	for time.Since(start) < watch {
		if gone, how := n.exited(); gone {
			t.Fatalf("node %s exited (%s); its log:\n%s", n.name, how, n.logTail(30))
		}
		code, body, err := n.readyz()
		if err != nil {
			t.Fatalf("node %s: /readyz: %v", n.name, err)
		}
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "not been loaded") {
			t.Fatalf("node %s: /readyz answered %d %q after %v; want 503, replica not loaded",
				n.name, code, body, time.Since(start).Round(time.Millisecond))
		}
		polls++
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("node %s answered /readyz 503 (replica not loaded) %d times in %v", n.name, polls, watch)
}

// waitFileLine waits, at most timeout, until a line of the log file path
// (called what) matches re, and returns it.
func waitFileLine(t *testing.T, what, path string, re *regexp.Regexp, timeout time.Duration) string {
	t.Helper()
	var found string
	waitUntil(t, timeout, fmt.Sprintf("a line of %s matching %s", what, re), func() (bool, string) {
		found = fileLine(t, path, re)
		return found != "", "last lines:\n" + tail(path, 5)
	})
	return found
}

// fileLine returns the first line of the file path that matches re, or ""
// when none does.
func fileLine(t *testing.T, path string, re *regexp.Regexp) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for l := range strings.Lines(string(b)) {
		if re.MatchString(l) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}
