package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// degradedAfter is how long a replica may go unconfirmed before it
// reports itself degraded.
const degradedAfter = 3 * progressInterval

// States of a node.
const (
	StateOK       = "ok"       // following etcd, confirmed current
	StateDegraded = "degraded" // serving from its replica, etcd not confirmed lately
	StateStale    = "stale"    // failing closed: unconfirmed for longer than max_staleness
	StateSyncing  = "syncing"  // never synced: the replica is empty
)

// Status is one node's view of its replica.
type Status struct {
	Node          string    `json:"node"`
	State         string    `json:"state"`
	Revision      uint64    `json:"revision"`
	CommitTime    time.Time `json:"commit_time,omitzero"` // of the last change applied
	LagSeconds    float64   `json:"lag_seconds"`          // its commit-to-apply delay
	AgeSeconds    float64   `json:"age_seconds"`          // since the replica was last confirmed current
	WatchRestarts int64     `json:"watch_restarts"`
	Resyncs       int64     `json:"resyncs"`
	LastError     string    `json:"last_error,omitempty"`
	ReportedAt    time.Time `json:"reported_at,omitzero"`
}

// Status returns the node's state now.
func (n *Node) Status() Status {
	now := time.Now()
	pos := n.store.ReplicaPos()
	st := Status{
		Node:          n.cfg.Node,
		Revision:      pos.Revision,
		CommitTime:    pos.CommitTime,
		LagSeconds:    time.Duration(n.lagNanos.Load()).Seconds(),
		AgeSeconds:    n.age(now).Seconds(),
		WatchRestarts: n.watchRestarts.Load(),
		Resyncs:       n.resyncs.Load(),
		ReportedAt:    now.UTC(),
	}
	switch {
	case !n.synced.Load():
		st.State = StateSyncing
	case n.failClosed.Load():
		st.State = StateStale
	case n.age(now) > degradedAfter:
		st.State = StateDegraded
	default:
		st.State = StateOK
	}
	if e := n.lastErr.Load(); e != nil && st.State != StateOK {
		st.LastError = *e
	}
	return st
}

// age is how long ago the replica was last confirmed current; since the
// start when it never was.
func (n *Node) age(now time.Time) time.Duration {
	return now.Sub(time.Unix(0, n.lastCurrent.Load()))
}

func (n *Node) noteCurrent() {
	n.lastCurrent.Store(time.Now().UnixNano())
}

func (n *Node) noteErr(err error) {
	s := err.Error()
	n.lastErr.Store(&s)
}

// Ready reports whether the node may answer: an error when it has never
// synced, or fails closed.
func (n *Node) Ready() error {
	if n.serving.Load() {
		return nil
	}
	if !n.synced.Load() {
		return fmt.Errorf("cluster: the replica has not been loaded from etcd yet")
	}
	return fmt.Errorf("cluster: the replica is %.1fs behind etcd, more than max_staleness %v: failing closed", n.age(time.Now()).Seconds(), n.cfg.MaxStaleness)
}

// Summary is the one-line cluster state /readyz shows.
func (n *Node) Summary() (degraded bool, line string) {
	st := n.Status()
	line = fmt.Sprintf("cluster: node=%s state=%s revision=%d age=%.3fs lag=%.3fs", st.Node, st.State, st.Revision, st.AgeSeconds, st.LagSeconds)
	if st.LastError != "" {
		line += " last_error=" + fmt.Sprintf("%q", st.LastError)
	}
	return st.State != StateOK, line
}

// watchStaleness re-evaluates the node's state four times per progress
// interval, so that failing closed follows the replica's age.
func (n *Node) watchStaleness(ctx context.Context) {
	t := time.NewTicker(progressInterval / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n.updateState()
		}
	}
}

// updateState decides whether the node may answer — its replica has been
// loaded and, with MaxStaleness set, confirmed current recently enough —
// and tells OnState when that changes. It runs after the first sync as
// well as on the ticker, so that a node answers as soon as it has loaded
// its replica.
func (n *Node) updateState() {
	n.stateMu.Lock()
	defer n.stateMu.Unlock()
	now := time.Now()
	age := n.age(now)
	n.m.age.Set(age.Seconds())
	synced := n.synced.Load()
	stale := synced && n.cfg.MaxStaleness > 0 && age > n.cfg.MaxStaleness
	closed := !synced || stale
	n.m.degraded.Set(b2f(closed || age > degradedAfter))
	if n.stateKnown && closed == !n.serving.Load() {
		return
	}
	n.stateKnown = true
	n.failClosed.Store(stale)
	switch {
	case stale:
		n.log.Error("the replica is too far behind etcd: failing closed", slog.Duration("age", age), slog.Duration("max_staleness", n.cfg.MaxStaleness))
	case synced:
		n.log.Info("the replica is serving", slog.Uint64("revision", n.store.ReplicaPos().Revision))
	}
	// Stored before OnState: a verifier attached meanwhile reads Ready.
	n.serving.Store(!closed)
	if n.opts.OnState != nil {
		n.opts.OnState(closed)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// report publishes the node's status under P nodes/<node> every
// ReportInterval, with a lease that lets it vanish when the node stops.
func (n *Node) report(ctx context.Context) {
	t := time.NewTicker(n.cfg.ReportInterval)
	defer t.Stop()
	var lease clientv3.LeaseID
	ttl := int64(3*n.cfg.ReportInterval/time.Second) + 1
	for {
		rctx, cancel := context.WithTimeout(ctx, n.cfg.Etcd.RequestTimeout)
		if lease == 0 {
			if l, err := n.cli.Grant(rctx, ttl); err == nil {
				lease = l.ID
			}
		} else if _, err := n.cli.KeepAliveOnce(rctx, lease); err != nil {
			lease = 0
		}
		if lease != 0 {
			b, _ := json.Marshal(n.Status())
			if _, err := n.cli.Put(rctx, n.nodes+n.cfg.Node, string(b), clientv3.WithLease(lease)); err != nil {
				lease = 0
			}
		}
		cancel()
		select {
		case <-n.reportNow:
		case <-ctx.Done():
			if lease != 0 {
				// Leave the status list at once on a clean stop.
				rctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_, _ = n.cli.Revoke(rctx, lease)
				cancel()
			}
			return
		case <-t.C:
		}
	}
}

// ClusterStatus is `verifyctl cluster status`: this node's status, the
// revision of the last change to the replicated state, and the statuses
// every node last published.
type ClusterStatus struct {
	Status
	// LatestRevision is the etcd revision of the last change to the
	// replicated state: a node whose Revision is lower has yet to apply
	// it. (etcd's own revision also counts the nodes' status reports.)
	LatestRevision int64    `json:"latest_revision"`
	EtcdReachable  bool     `json:"etcd_reachable"`
	EtcdError      string   `json:"etcd_error,omitempty"`
	Nodes          []Status `json:"nodes"`
}

// ClusterStatus reads the published statuses from etcd. With etcd
// unreachable it returns this node's status alone, saying so.
func (n *Node) ClusterStatus(ctx context.Context) ClusterStatus {
	self := n.Status()
	cs := ClusterStatus{Status: self}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Etcd.RequestTimeout)
	defer cancel()
	resp, err := n.cli.Txn(ctx).Then(clientv3.OpGet(n.nodes, clientv3.WithPrefix()), clientv3.OpGet(n.data+markerKey)).Commit()
	if err != nil {
		cs.EtcdError = err.Error()
		cs.Nodes = []Status{self}
		return cs
	}
	cs.EtcdReachable = true
	if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) > 0 {
		cs.LatestRevision = kvs[0].ModRevision
	}
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		var st Status
		if err := json.Unmarshal(kv.Value, &st); err != nil {
			continue
		}
		if st.Node == self.Node {
			continue
		}
		cs.Nodes = append(cs.Nodes, st)
	}
	cs.Nodes = append(cs.Nodes, self)
	sort.Slice(cs.Nodes, func(i, j int) bool { return cs.Nodes[i].Node < cs.Nodes[j].Node })
	return cs
}

// Fingerprint identifies the replica's replicated state at its revision
// (see keystore.Store.Fingerprint); two nodes at the same revision must
// show the same one.
type Fingerprint struct {
	Node               string `json:"node"`
	Revision           uint64 `json:"revision"`
	Fingerprint        string `json:"fingerprint"`
	Records            int    `json:"records"`
	TokenRevocations   int    `json:"token_revocations"`
	SubjectRevocations int    `json:"subject_revocations"`
	Requests           int    `json:"requests"`
}

// Fingerprint hashes the replica (a full read of the store).
func (n *Node) Fingerprint() (Fingerprint, error) {
	f, err := n.store.Fingerprint()
	if err != nil {
		return Fingerprint{}, err
	}
	return Fingerprint{Node: n.cfg.Node, Revision: f.Pos.Revision, Fingerprint: f.Digest, Records: f.Records,
		TokenRevocations: f.TokenRevocations, SubjectRevocations: f.SubjectRevocations, Requests: f.Requests}, nil
}
