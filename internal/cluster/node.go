package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/verifyd/verifyd/keystore"
)

// Options are what a Node needs besides its Config.
type Options struct {
	// Logger receives the node's operational events. nil: slog.Default().
	Logger *slog.Logger
	// Registerer receives the node's metrics; nil registers none.
	Registerer prometheus.Registerer
	// OnMeta is called, outside the store's locks, after a change from the
	// feed (or a resync) set shared meta values, with their names. The
	// daemon installs a replicated policy this way.
	OnMeta func(names []string)
	// OnState is called when the node starts or stops failing closed
	// (see Config.MaxStaleness), and once the first sync is done.
	OnState func(failClosed bool)
}

// A Node keeps a keystore replica in step with the etcd cluster: it
// commits the store's writes to etcd (it is the store's
// keystore.Replicator) and applies every change etcd delivers, its own
// included, in revision order.
type Node struct {
	cfg    Config
	opts   Options
	log    *slog.Logger
	cli    *clientv3.Client
	data   string // key prefix of the replicated state
	nodes  string // key prefix of the node statuses
	m      *metrics
	store  *keystore.Store
	closed chan struct{}

	// mu guards applied and audit; cond signals a new applied revision.
	mu      sync.Mutex
	cond    *sync.Cond
	applied uint64
	audit   map[uint64][]keystore.AuditEntry // audit entries of recent own changes, by revision

	lastCurrent   atomic.Int64 // Unix nanoseconds when the replica was last known current
	lagNanos      atomic.Int64 // commit-to-apply delay of the last change applied
	watchRestarts atomic.Int64
	resyncs       atomic.Int64
	synced        atomic.Bool   // the replica holds a state read from etcd
	source        atomic.Uint64 // the log followed (see sourceOf)
	failClosed    atomic.Bool   // the replica is stale: too long unconfirmed
	serving       atomic.Bool   // verifications may be answered (see updateState)
	stateMu       sync.Mutex    // serializes updateState
	stateKnown    bool          // updateState has told OnState once; guarded by stateMu
	reportNow     chan struct{} // asks for a status report at once
	lastErr       atomic.Pointer[string]
}

// New creates a node for cfg (which must be enabled and valid, with
// defaults set). It does not contact etcd: the client connects in the
// background.
func New(cfg Config, opts Options) (*Node, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	tlsCfg, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            cfg.Etcd.Endpoints,
		DialTimeout:          cfg.Etcd.DialTimeout,
		DialKeepAliveTime:    2 * time.Second,
		DialKeepAliveTimeout: 2 * time.Second,
		TLS:                  tlsCfg,
		Logger:               clientLogger(opts.Logger.With(slog.String("component", "cluster"), slog.String("node", cfg.Node))),
		MaxCallSendMsgSize:   2 << 20,
		// Reconnect within 2 s once etcd is back, not after gRPC's
		// default backoff of up to two minutes.
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: cfg.Etcd.DialTimeout,
		})},
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: etcd client: %w", err)
	}
	n := &Node{
		cfg:    cfg,
		opts:   opts,
		log:    opts.Logger.With(slog.String("component", "cluster"), slog.String("node", cfg.Node)),
		cli:    cli,
		data:   cfg.Etcd.Prefix + dataDir,
		nodes:  cfg.Etcd.Prefix + nodesDir,
		closed: make(chan struct{}),
		audit:  map[uint64][]keystore.AuditEntry{},

		reportNow: make(chan struct{}, 1),
	}
	n.cond = sync.NewCond(&n.mu)
	n.lastCurrent.Store(time.Now().UnixNano()) // the age of a replica never confirmed counts from here
	if n.m, err = newMetrics(n, opts.Registerer); err != nil {
		cli.Close()
		return nil, err
	}
	return n, nil
}

// Attach gives the node the store it replicates into: the store opened
// with this node as its Replicator. It must be called once, before Run.
func (n *Node) Attach(s *keystore.Store) {
	n.store = s
	pos := s.ReplicaPos()
	n.applied = pos.Revision
	n.synced.Store(pos.Revision > 0)
	n.m.applied.Set(float64(pos.Revision))
	n.updateState()
}

// Close stops waiting writers and closes the etcd client. Run must have
// returned (its context cancelled).
func (n *Node) Close() error {
	close(n.closed)
	n.mu.Lock()
	n.cond.Broadcast()
	n.mu.Unlock()
	return n.cli.Close()
}

// Replicate commits cs to etcd in one transaction whose guards hold only
// if every value cs replaces is still the one in etcd, and returns once
// this node has applied it (see keystore.Replicator).
func (n *Node) Replicate(ctx context.Context, cs *keystore.ChangeSet) ([]keystore.AuditEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Etcd.RequestTimeout)
	defer cancel()
	t := newTxnBuilder(n.data)
	if err := t.add(cs); err != nil {
		return nil, err
	}
	m := marker{node: n.cfg.Node, time: time.Now().UTC(), audit: cs.Audit}
	ops := append(t.ops, clientv3.OpPut(n.data+markerKey, string(m.appendEncode(nil))))
	start := time.Now()
	resp, err := n.cli.Txn(ctx).If(t.guards...).Then(ops...).Commit()
	n.m.commitSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		if errors.Is(err, rpctypes.ErrTooManyOps) || errors.Is(err, rpctypes.ErrRequestTooLarge) {
			return nil, fmt.Errorf("cluster: the change is too large for one etcd transaction (%d operations): %w", len(ops), err)
		}
		n.m.commitErrors.Inc()
		return nil, fmt.Errorf("%w: etcd: %w", keystore.ErrUnavailable, err)
	}
	rev := uint64(resp.Header.Revision)
	if !resp.Succeeded {
		n.m.conflicts.Inc()
		// Build again once this replica holds the change that won.
		if _, err := n.waitApplied(ctx, rev); err != nil {
			return nil, err
		}
		return nil, keystore.ErrConflict
	}
	return n.waitApplied(ctx, rev)
}

// waitApplied waits until the replica has applied revision rev, and
// returns the audit entries committed with it.
func (n *Node) waitApplied(ctx context.Context, rev uint64) ([]keystore.AuditEntry, error) {
	stop := context.AfterFunc(ctx, func() {
		n.mu.Lock()
		n.cond.Broadcast()
		n.mu.Unlock()
	})
	defer stop()
	n.mu.Lock()
	defer n.mu.Unlock()
	for n.applied < rev {
		select {
		case <-n.closed:
			return nil, fmt.Errorf("%w: the node is shutting down", keystore.ErrUnavailable)
		default:
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: committed to etcd at revision %d, but not yet applied on this node (it will be)", keystore.ErrUnavailable, rev)
		}
		n.cond.Wait()
	}
	audit := n.audit[rev]
	delete(n.audit, rev)
	return audit, nil
}

// noteApplied records that the replica has applied rev, with the audit
// entries committed with it when the change was this node's own.
func (n *Node) noteApplied(rev uint64, audit []keystore.AuditEntry, own bool) {
	n.mu.Lock()
	if own && len(audit) > 0 {
		n.audit[rev] = audit
	}
	// A writer that gave up waiting leaves its entries behind: keep the
	// map small.
	if len(n.audit) > 1024 {
		for r := range n.audit {
			if r+1024 < rev {
				delete(n.audit, r)
			}
		}
	}
	n.applied = rev
	n.cond.Broadcast()
	n.mu.Unlock()
	n.m.applied.Set(float64(rev))
}

// A txnBuilder turns a ChangeSet into the guards and operations of one
// etcd transaction. Several changes of one key (a record created and
// updated in one transaction) become one guard on the first value
// replaced and one write of the last.
type txnBuilder struct {
	data   string
	guards []clientv3.Cmp
	ops    []clientv3.Op
}

func newTxnBuilder(data string) *txnBuilder { return &txnBuilder{data: data} }

// guard adds the condition that key holds old (absent when old is nil).
func (t *txnBuilder) guard(key string, old []byte) {
	if old == nil {
		t.guards = append(t.guards, clientv3.Compare(clientv3.CreateRevision(key), "=", 0))
	} else {
		t.guards = append(t.guards, clientv3.Compare(clientv3.Value(key), "=", string(old)))
	}
}

func (t *txnBuilder) add(cs *keystore.ChangeSet) error {
	type recordNet struct{ old, new *keystore.Record }
	var order []string
	records := map[string]*recordNet{}
	for _, c := range cs.Records {
		if c.New == nil {
			return errors.New("cluster: a record cannot be deleted through the admin API")
		}
		r, ok := records[c.New.ID]
		if !ok {
			r = &recordNet{old: c.Old}
			records[c.New.ID] = r
			order = append(order, c.New.ID)
		}
		r.new = c.New
	}
	for _, id := range order {
		r := records[id]
		key := t.data + kindRecord + id
		var old []byte
		if r.old != nil {
			old = r.old.AppendEncode(nil)
		}
		t.guard(key, old)
		t.ops = append(t.ops, clientv3.OpPut(key, string(r.new.AppendEncode(nil))))
		oldDigests := r.old.Digests()
		newDigests := r.new.Digests()
		for _, d := range newDigests {
			if !slices.Contains(oldDigests, d) {
				dk := t.data + kindDigest + digestName(d)
				t.guard(dk, nil)
				t.ops = append(t.ops, clientv3.OpPut(dk, id))
			}
		}
		for _, d := range oldDigests {
			if !slices.Contains(newDigests, d) {
				t.ops = append(t.ops, clientv3.OpDelete(t.data+kindDigest+digestName(d)))
			}
		}
	}
	var net netChanges
	for _, c := range cs.Requests {
		var old []byte
		if c.Old != nil {
			old = c.Old.AppendEncode(nil)
		}
		net.add(kindRequest+c.New.ID, old, c.New.AppendEncode(nil))
	}
	for _, c := range cs.Revocations {
		var old []byte
		if c.Token != nil {
			if c.OldToken != nil {
				old = c.OldToken.AppendEncode(nil)
			}
			net.add(kindToken+c.Token.TokenID, old, c.Token.AppendEncode(nil))
		} else {
			if c.OldSubject != nil {
				old = c.OldSubject.AppendEncode(nil)
			}
			net.add(kindSubject+c.Subject.Subject, old, c.Subject.AppendEncode(nil))
		}
	}
	for _, c := range cs.Meta {
		net.add(kindMeta+c.Name, c.Old, c.New)
	}
	for _, k := range net.order {
		c := net.changes[k]
		t.guard(t.data+k, c.old)
		t.ops = append(t.ops, clientv3.OpPut(t.data+k, string(c.new)))
	}
	return nil
}

// netChanges folds several changes of one key into one: the first value
// replaced (the guard) and the last value written, in the order the keys
// first appear.
type netChanges struct {
	order   []string
	changes map[string]*netChange
}

type netChange struct{ old, new []byte }

func (n *netChanges) add(key string, old, new []byte) {
	if n.changes == nil {
		n.changes = map[string]*netChange{}
	}
	c, ok := n.changes[key]
	if !ok {
		c = &netChange{old: old}
		n.changes[key] = c
		n.order = append(n.order, key)
	}
	c.new = new
}
