package clustertest

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// propagationBound is how long a revocation may take to reach the other
// nodes: a bound for correctness (a revocation that never arrives), far
// above the figures measured on loopback.
const propagationBound = 10 * time.Second

// TestReplicatedCreateAndVerify: a key created on a verifies on a as soon
// as the creation is acknowledged, and on b and c once they applied it.
func TestReplicatedCreateAndVerify(t *testing.T) {
	c := newTestCluster(t, 3, "a", "b", "c")
	a, b, cn := c.node("a"), c.node("b"), c.node("c")
	for _, n := range c.nodes {
		expectReadyz(t, n, "ready", "ok")
	}

	k := a.mustCreateKey(t, "alice")
	acked := time.Now()
	a.expectVerify(t, k.Secret, "ok", "a key right after its creation was acknowledged")
	for _, n := range []*node{b, cn} {
		n.waitVerify(t, k.Secret, "ok", propagationBound, "unknown")
		t.Logf("node %s verified the key %v after the acknowledgement on a", n.name, time.Since(acked).Round(time.Microsecond))
	}

	for _, n := range c.nodes {
		waitUntil(t, 15*time.Second, "node "+n.name+" to list a, b and c in state ok", func() (bool, string) {
			st, err := n.clusterStatus()
			if err != nil {
				return false, err.Error()
			}
			if st.Node != n.name || st.State != "ok" {
				return false, fmt.Sprintf("%+v", st)
			}
			var ok []string
			for _, m := range st.Nodes {
				if m.State == "ok" {
					ok = append(ok, m.Node)
				}
			}
			slices.Sort(ok)
			return slices.Equal(ok, []string{"a", "b", "c"}), fmt.Sprintf("%+v", st)
		})
	}
	c.waitConverged(t)
	expectMembers(t, a, "/v1/admin/cluster",
		"node", "state", "revision", "latest_revision", "lag_seconds", "age_seconds", "watch_restarts", "resyncs", "nodes")
	expectMembers(t, a, "/v1/admin/cluster/fingerprint",
		"node", "revision", "fingerprint", "records", "token_revocations", "subject_revocations", "requests")
}

// expectMembers checks that the JSON object an admin GET of path answers
// has every one of names.
func expectMembers(t *testing.T, n *node, path string, names ...string) {
	t.Helper()
	var obj map[string]json.RawMessage
	if err := n.getJSON(path, &obj); err != nil {
		t.Fatal(err)
	}
	var missing, have []string
	for _, name := range names {
		if _, ok := obj[name]; !ok {
			missing = append(missing, name)
		}
	}
	for name := range obj {
		have = append(have, name)
	}
	slices.Sort(have)
	if len(missing) > 0 {
		t.Errorf("GET %s answers no %s (it has %s)", path, strings.Join(missing, ", "), strings.Join(have, ", "))
	}
}

// TestRevocationPropagation: keys created on a and revoked on b are
// refused on b by the first verification after the acknowledgement, and on
// a and c within propagationBound; the propagation times are logged.
func TestRevocationPropagation(t *testing.T) {
	count := 1000
	if testing.Short() {
		count = 100
	}
	c := newTestCluster(t, 3, "a", "b", "c")
	a, b, cn := c.node("a"), c.node("b"), c.node("c")

	start := time.Now()
	keys := createKeys(t, a, "rev", count, 8)
	t.Logf("%d keys created on a in %v", count, time.Since(start).Round(time.Millisecond))
	c.waitConverged(t)
	for _, n := range c.nodes {
		expectAll(t, n, keys, "ok")
	}

	fromAck := make([]time.Duration, 0, count)
	fromSend := make([]time.Duration, 0, count)
	revokeCalls := make([]time.Duration, 0, count)
	start = time.Now()
	for i, k := range keys {
		sent := time.Now()
		b.mustRevokeKey(t, k.ID)
		acked := time.Now()
		b.expectVerify(t, k.Secret, "revoked", fmt.Sprintf("key %d right after its revocation was acknowledged", i))
		last := waitRefused(t, k.Secret, propagationBound, a, cn)
		fromAck = append(fromAck, max(0, last.Sub(acked)))
		fromSend = append(fromSend, last.Sub(sent))
		revokeCalls = append(revokeCalls, acked.Sub(sent))
	}
	t.Logf("%d revocations on b in %v", count, time.Since(start).Round(time.Millisecond))
	rep := propagationReport{
		Test:        t.Name(),
		Revocations: count,
		FromAck:     summarize(fromAck),
		FromSend:    summarize(fromSend),
		RevokeCall:  summarize(revokeCalls),
	}
	t.Logf("revocation call on b:                     %s", rep.RevokeCall)
	t.Logf("refused on a and c, from b's ack:         %s", rep.FromAck)
	t.Logf("refused on a and c, from the call's send: %s", rep.FromSend)
	writeReport(t, rep)
	c.waitConverged(t)
}

// TestEtcdLeaderKilledDuringWrites: creates on a and b go on while the
// etcd leader is killed and restarted; every acknowledged key then
// verifies on every node and the replicas agree.
func TestEtcdLeaderKilledDuringWrites(t *testing.T) {
	c := newTestCluster(t, 3, "a", "b", "c")
	stop := make(chan struct{})
	results := make([]*streamResult, 2)
	var wg sync.WaitGroup
	for i, n := range []*node{c.node("a"), c.node("b")} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = writeStream(n, stop, 3000, 0)
		}()
	}

	time.Sleep(time.Second)
	leader := c.etcd.Leader()
	killed := time.Now()
	c.etcd.Kill(leader)
	next := c.etcd.Leader()
	t.Logf("etcd leader m%d killed; m%d elected %v later", leader, next, time.Since(killed).Round(time.Millisecond))
	time.Sleep(time.Second)
	c.etcd.Restart(leader)
	t.Logf("m%d restarted and ready %v after it was killed", leader, time.Since(killed).Round(time.Millisecond))
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()

	for i, r := range results {
		t.Logf("writes on %s: %s", c.nodes[i].name, r)
		for _, u := range r.unexpected {
			t.Errorf("writes on %s: unexpected answer: %s", c.nodes[i].name, u)
		}
		if len(r.created) == 0 {
			t.Errorf("writes on %s: no create was acknowledged", c.nodes[i].name)
		}
	}
	c.waitConverged(t)
	for _, n := range c.nodes {
		for _, r := range results {
			expectAll(t, n, r.created, "ok")
		}
	}
}

// TestNodeCatchUpAfterCompaction: c is stopped while 500 changes are made
// on a and etcd's history is compacted past them; restarted, c resyncs and
// then holds the same state as a and b.
func TestNodeCatchUpAfterCompaction(t *testing.T) {
	c := newTestCluster(t, 3, "a", "b", "c")
	a, cn := c.node("a"), c.node("c")
	before := a.mustCreateKey(t, "before")
	cn.waitVerify(t, before.Secret, "ok", propagationBound, "unknown")
	cn.stop(t)

	keys := createKeys(t, a, "compact", 300, 4)
	revoked := keys[:200]
	revokeKeys(t, a, revoked, 4)
	cli := c.etcd.Client()
	rev := c.etcd.Compact(cli)
	t.Logf("500 changes made on a while c was stopped; etcd compacted at revision %d", rev)

	cn.restart(t)
	c.waitConverged(t)
	st, err := cn.clusterStatus()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("c after its restart: %+v", st)
	if st.Resyncs < 1 {
		t.Errorf("c caught up past a compaction without a resync: resyncs %d", st.Resyncs)
	}
	expectAll(t, cn, revoked, "revoked")
	expectAll(t, cn, append(keys[200:], before), "ok")
}

// TestEtcdDownFailStatic: with every etcd member stopped, nodes keep
// verifying from their replicas and say degraded, and admin writes fail
// with 503; once etcd is back, the nodes return to ok and replicate again.
func TestEtcdDownFailStatic(t *testing.T) {
	c := newTestCluster(t, 3, "a", "b", "c")
	a := c.node("a")
	valid := a.mustCreateKey(t, "valid")
	revoked := a.mustCreateKey(t, "revoked")
	a.mustRevokeKey(t, revoked.ID)
	c.waitConverged(t)

	c.etcd.StopAll()
	down := time.Now()
	for _, n := range c.nodes {
		waitReadyz(t, n, "degraded", "degraded")
		t.Logf("node %s degraded %v after etcd stopped", n.name, time.Since(down).Round(time.Millisecond))
		n.expectVerify(t, valid.Secret, "ok", "a valid key while etcd is down")
		n.expectVerify(t, revoked.Secret, "revoked", "a revoked key while etcd is down")
	}
	sent := time.Now()
	_, code, body, err := a.createKey("during-outage")
	if err != nil || code != http.StatusServiceUnavailable || errorCode(body) != "CLUSTER_UNAVAILABLE" {
		t.Errorf("create on a while etcd is down: %d %s %v, want 503 CLUSTER_UNAVAILABLE", code, body, err)
	}
	t.Logf("create on a while etcd is down answered %d after %v", code, time.Since(sent).Round(time.Millisecond))
	for _, n := range c.nodes {
		expectReadyz(t, n, "degraded", "degraded")
	}

	c.etcd.RestartAll()
	up := time.Now()
	for _, n := range c.nodes {
		waitReadyz(t, n, "ready", "ok")
		t.Logf("node %s ok %v after etcd was ready again", n.name, time.Since(up).Round(time.Millisecond))
	}
	k := a.mustCreateKey(t, "after-outage")
	for _, n := range c.nodes {
		n.waitVerify(t, k.Secret, "ok", propagationBound, "unknown")
		n.expectVerify(t, valid.Secret, "ok", "a valid key after the outage")
		n.expectVerify(t, revoked.Secret, "revoked", "a revoked key after the outage")
	}
	c.waitConverged(t)
}

// TestKillNineDuringApply: c is killed with SIGKILL three times while a
// takes creates and revocations; after its last restart, c holds a's state.
func TestKillNineDuringApply(t *testing.T) {
	c := newTestCluster(t, 3, "a", "b", "c")
	a, cn := c.node("a"), c.node("c")
	stop := make(chan struct{})
	var res *streamResult
	done := make(chan struct{})
	go func() {
		defer close(done)
		res = writeStream(a, stop, 5000, 3)
	}()
	for i := range 3 {
		time.Sleep(time.Duration(200+rand.IntN(400)) * time.Millisecond)
		cn.crash(t)
		cn.restart(t)
		t.Logf("kill -9 %d of c done, c ready again", i+1)
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	<-done
	t.Logf("writes on a: %s", res)
	for _, u := range res.unexpected {
		t.Errorf("writes on a: unexpected answer: %s", u)
	}
	c.waitConverged(t)
	st, err := cn.clusterStatus()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("c after its last restart: %+v", st)
	expectAll(t, cn, res.revoked, "revoked")
	expectAll(t, cn, res.live(), "ok")
}

// expectReadyz checks that GET /readyz answers 200 with first line first
// and a cluster line of the node in state.
func expectReadyz(t *testing.T, n *node, first, state string) {
	t.Helper()
	code, body, err := n.readyz()
	if err != nil || code != http.StatusOK {
		t.Fatalf("node %s: /readyz %d %q %v, want 200", n.name, code, body, err)
	}
	if got, why := readyzSays(n.name, body, first, state); !got {
		t.Fatalf("node %s: /readyz %s: %q", n.name, why, body)
	}
}

// waitReadyz polls GET /readyz until it says first and state; every
// answer meanwhile must be 200.
func waitReadyz(t *testing.T, n *node, first, state string) {
	t.Helper()
	waitUntil(t, 30*time.Second, fmt.Sprintf("node %s's /readyz to say %s, state=%s", n.name, first, state), func() (bool, string) {
		code, body, err := n.readyz()
		if err != nil {
			return false, err.Error()
		}
		if code != http.StatusOK {
			t.Fatalf("node %s: /readyz answered %d %q; it must stay 200", n.name, code, body)
		}
		ok, why := readyzSays(n.name, body, first, state)
		return ok, why + ": " + body
	})
}

// readyzSays reports whether a /readyz body has first as its first line
// and a line "cluster: node=<name> state=<state> ...".
func readyzSays(name, body, first, state string) (bool, string) {
	lines := strings.Split(strings.TrimSpace(body), "\n")
	if lines[0] != first {
		return false, fmt.Sprintf("first line %q, want %q", lines[0], first)
	}
	for _, l := range lines[1:] {
		rest, ok := strings.CutPrefix(l, "cluster: ")
		if !ok {
			continue
		}
		fields := map[string]string{}
		for _, f := range strings.Fields(rest) {
			k, v, _ := strings.Cut(f, "=")
			fields[k] = v
		}
		if fields["node"] != name || fields["state"] != state {
			return false, fmt.Sprintf("cluster line %q, want node=%s state=%s", l, name, state)
		}
		if _, ok := fields["revision"]; !ok {
			return false, "cluster line without revision"
		}
		return true, ""
	}
	return false, "no cluster line"
}

// createKeys creates count keys on n with workers concurrent callers and
// returns them in creation order of their index.
func createKeys(tb testing.TB, n *node, prefix string, count, workers int) []key {
	tb.Helper()
	keys := make([]key, count)
	err := parallel(count, workers, func(i int) error {
		k, code, b, err := n.createKey(fmt.Sprintf("%s-%d", prefix, i))
		if err != nil || code != http.StatusCreated {
			return fmt.Errorf("node %s: create key %d: %d %s %v", n.name, i, code, b, err)
		}
		keys[i] = k
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return keys
}

// revokeKeys revokes keys on n with workers concurrent callers.
func revokeKeys(tb testing.TB, n *node, keys []key, workers int) {
	tb.Helper()
	err := parallel(len(keys), workers, func(i int) error {
		code, b, err := n.revokeKey(keys[i].ID)
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("node %s: revoke key %s: %d %s %v", n.name, keys[i].ID, code, b, err)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// expectAll checks that n answers every key with status want.
func expectAll(tb testing.TB, n *node, keys []key, want string) {
	tb.Helper()
	err := parallel(len(keys), 4, func(i int) error {
		code, status, err := n.verify(keys[i].Secret)
		if err != nil || status != want {
			return fmt.Errorf("node %s: key %s (%d of %d): %d %q %v, want %q", n.name, keys[i].ID, i, len(keys), code, status, err, want)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// parallel runs fn for 0..count-1 on workers goroutines and returns the
// first error; after an error no new index is started.
func parallel(count, workers int, fn func(i int) error) error {
	var (
		mu    sync.Mutex
		next  int
		first error
		wg    sync.WaitGroup
	)
	for range min(workers, count) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if first != nil || next == count {
					mu.Unlock()
					return
				}
				i := next
				next++
				mu.Unlock()
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// waitRefused polls every node in a tight loop until each has answered
// token "revoked", and returns when the last one did. An answer other
// than "ok" or "revoked" fails the test.
func waitRefused(tb testing.TB, token string, timeout time.Duration, nodes ...*node) time.Time {
	tb.Helper()
	pending := slices.Clone(nodes)
	var last time.Time
	var state []string
	deadline := time.Now().Add(timeout)
	for len(pending) > 0 {
		if time.Now().After(deadline) {
			tb.Fatalf("a revocation was not refused within %v; last answers: %s", timeout, strings.Join(state, ", "))
		}
		state = state[:0]
		for i := 0; i < len(pending); i++ {
			n := pending[i]
			code, status, err := n.verify(token)
			switch {
			case err == nil && status == "revoked":
				last = time.Now()
				pending = slices.Delete(pending, i, i+1)
				i--
			case err == nil && status == "ok":
				state = append(state, n.name+": ok")
			case err != nil:
				state = append(state, n.name+": "+err.Error())
			default:
				tb.Fatalf("node %s answered a key being revoked with %d %q", n.name, code, status)
			}
		}
	}
	return last
}

// streamResult is what a stream of writes got acknowledged, and how many
// writes were not.
type streamResult struct {
	created    []key           // acknowledged creates, revoked or not
	revoked    []key           // acknowledged revocations
	unsure     map[string]bool // ids whose revocation was not acknowledged
	failures   map[string]int  // unacknowledged writes by answer
	unexpected []string        // answers that are neither an acknowledgement nor a 503 or 409
	maxCall    time.Duration
	calls      int
}

// live returns the created keys whose revocation was neither acknowledged
// nor attempted.
func (r *streamResult) live() []key {
	gone := map[string]bool{}
	for _, k := range r.revoked {
		gone[k.ID] = true
	}
	var out []key
	for _, k := range r.created {
		if !gone[k.ID] && !r.unsure[k.ID] {
			out = append(out, k)
		}
	}
	return out
}

// String summarizes the stream for the test log.
func (r *streamResult) String() string {
	return fmt.Sprintf("%d calls, %d creates and %d revocations acknowledged, not acknowledged: %v, longest call %v",
		r.calls, len(r.created), len(r.revoked), r.failures, r.maxCall.Round(time.Millisecond))
}

// writeStream makes writes on n one after the other until stop is closed
// or maxOps calls were made: creates and, when revokeEvery > 0, a
// revocation of the last created key after every revokeEvery-1 creates.
func writeStream(n *node, stop <-chan struct{}, maxOps, revokeEvery int) *streamResult {
	r := &streamResult{unsure: map[string]bool{}, failures: map[string]int{}}
	deadline := time.Now().Add(time.Minute)
	for i := 0; i < maxOps && time.Now().Before(deadline); i++ {
		select {
		case <-stop:
			return r
		default:
		}
		start := time.Now()
		var code int
		var body []byte
		var err error
		revoke := revokeEvery > 0 && i%revokeEvery == revokeEvery-1 && len(r.created) > 0
		if revoke {
			k := r.created[len(r.created)-1]
			code, body, err = n.revokeKey(k.ID)
			if err == nil && code == http.StatusOK {
				r.revoked = append(r.revoked, k)
			} else {
				r.unsure[k.ID] = true
			}
		} else {
			var k key
			k, code, body, err = n.createKey(fmt.Sprintf("%s-stream-%d", n.name, i))
			if err == nil && code == http.StatusCreated {
				r.created = append(r.created, k)
			}
		}
		r.calls++
		r.maxCall = max(r.maxCall, time.Since(start))
		switch {
		case err == nil && (code == http.StatusOK || code == http.StatusCreated):
		case err != nil:
			r.failures["no answer"]++
			time.Sleep(10 * time.Millisecond)
		case code == http.StatusServiceUnavailable || code == http.StatusConflict:
			// 503: not committed or not applied in time; 409 CONFLICT: the
			// state the write replaces kept changing. Neither is
			// acknowledged.
			r.failures[fmt.Sprintf("%d %s", code, errorCode(body))]++
			time.Sleep(10 * time.Millisecond)
		default:
			r.unexpected = append(r.unexpected, fmt.Sprintf("%d %s", code, body))
		}
	}
	return r
}

// stats summarizes durations, in milliseconds.
type stats struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean_ms"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
}

// String shows the statistics in one line.
func (s stats) String() string {
	return fmt.Sprintf("n=%d mean=%.3fms p50=%.3fms p90=%.3fms p99=%.3fms max=%.3fms", s.N, s.Mean, s.P50, s.P90, s.P99, s.Max)
}

// summarize returns the statistics of ds.
func summarize(ds []time.Duration) stats {
	if len(ds) == 0 {
		return stats{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return stats{
		N:    len(s),
		Mean: ms(sum / time.Duration(len(s))),
		P50:  ms(percentile(s, 0.50)),
		P90:  ms(percentile(s, 0.90)),
		P99:  ms(percentile(s, 0.99)),
		Max:  ms(s[len(s)-1]),
	}
}

// percentile returns the q-quantile of sorted (nearest rank).
func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(float64(len(sorted))*q)) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// propagationReport is what VERIFYD_CLUSTER_REPORT receives.
type propagationReport struct {
	Test        string    `json:"test"`
	Revocations int       `json:"revocations"`
	FromAck     stats     `json:"refused_on_other_nodes_after_ack"`
	FromSend    stats     `json:"refused_on_other_nodes_after_send"`
	RevokeCall  stats     `json:"revoke_call"`
	At          time.Time `json:"at"`
}

// writeReport writes rep as JSON to the file VERIFYD_CLUSTER_REPORT names,
// if any.
func writeReport(t *testing.T, rep propagationReport) {
	t.Helper()
	path := os.Getenv("VERIFYD_CLUSTER_REPORT")
	if path == "" {
		return
	}
	rep.At = time.Now().UTC()
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatalf("writing the report: %v", err)
	}
	t.Logf("figures written to %s", path)
}
