package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/verifyd/verifyd/internal/testpki"
)

const tlsAdminKey = "tls-e2e-admin-key-000001"

// launchDaemon runs verifyd with args (a data directory, a free loopback
// port and a short socket path are added) and env, and waits until
// healthy(addr) holds.
func launchDaemon(t *testing.T, healthy func(addr string) bool, args []string, env ...string) *daemon {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	sockDir, err := os.MkdirTemp("", "vd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	d := &daemon{t: t, addr: addr, socket: filepath.Join(sockDir, "verifyd.sock"), exited: make(chan struct{})}
	args = append([]string{"--data-dir", t.TempDir(), "--http-addr", addr, "--socket", d.socket}, args...)
	d.cmd = exec.Command(filepath.Join(binDir, "verifyd"), args...)
	d.cmd.Env = append(cleanEnv(), env...)
	outPipe, _ := d.cmd.StdoutPipe()
	errPipe, _ := d.cmd.StderrPipe()
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, p := range []struct {
		r   io.Reader
		buf *bytes.Buffer
	}{{outPipe, &d.stdout}, {errPipe, &d.stderr}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(p.r)
			for sc.Scan() {
				d.mu.Lock()
				p.buf.WriteString(sc.Text() + "\n")
				d.mu.Unlock()
			}
		}()
	}
	go func() { wg.Wait(); d.cmd.Wait(); close(d.exited) }()
	t.Cleanup(func() { d.kill() })
	for deadline := time.Now().Add(30 * time.Second); !healthy(addr); {
		select {
		case <-d.exited:
			t.Fatalf("verifyd exited during start:\n%s", d.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("verifyd did not become healthy in 30s:\n%s", d.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return d
}

// tlsClient returns an HTTPS client trusting ca and presenting pair (when
// it holds one).
func tlsClient(t *testing.T, ca *x509.Certificate, pair testpki.Pair) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	conf := &tls.Config{RootCAs: pool}
	if pair.CertPEM != nil {
		c, err := tls.X509KeyPair(pair.CertPEM, pair.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		conf.Certificates = []tls.Certificate{c}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: conf, DisableKeepAlives: true}}
}

// servedName returns the Common Name of the certificate the daemon at
// addr presents to a new connection, or "" when none can be had.
func servedName(ca *x509.Certificate, addr string) string {
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		return ""
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// ctlTLS runs verifyctl with args and env and returns its standard
// output, and its standard error appended, and its exit status.
func ctlTLS(t *testing.T, env []string, args ...string) (stdout, all string, code int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "verifyctl"), args...)
	cmd.Env = append(cleanEnv(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("verifyctl %v: %v", args, err)
	}
	return out.String(), out.String() + errOut.String(), cmd.ProcessState.ExitCode()
}

// TestTLSEndToEnd serves HTTPS with client certificates and per-group
// allowlists from the daemon binary, drives its admin API with verifyctl
// over TLS, replaces the certificate on disk (by a file change and by
// SIGHUP, with a broken pair in between), and refuses plain HTTP cleanly.
func TestTLSEndToEnd(t *testing.T) {
	ca := testpki.NewCA(t, "e2e-ca")
	dir := t.TempDir()
	certFile, keyFile := ca.Server(t, "verifyd-1").Write(t, dir, "server")
	caFile := ca.CertFile(t)
	cfg := filepath.Join(dir, "verifyd.yaml")
	replaceFile(t, cfg, []byte(fmt.Sprintf(`http:
  tls:
    cert_file: %s
    key_file: %s
    client_ca_file: %s
    client_auth: request
    check_interval: 100ms
    client_names:
      admin: [ops-console]
      verify: ["broker-*"]
`, certFile, keyFile, caFile)))
	anon := tlsClient(t, ca.Cert, testpki.Pair{})
	d := launchDaemon(t, func(addr string) bool {
		resp, err := anon.Get("https://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, []string{"--config", cfg}, "VERIFYD_ADMIN_KEY="+tlsAdminKey)
	base := "https://" + d.addr

	// verifyctl over TLS, with the ops-console certificate: flags, or the
	// environment; a bare host:port then means https.
	ops := ca.Client(t, "ops-console")
	opsCert, opsKey := ops.Write(t, dir, "ops")
	broker := ca.Client(t, "broker-1")
	brokerCert, brokerKey := broker.Write(t, dir, "broker")
	adminEnv := []string{"VERIFYD_ADMIN_KEY=" + tlsAdminKey}
	out, _, code := ctlTLS(t, adminEnv, "--addr", base, "--cacert", caFile, "--cert", opsCert, "--cert-key", opsKey,
		"keys", "create", "--subject", "alice", "--scope", "tool:data:*", "-o", "json")
	var alice keyAnswer
	if code != 0 || json.Unmarshal([]byte(out), &alice) != nil || alice.Secret == "" {
		t.Fatalf("keys create over TLS: exit %d: %s", code, out)
	}
	envTLS := append([]string{"VERIFYD_ADDR=" + d.addr, "VERIFYD_CACERT=" + caFile, "VERIFYD_CERT=" + opsCert, "VERIFYD_CERT_KEY=" + opsKey}, adminEnv...)
	if out, _, code := ctlTLS(t, envTLS, "keys", "list"); code != 0 || !strings.Contains(out, alice.ID) {
		t.Errorf("keys list with the environment: exit %d: %s", code, out)
	}
	// The broker's certificate is not on the admin list; no certificate at all neither.
	for name, args := range map[string][]string{
		"broker certificate": {"--cert", brokerCert, "--cert-key", brokerKey},
		"no certificate":     {},
	} {
		_, out, code := ctlTLS(t, adminEnv, append(append([]string{"--addr", base, "--cacert", caFile}, args...), "keys", "list")...)
		if code != 1 || !strings.Contains(out, "client_names.admin") {
			t.Errorf("keys list with %s: exit %d: %s", name, code, out)
		}
	}
	// Without the CA bundle the daemon's certificate is not trusted.
	if _, out, code := ctlTLS(t, adminEnv, "--addr", base, "keys", "list"); code != 3 || !strings.Contains(out, "certificate") {
		t.Errorf("keys list without --cacert: exit %d: %s", code, out)
	}
	if _, out, code := ctlTLS(t, adminEnv, "--addr", "http://"+d.addr, "--cacert", caFile, "keys", "list"); code != 2 || !strings.Contains(out, "https://") {
		t.Errorf("TLS flags with an http:// address: exit %d: %s", code, out)
	}
	// Plain HTTP to the TLS port: a clean 400 that says why.
	if _, out, code := ctlTLS(t, adminEnv, "--addr", "http://"+d.addr, "keys", "list"); code != 2 || !strings.Contains(out, "HTTPS") {
		t.Errorf("plain HTTP: exit %d: %s", code, out)
	}

	// The verify group: the broker is on its list, ops-console is not.
	verify := func(c *http.Client) int {
		t.Helper()
		resp, err := c.Post(base+"/v1/verify", "application/json", strings.NewReader(`{"token":"`+alice.Secret+`","scope":"tool:data:read"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := verify(tlsClient(t, ca.Cert, broker)); got != 200 {
		t.Errorf("verify with the broker certificate: %d", got)
	}
	for name, c := range map[string]*http.Client{"ops-console": tlsClient(t, ca.Cert, ops), "none": anon} {
		if got := verify(c); got != 403 {
			t.Errorf("verify with certificate %s: %d", name, got)
		}
	}
	if _, out, code := ctlTLS(t, nil, "--addr", base, "--cacert", caFile, "--cert", brokerCert, "--cert-key", brokerKey,
		"verify", alice.Secret, "--scope", "tool:data:read"); code != 0 {
		t.Errorf("verifyctl verify over TLS: exit %d: %s", code, out)
	}

	// A new certificate, renamed into place, is picked up at the next check.
	if got := servedName(ca.Cert, d.addr); got != "verifyd-1" {
		t.Fatalf("serving %q", got)
	}
	ca.Server(t, "verifyd-2").Write(t, dir, "server")
	waitFor(t, "the reload of verifyd-2", func() bool { return servedName(ca.Cert, d.addr) == "verifyd-2" })
	// A broken pair (a new certificate with the old key) is refused and
	// logged; the certificate in force goes on serving.
	next := ca.Server(t, "verifyd-3")
	replaceFile(t, certFile, next.CertPEM)
	waitFor(t, "the failed reload", func() bool { return strings.Contains(d.output(), "TLS reload failed") })
	if got := servedName(ca.Cert, d.addr); got != "verifyd-2" {
		t.Errorf("after a broken pair, serving %q", got)
	}
	// The key arrives: the pair loads at the next check.
	replaceFile(t, keyFile, next.KeyPEM)
	waitFor(t, "the reload of verifyd-3", func() bool { return servedName(ca.Cert, d.addr) == "verifyd-3" })
	resp, err := tlsClient(t, ca.Cert, testpki.Pair{}).Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, series := range []string{`verifyd_tls_reloads_total{result="changed"}`, `verifyd_tls_reloads_total{result="error"}`, "verifyd_tls_certificate_not_after_seconds"} {
		if !strings.Contains(string(metrics), series) {
			t.Errorf("/metrics lacks %s", series)
		}
	}
	if strings.Contains(d.output(), tlsAdminKey) || strings.Contains(d.output(), alice.Secret) {
		t.Error("the log holds a secret")
	}
}

// TestTLSReloadOnSIGHUP: with file checks off, SIGHUP reloads the
// certificate.
func TestTLSReloadOnSIGHUP(t *testing.T) {
	ca := testpki.NewCA(t, "e2e-ca")
	dir := t.TempDir()
	certFile, keyFile := ca.Server(t, "verifyd-1").Write(t, dir, "server")
	cfg := filepath.Join(dir, "verifyd.yaml")
	replaceFile(t, cfg, []byte(fmt.Sprintf("http:\n  tls: {cert_file: %s, key_file: %s, check_interval: -1s}\n", certFile, keyFile)))
	d := launchDaemon(t, func(addr string) bool { return servedName(ca.Cert, addr) == "verifyd-1" }, []string{"--config", cfg}, "VERIFYD_ADMIN_KEY="+tlsAdminKey)
	ca.Server(t, "verifyd-2").Write(t, dir, "server")
	d.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "the reload of verifyd-2 on SIGHUP", func() bool { return servedName(ca.Cert, d.addr) == "verifyd-2" })
	// The reload is logged once the new certificate is in force.
	waitFor(t, "the log of the reload on SIGHUP", func() bool { return strings.Contains(d.output(), "trigger=sighup") })
}

// TestTLSConfigErrorsStopTheDaemon checks that TLS files that cannot be
// loaded, and contradictory settings, stop verifyd at start with exit
// status 2.
func TestTLSConfigErrorsStopTheDaemon(t *testing.T) {
	ca := testpki.NewCA(t, "e2e-ca")
	dir := t.TempDir()
	certFile, keyFile := ca.Server(t, "verifyd").Write(t, dir, "server")
	_, otherKey := ca.Server(t, "other").Write(t, dir, "other")
	for name, tc := range map[string]struct{ yaml, want string }{
		"missing key file":   {fmt.Sprintf("http:\n  tls: {cert_file: %s, key_file: %s/none.pem}\n", certFile, dir), "none.pem"},
		"mismatched key":     {fmt.Sprintf("http:\n  tls: {cert_file: %s, key_file: %s}\n", certFile, otherKey), "private key does not match"},
		"names without mTLS": {fmt.Sprintf("http:\n  tls: {cert_file: %s, key_file: %s, client_names: {admin: [ops]}}\n", certFile, keyFile), "client_names needs client certificates"},
		"unknown group":      {fmt.Sprintf("http:\n  tls: {cert_file: %s, key_file: %s, client_auth: require, client_ca_file: %s, client_names: {pats: [x]}}\n", certFile, keyFile, ca.CertFile(t)), `route group "pats"`},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "verifyd.yaml")
			replaceFile(t, cfg, []byte(tc.yaml))
			code, out := runOnce(t, []string{"VERIFYD_ADMIN_KEY=" + tlsAdminKey}, "--data-dir", t.TempDir(), "--config", cfg, "--socket", "off", "--http-addr", "127.0.0.1:0")
			if code != exitConfig || !strings.Contains(out, tc.want) {
				t.Errorf("exit %d, want %d with %q:\n%s", code, exitConfig, tc.want, out)
			}
		})
	}
}

// replaceFile writes data to path through a temporary file renamed over
// it, as deploy tools replace certificates and configurations.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
