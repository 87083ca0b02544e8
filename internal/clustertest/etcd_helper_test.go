package clustertest

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// etcdReadyTimeout bounds the wait for a started member to join its
// cluster and serve clients.
const etcdReadyTimeout = 30 * time.Second

// etcdCloseTimeout bounds the close of a member, which waits up to etcd's
// request timeout (5 s plus two election timeouts) for open client
// streams.
const etcdCloseTimeout = 30 * time.Second

// etcdCluster is an embedded etcd cluster whose members all run in the
// test process on 127.0.0.1. Members can be stopped, killed and restarted
// from their data directories on the same ports.
type etcdCluster struct {
	tb      testing.TB
	token   string
	members []*etcdMember
	pki     *testPKI // set by withClientTLS: clients connect over TLS with a certificate
}

// etcdOption changes how startEtcdCluster sets a cluster up.
type etcdOption func(*etcdCluster)

// withClientTLS makes the members serve clients over TLS only (https
// client URLs), with pki's server certificate, and require a client
// certificate issued by pki's CA. The peer URLs stay plain http. Client
// then connects with pki's client certificate.
func withClientTLS(pki *testPKI) etcdOption {
	return func(c *etcdCluster) { c.pki = pki }
}

// etcdMember is one member: its fixed name, data directory and URLs, and
// the running server (nil while stopped).
type etcdMember struct {
	name      string
	dir       string
	peerURL   url.URL
	clientURL url.URL

	mu      sync.Mutex
	e       *embed.Etcd
	closing chan struct{} // closed when the last killed server has closed; nil if none
}

// startEtcdCluster starts a cluster of n members with data directories
// under tb.TempDir() and waits until every member serves clients. The
// members are closed when the test ends. Without options, clients connect
// over plain http.
func startEtcdCluster(tb testing.TB, n int, opts ...etcdOption) *etcdCluster {
	tb.Helper()
	c := &etcdCluster{tb: tb, token: fmt.Sprintf("clustertest-%d", time.Now().UnixNano())}
	for _, o := range opts {
		o(c)
	}
	clientScheme := "http"
	if c.pki != nil {
		clientScheme = "https"
	}
	base := tb.TempDir()
	for i := range n {
		name := fmt.Sprintf("m%d", i)
		c.members = append(c.members, &etcdMember{
			name:      name,
			dir:       filepath.Join(base, name),
			peerURL:   url.URL{Scheme: "http", Host: freeAddr(tb)},
			clientURL: url.URL{Scheme: clientScheme, Host: freeAddr(tb)},
		})
	}
	tb.Cleanup(func() {
		c.closeAll()
		if tb.Failed() {
			for i, m := range c.members {
				if t := etcdLogTail(c.logPath(i), 10); t != "" {
					tb.Logf("last lines of etcd member %s's log:\n%s", m.name, t)
				}
			}
		}
	})
	for i := range c.members {
		c.launch(i, embed.ClusterStateFlagNew)
	}
	c.waitReady(c.all()...)
	return c
}

// freeAddr returns a loopback address with a port that was free a moment
// ago: embedded etcd cannot listen on port 0, since its peers must know
// each other's URLs beforehand.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("finding a free port: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// all returns the indexes of every member.
func (c *etcdCluster) all() []int {
	idx := make([]int, len(c.members))
	for i := range idx {
		idx[i] = i
	}
	return idx
}

// initialCluster is the --initial-cluster value naming every member.
func (c *etcdCluster) initialCluster() string {
	parts := make([]string, len(c.members))
	for i, m := range c.members {
		parts[i] = m.name + "=" + m.peerURL.String()
	}
	return strings.Join(parts, ",")
}

// config is member i's configuration: quiet logs and short raft timeouts,
// and the client TLS settings of withClientTLS.
func (c *etcdCluster) config(i int, state string) *embed.Config {
	m := c.members[i]
	cfg := embed.NewConfig()
	cfg.Name = m.name
	cfg.Dir = m.dir
	cfg.ListenPeerUrls = []url.URL{m.peerURL}
	cfg.AdvertisePeerUrls = []url.URL{m.peerURL}
	cfg.ListenClientUrls = []url.URL{m.clientURL}
	cfg.AdvertiseClientUrls = []url.URL{m.clientURL}
	cfg.InitialCluster = c.initialCluster()
	cfg.InitialClusterToken = c.token
	cfg.ClusterState = state
	cfg.TickMs = 50
	cfg.ElectionMs = 500
	cfg.Logger = "zap"
	cfg.LogLevel = "error"
	// Even at level error, a closing member logs its listeners' errors.
	cfg.LogOutputs = []string{c.logPath(i)}
	if c.pki != nil {
		cfg.ClientTLSInfo = transport.TLSInfo{
			CertFile:       c.pki.ServerCert,
			KeyFile:        c.pki.ServerKey,
			TrustedCAFile:  c.pki.CAFile,
			ClientCertAuth: true,
		}
		// A rejected client handshake is logged at level warn; so is
		// every request slower than WarningUnaryRequestDuration, which
		// embed.NewConfig leaves at zero.
		cfg.LogLevel = "warn"
		cfg.WarningUnaryRequestDuration = embed.DefaultWarningUnaryRequestDuration
	}
	return cfg
}

// logPath is member i's log file, beside its data directory.
func (c *etcdCluster) logPath(i int) string {
	return c.members[i].dir + ".log"
}

// etcdLogTail returns the last lines of an etcd member's log, without the
// errors every closing member logs and without stack traces.
func etcdLogTail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	var keep []string
	for l := range strings.Lines(string(b)) {
		if strings.Contains(l, "setting up serving from embedded etcd failed") {
			continue
		}
		if i := strings.Index(l, `,"stacktrace":`); i >= 0 {
			l = l[:i] + "}"
		}
		keep = append(keep, strings.TrimRight(l, "\n"))
	}
	if len(keep) > lines {
		keep = keep[len(keep)-lines:]
	}
	return strings.Join(keep, "\n")
}

// launch starts member i without waiting for it to be ready.
func (c *etcdCluster) launch(i int, state string) {
	c.tb.Helper()
	m := c.members[i]
	if !m.waitClosed(etcdCloseTimeout) {
		c.tb.Fatalf("etcd member %s: its killed server did not close within %v", m.name, etcdCloseTimeout)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.e != nil {
		c.tb.Fatalf("etcd member %s is already running", m.name)
	}
	e, err := embed.StartEtcd(c.config(i, state))
	if err != nil {
		c.tb.Fatalf("starting etcd member %s (%s): %v", m.name, state, err)
	}
	m.e = e
}

// server returns member i's running server, or nil when it is stopped.
func (c *etcdCluster) server(i int) *embed.Etcd {
	m := c.members[i]
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.e
}

// waitReady waits until each member of idx serves clients.
func (c *etcdCluster) waitReady(idx ...int) {
	c.tb.Helper()
	deadline := time.After(etcdReadyTimeout)
	for _, i := range idx {
		e := c.server(i)
		if e == nil {
			c.tb.Fatalf("etcd member %s is not running", c.members[i].name)
		}
		select {
		case <-e.Server.ReadyNotify():
		case err := <-e.Err():
			c.tb.Fatalf("etcd member %s failed while starting: %v", c.members[i].name, err)
		case <-deadline:
			c.tb.Fatalf("etcd member %s was not ready within %v (a quorum of %d members must be running)",
				c.members[i].name, etcdReadyTimeout, len(c.members)/2+1)
		}
	}
}

// Endpoints returns the client URLs of every member, running or not.
func (c *etcdCluster) Endpoints() []string {
	eps := make([]string, len(c.members))
	for i, m := range c.members {
		eps[i] = m.clientURL.String()
	}
	return eps
}

// Leader waits until a running member is the raft leader and every running
// member agrees, and returns its index.
func (c *etcdCluster) Leader() int {
	c.tb.Helper()
	var last string
	deadline := time.Now().Add(etcdReadyTimeout)
	for time.Now().Before(deadline) {
		leader, state := c.leaderOnce()
		if leader >= 0 {
			return leader
		}
		last = state
		time.Sleep(20 * time.Millisecond)
	}
	c.tb.Fatalf("no etcd leader agreed on within %v; last seen: %s", etcdReadyTimeout, last)
	return -1
}

// leaderOnce returns the index of the running member that every running
// member names as leader, or -1 and what each member said.
func (c *etcdCluster) leaderOnce() (int, string) {
	var seen []string
	leaders := map[uint64]bool{}
	ids := map[uint64]int{}
	for i, m := range c.members {
		e := c.server(i)
		if e == nil {
			seen = append(seen, m.name+": stopped")
			continue
		}
		l := uint64(e.Server.Leader())
		seen = append(seen, fmt.Sprintf("%s: leader %x", m.name, l))
		leaders[l] = true
		ids[uint64(e.Server.MemberID())] = i
	}
	if len(leaders) == 1 {
		for l := range leaders {
			if i, ok := ids[l]; ok && l != 0 {
				return i, ""
			}
		}
	}
	return -1, strings.Join(seen, ", ")
}

// Stop closes member i gracefully: a leader hands its leadership over
// first.
func (c *etcdCluster) Stop(i int) {
	c.tb.Helper()
	e := c.take(i)
	if e == nil {
		c.tb.Fatalf("etcd member %s is not running", c.members[i].name)
	}
	e.Close()
}

// Kill stops member i abruptly, as a crash or a freeze would: its raft
// node stops at once, so a leader hands nothing over and the others elect
// a new leader after the election timeout. Its listeners are then closed
// in the background: closing waits up to etcd's request timeout (about 6
// s) for the client streams still open, which hang meanwhile, as they
// would on a frozen member. Restart waits for that.
func (c *etcdCluster) Kill(i int) {
	c.tb.Helper()
	m := c.members[i]
	e := c.take(i)
	if e == nil {
		c.tb.Fatalf("etcd member %s is not running", m.name)
	}
	e.Server.HardStop()
	closed := make(chan struct{})
	m.mu.Lock()
	m.closing = closed
	m.mu.Unlock()
	go func() {
		e.Close()
		close(closed)
	}()
}

// waitClosed waits, at most timeout, until the member's killed server has
// closed, and reports whether it did.
func (m *etcdMember) waitClosed(timeout time.Duration) bool {
	m.mu.Lock()
	closing := m.closing
	m.mu.Unlock()
	if closing == nil {
		return true
	}
	select {
	case <-closing:
		return true
	case <-time.After(timeout):
		return false
	}
}

// Restart starts the stopped member i again from its data directory, on
// the same name and ports, and waits until it serves clients.
func (c *etcdCluster) Restart(i int) {
	c.tb.Helper()
	c.launch(i, embed.ClusterStateFlagExisting)
	c.waitReady(i)
}

// StopAll kills every running member (see Kill): a graceful stop would
// try to hand the leadership to members that are stopping too, and wait
// for it.
func (c *etcdCluster) StopAll() {
	c.tb.Helper()
	for i := range c.members {
		if c.server(i) != nil {
			c.Kill(i)
		}
	}
}

// RestartAll starts every member again from its data directory and waits
// until each serves clients. The members are started before any is waited
// for, since none can be ready before a quorum runs.
func (c *etcdCluster) RestartAll() {
	c.tb.Helper()
	for i := range c.members {
		c.launch(i, embed.ClusterStateFlagExisting)
	}
	c.waitReady(c.all()...)
}

// closeAll kills every running member and waits until every member has
// closed, for t.Cleanup.
func (c *etcdCluster) closeAll() {
	c.StopAll()
	for _, m := range c.members {
		if !m.waitClosed(etcdCloseTimeout) {
			c.tb.Errorf("etcd member %s did not close within %v", m.name, etcdCloseTimeout)
		}
	}
}

// take marks member i stopped and returns its server, nil if it was not
// running.
func (c *etcdCluster) take(i int) *embed.Etcd {
	m := c.members[i]
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.e
	m.e = nil
	return e
}

// Client returns a client of every member, closed when the test ends. It
// presents the client certificate when the cluster was started
// withClientTLS.
func (c *etcdCluster) Client() *clientv3.Client {
	c.tb.Helper()
	var tlsCfg *tls.Config
	if c.pki != nil {
		tlsCfg = c.pki.ClientTLS(c.tb)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   c.Endpoints(),
		DialTimeout: 2 * time.Second,
		TLS:         tlsCfg,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		c.tb.Fatalf("etcd client: %v", err)
	}
	c.tb.Cleanup(func() { cli.Close() })
	return cli
}

// Revision returns the cluster's current revision.
func (c *etcdCluster) Revision(cli *clientv3.Client) int64 {
	c.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "\x00")
	if err != nil {
		c.tb.Fatalf("etcd revision: %v", err)
	}
	return resp.Header.Revision
}

// Compact compacts the key-value history at the current revision, waiting
// for the physical compaction, and returns that revision.
func (c *etcdCluster) Compact(cli *clientv3.Client) int64 {
	c.tb.Helper()
	rev := c.Revision(cli)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
		c.tb.Fatalf("etcd compaction at revision %d: %v", rev, err)
	}
	return rev
}
