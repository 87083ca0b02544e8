package clustertest

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// The tests in this file check the embedded etcd harness on its own, with
// no verifyd involved.

// TestEtcdHarnessOneMember: a single member serves, survives a restart from its
// data directory, and compacts.
func TestEtcdHarnessOneMember(t *testing.T) {
	ec := startEtcdCluster(t, 1)
	if l := ec.Leader(); l != 0 {
		t.Fatalf("leader of a one-member cluster: %d", l)
	}
	cli := ec.Client()
	put(t, cli, "k", "v1")
	ec.Stop(0)
	ec.Restart(0)
	expectValue(t, cli, "k", "v1")
	checkCompaction(t, ec, cli)
}

// TestEtcdHarnessThreeMembers: a killed leader is replaced, the cluster keeps
// taking writes, the restarted member catches up, and the whole cluster
// survives a stop and restart of every member.
func TestEtcdHarnessThreeMembers(t *testing.T) {
	ec := startEtcdCluster(t, 3)
	if got := len(ec.Endpoints()); got != 3 {
		t.Fatalf("%d endpoints", got)
	}
	cli := ec.Client()
	put(t, cli, "k", "v1")

	old := ec.Leader()
	start := time.Now()
	ec.Kill(old)
	t.Logf("killing the leader took %v", time.Since(start))
	next := ec.Leader()
	if next == old {
		t.Fatalf("the killed member %d is still the leader", old)
	}
	t.Logf("leader m%d killed, m%d elected", old, next)
	put(t, cli, "k", "v2")
	start = time.Now()
	ec.Restart(old)
	t.Logf("restarting it took %v", time.Since(start))

	// The restarted member answers from its own replica once it caught up.
	one := memberClient(t, ec, old)
	waitUntil(t, 10*time.Second, "the restarted member to serve k=v2 from its own replica", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		resp, err := one.Get(ctx, "k", clientv3.WithSerializable())
		if err != nil {
			return false, err.Error()
		}
		if len(resp.Kvs) != 1 {
			return false, "k absent"
		}
		return string(resp.Kvs[0].Value) == "v2", "k=" + string(resp.Kvs[0].Value)
	})

	start = time.Now()
	ec.Stop(ec.Leader())
	t.Logf("stopping the new leader took %v", time.Since(start))
	put(t, cli, "k", "v3")
	start = time.Now()
	ec.StopAll()
	t.Logf("stopping every member took %v", time.Since(start))
	start = time.Now()
	ec.RestartAll()
	ec.Leader()
	t.Logf("restarting every member until a leader was elected took %v", time.Since(start))
	expectValue(t, cli, "k", "v3")
	checkCompaction(t, ec, cli)
}

// memberClient returns a client of member i alone.
func memberClient(t *testing.T, ec *etcdCluster, i int) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ec.Endpoints()[i]}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// put writes key=value, retrying for a few seconds while the cluster
// elects a leader.
func put(t *testing.T, cli *clientv3.Client, key, value string) {
	t.Helper()
	waitUntil(t, 10*time.Second, "put "+key+"="+value, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := cli.Put(ctx, key, value); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
}

// expectValue checks that key holds value (a linearizable read).
func expectValue(t *testing.T, cli *clientv3.Client, key, value string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != value {
		t.Fatalf("get %s: %v, want %q", key, resp.Kvs, value)
	}
}

// checkCompaction compacts at the current revision and checks that reads
// at an earlier revision are refused, and that a watch from there is
// cancelled with the compaction revision.
func checkCompaction(t *testing.T, ec *etcdCluster, cli *clientv3.Client) {
	t.Helper()
	put(t, cli, "c", "1")
	before := ec.Revision(cli)
	put(t, cli, "c", "2")
	rev := ec.Compact(cli)
	if rev <= before {
		t.Fatalf("compacted at %d, not after %d", rev, before)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Get(ctx, "c", clientv3.WithRev(before)); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Fatalf("get at compacted revision %d: %v, want %v", before, err, rpctypes.ErrCompacted)
	}
	wch := cli.Watch(ctx, "c", clientv3.WithRev(before))
	select {
	case wr := <-wch:
		if wr.CompactRevision != rev {
			t.Fatalf("watch from %d: compact revision %d, want %d (err %v)", before, wr.CompactRevision, rev, wr.Err())
		}
	case <-ctx.Done():
		t.Fatal("watch from a compacted revision was not cancelled")
	}
}
