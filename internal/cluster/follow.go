package cluster

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/verifyd/verifyd/keystore"
)

// progressInterval is how often the node asks etcd to confirm, on its
// watch, that it has seen every change; a replica not confirmed for
// three intervals reports itself degraded.
const progressInterval = time.Second

// snapshotPage bounds the keys read per range request of a resync.
const snapshotPage = 5000

// Run follows etcd until ctx is cancelled: it brings the replica up to
// date (a full resync when it is empty or when etcd has compacted the
// changes it missed), then applies every change in revision order as the
// watch delivers it, and publishes the node's status. A failed watch is
// restarted from the replica's revision, with a backoff.
func (n *Node) Run(ctx context.Context) {
	go n.report(ctx)
	go n.watchStaleness(ctx)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := n.follow(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			backoff = 100 * time.Millisecond
			continue
		}
		n.noteErr(err)
		n.watchRestarts.Add(1)
		n.m.watchRestarts.Inc()
		n.log.Warn("following etcd failed; retrying", slog.Duration("in", backoff), slog.Any("err", err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// follow watches from the replica's revision + 1 until the watch fails. It
// returns nil after a resync, to watch again from the new revision.
func (n *Node) follow(ctx context.Context) error {
	if !n.synced.Load() {
		return n.resync(ctx, "the replica is empty")
	}
	// The replica's revision must be one of this etcd's, under this prefix.
	pos := n.store.ReplicaPos()
	rctx, rcancel := context.WithTimeout(ctx, n.cfg.Etcd.RequestTimeout)
	head, err := n.cli.Get(rctx, n.data+markerKey)
	rcancel()
	if err != nil {
		return fmt.Errorf("cluster: read etcd's revision: %w", err)
	}
	n.source.Store(n.sourceOf(head.Header.ClusterId))
	switch {
	case pos.Source != n.source.Load():
		return n.resync(ctx, "the replica followed another etcd cluster or key prefix")
	case uint64(head.Header.Revision) < pos.Revision:
		return n.resync(ctx, fmt.Sprintf("etcd is at revision %d, before this replica's %d (was it restored from a backup?)", head.Header.Revision, pos.Revision))
	}
	from := int64(pos.Revision) + 1
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := n.cli.Watch(wctx, n.data, clientv3.WithPrefix(), clientv3.WithRev(from))
	go n.requestProgress(wctx)
	for resp := range wch {
		if resp.CompactRevision != 0 || errors.Is(resp.Err(), rpctypes.ErrCompacted) {
			return n.resync(ctx, fmt.Sprintf("etcd compacted the changes up to revision %d", resp.CompactRevision))
		}
		if err := resp.Err(); err != nil {
			return fmt.Errorf("cluster: watch: %w", err)
		}
		if err := n.applyEvents(resp.Events); err != nil {
			return err
		}
		if resp.IsProgressNotify() {
			// Every change up to the header's revision has been delivered.
			n.noteCurrent()
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.New("cluster: watch closed")
}

// requestProgress asks for a progress notification every interval, so
// that a quiet watch still confirms that the replica is current.
func (n *Node) requestProgress(ctx context.Context) {
	t := time.NewTicker(progressInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			rctx, cancel := context.WithTimeout(ctx, progressInterval)
			_ = n.cli.RequestProgress(rctx)
			cancel()
		}
	}
}

// applyEvents applies events, one revision at a time.
func (n *Node) applyEvents(events []*clientv3.Event) error {
	for len(events) > 0 {
		rev := events[0].Kv.ModRevision
		i := 1
		for i < len(events) && events[i].Kv.ModRevision == rev {
			i++
		}
		if err := n.applyRevision(uint64(rev), events[:i]); err != nil {
			return err
		}
		events = events[i:]
	}
	return nil
}

// applyRevision applies the events of one revision in one batch.
func (n *Node) applyRevision(rev uint64, events []*clientv3.Event) error {
	cs := &keystore.ChangeSet{}
	var m *marker
	for _, ev := range events {
		key := string(ev.Kv.Key[len(n.data):])
		mk, err := decoded(cs, key, ev.Kv.Value, ev.Type == mvccpb.PUT)
		switch {
		case errors.Is(err, errUnknownKey):
			n.log.Warn("ignoring an unknown key in etcd (written by a newer verifyd?)", slog.String("key", string(ev.Kv.Key)), slog.Uint64("revision", rev))
		case err != nil:
			// Stop here: skipping a change could skip a revocation. The
			// replica stays at the previous revision and reports itself
			// degraded until the change can be read.
			return fmt.Errorf("cluster: revision %d: %w", rev, err)
		case mk != nil:
			m = mk
		}
	}
	pos := keystore.ReplicaPos{Revision: rev, CommitTime: time.Now().UTC(), Source: n.source.Load()}
	own := false
	if m != nil {
		pos.CommitTime = m.time
		cs.Audit = m.audit
		own = m.node == n.cfg.Node
	}
	start := time.Now()
	audit, err := n.store.ApplyReplicated(pos, cs)
	if err != nil {
		n.m.applyErrors.Inc()
		return fmt.Errorf("cluster: apply revision %d: %w", rev, err)
	}
	done := time.Now()
	n.m.applySeconds.Observe(done.Sub(start).Seconds())
	lag := max(done.Sub(pos.CommitTime), 0)
	n.lagNanos.Store(int64(lag))
	n.m.lag.Set(lag.Seconds())
	n.m.changes.Inc()
	n.noteApplied(rev, audit, own)
	n.metaChanged(cs.Meta)
	return nil
}

// metaChanged tells OnMeta the names of the shared meta values a change
// set.
func (n *Node) metaChanged(meta []keystore.MetaChange) {
	if len(meta) == 0 || n.opts.OnMeta == nil {
		return
	}
	names := make([]string, len(meta))
	for i, c := range meta {
		names[i] = c.Name
	}
	n.opts.OnMeta(names)
}

// resync replaces the replica by a consistent snapshot of etcd: a range
// read of the data prefix at one revision, in pages.
func (n *Node) resync(ctx context.Context, why string) error {
	start := time.Now()
	n.log.Info("resyncing the replica from etcd", slog.String("why", why))
	snap := &keystore.ChangeSet{}
	var rev int64
	var m *marker
	key, end := n.data, clientv3.GetPrefixRangeEnd(n.data)
	keys := 0
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(snapshotPage)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		rctx, cancel := context.WithTimeout(ctx, n.cfg.Etcd.RequestTimeout)
		resp, err := n.cli.Get(rctx, key, opts...)
		cancel()
		if err != nil {
			return fmt.Errorf("cluster: resync: %w", err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
			n.source.Store(n.sourceOf(resp.Header.ClusterId))
		}
		for _, kv := range resp.Kvs {
			mk, err := decoded(snap, string(kv.Key[len(n.data):]), kv.Value, true)
			switch {
			case errors.Is(err, errUnknownKey):
				n.log.Warn("ignoring an unknown key in etcd (written by a newer verifyd?)", slog.String("key", string(kv.Key)))
			case err != nil:
				return fmt.Errorf("cluster: resync at revision %d: %w", rev, err)
			case mk != nil:
				m = mk
			}
		}
		keys += len(resp.Kvs)
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	pos := keystore.ReplicaPos{Revision: uint64(rev), CommitTime: time.Now().UTC(), Source: n.source.Load()}
	if m != nil {
		pos.CommitTime = m.time
	}
	if err := n.store.Resync(pos, snap); err != nil {
		n.m.applyErrors.Inc()
		return fmt.Errorf("cluster: resync at revision %d: %w", rev, err)
	}
	n.resyncs.Add(1)
	n.m.resyncs.Inc()
	n.synced.Store(true)
	n.noteApplied(uint64(rev), nil, false)
	n.noteCurrent()
	n.updateState()
	select {
	case n.reportNow <- struct{}{}:
	default:
	}
	n.log.Info("resynced the replica from etcd", slog.Int64("revision", rev), slog.Int("keys", keys),
		slog.Int("records", len(snap.Records)), slog.Duration("took", time.Since(start)))
	n.metaChanged(snap.Meta)
	return nil
}

// sourceOf identifies the log this node follows: etcd's cluster ID and the
// key prefix. A replica whose position names another source resyncs.
func (n *Node) sourceOf(clusterID uint64) uint64 {
	h := fnv.New64a()
	h.Write([]byte(n.data))
	return clusterID ^ h.Sum64()
}
