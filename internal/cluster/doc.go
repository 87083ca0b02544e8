// Package cluster runs verifyd's replicated mode: every node keeps its
// Pebble store as a replica of one etcd cluster, which holds the shared
// truth — key records (by digest, never a secret), JWT revocations, access
// requests, PAT state and the policy document.
//
// A write on any node is committed to etcd first, in one transaction
// guarded against lost updates (every value it replaces must still be the
// one in etcd), and acknowledged once this node has applied it, so that a
// verification on the same node right after sees it. Every node applies
// every change from a revision-ordered watch, in the same synced Pebble
// batch as the revision it has reached; on start it watches from that
// revision + 1, and when etcd has compacted the changes it missed it
// reloads a consistent snapshot (a range read at one revision). A crash at
// any point converges on restart: a change is applied whole with its
// revision, or not at all, and changes at or before the replica's revision
// are skipped.
//
// With etcd unreachable a node keeps verifying from its replica and
// reports itself degraded; past Config.MaxStaleness (off by default) it
// fails closed. docs/scale-out.md is the operator's guide.
package cluster
