package main

import (
	"context"
	"log/slog"
	"slices"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verifyd/verifyd/internal/cluster"
	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/verify"
)

// metaPolicy is the shared meta value holding the cluster's policy
// document.
const metaPolicy = "policy"

// replication is the daemon's replicated mode: the node that keeps the
// store in step with etcd, and what it must reach in the daemon (the
// verifier to fail closed, the policy to replace).
type replication struct {
	node     *cluster.Node
	secrets  cluster.Secrets
	store    *keystore.Store
	policy   *policyLoader
	verifier atomic.Pointer[verify.Verifier]
	log      *slog.Logger
	cancel   context.CancelFunc
	done     chan struct{}
	// policyChanged wakes the goroutine that puts the cluster's policy in
	// force. The feed only signals it: a reload holds the policy loader
	// while it waits for the feed to apply its own change.
	policyChanged chan struct{}
}

// newReplication reads the deployment secret and creates the node; it
// does not contact etcd yet.
func newReplication(cfg cluster.Config, policy *policyLoader, reg prometheus.Registerer, log *slog.Logger) (*replication, error) {
	secrets, err := cfg.LoadSecrets()
	if err != nil {
		return nil, err
	}
	r := &replication{secrets: secrets, policy: policy, log: log, policyChanged: make(chan struct{}, 1)}
	r.node, err = cluster.New(cfg, cluster.Options{
		Logger:     log,
		Registerer: reg,
		OnMeta:     r.onMeta,
		OnState: func(failClosed bool) {
			if v := r.verifier.Load(); v != nil {
				v.SetUnavailable(failClosed)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// start attaches the store and follows etcd in the background until stop.
func (r *replication) start(store *keystore.Store) {
	r.store = store
	r.node.Attach(store)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	policyDone := make(chan struct{})
	go func() {
		defer close(policyDone)
		r.followPolicy(ctx)
	}()
	go func() {
		defer close(r.done)
		r.node.Run(ctx)
		<-policyDone
	}()
	r.policy.publish = func(doc []byte) error {
		return store.SetMeta(context.Background(), metaPolicy, doc)
	}
}

// setVerifier makes v fail closed whenever the replica cannot be trusted:
// at once when it has never been loaded.
func (r *replication) setVerifier(v *verify.Verifier) {
	r.verifier.Store(v)
	v.SetUnavailable(r.node.Ready() != nil)
}

// stop stops following etcd and closes the client. The store stays open.
func (r *replication) stop() {
	r.cancel()
	<-r.done
	if err := r.node.Close(); err != nil {
		r.log.Warn("closing the etcd client", "err", err)
	}
}

// onMeta signals a change of the cluster's policy.
func (r *replication) onMeta(names []string) {
	if !slices.Contains(names, metaPolicy) {
		return
	}
	select {
	case r.policyChanged <- struct{}{}:
	default: // already signalled; the latest document is read
	}
}

// followPolicy puts the cluster's policy in force each time it changes,
// until ctx ends.
func (r *replication) followPolicy(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.policyChanged:
		}
		doc, ok, err := r.store.GetMeta(metaPolicy)
		if err != nil || !ok {
			r.log.Error("cannot read the cluster's policy from the replica", "err", err)
			continue
		}
		r.policy.applyShared(doc)
	}
}

// Summary implements httpapi.Cluster.
func (r *replication) Summary() (bool, string) { return r.node.Summary() }

// ClusterStatus implements httpapi.Cluster.
func (r *replication) ClusterStatus(ctx context.Context) any { return r.node.ClusterStatus(ctx) }

// Fingerprint implements httpapi.Cluster.
func (r *replication) Fingerprint() (any, error) { return r.node.Fingerprint() }
