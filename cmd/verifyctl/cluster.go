package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/verifyd/verifyd/internal/adminclient"
)

var clusterStatusCmd = &command{
	name:     "cluster status",
	synopsis: "cluster status",
	summary:  "show every node's replica revision and lag (replicated mode)",
	help: `Asks the daemon for the state of the cluster: the etcd revision of the last
change to the replicated state, and for every node that published its status
in the last few report intervals, its state, the etcd revision its replica has
applied, how many revisions that is behind the last change (BEHIND), the lag of its last change (commit to apply), the time since etcd last
confirmed its replica current (AGE), and its watch restarts and resyncs.

States: ok (following etcd), degraded (serving from its replica, etcd not
confirmed lately), stale (failing closed: behind for longer than the node's
cluster.max_staleness), syncing (never loaded; serving nothing yet).

With etcd unreachable, only the node asked is listed and standard error says
why. A daemon in single-node mode answers NOT_CLUSTERED.
`,
	maxArgs: 0,
	bind: func(*flag.FlagSet) func(context.Context, *session, []string) error {
		return func(ctx context.Context, s *session, _ []string) error {
			c, err := s.client(true)
			if err != nil {
				return err
			}
			st, err := c.ClusterStatus(ctx)
			if err != nil {
				return err
			}
			if !st.EtcdReachable {
				fmt.Fprintf(s.stderr, "verifyctl: etcd is unreachable from node %s (%s): only its own status is shown\n", clean(st.Node), clean(st.EtcdError))
			}
			return s.printCluster(st)
		}
	},
}

var clusterFingerprintCmd = &command{
	name:     "cluster fingerprint",
	synopsis: "cluster fingerprint",
	summary:  "show the hash of the daemon's replica, to compare nodes",
	help: `Prints a SHA-256 over the daemon's whole replicated state (records, access
requests, JWT revocations) with the etcd revision it is at. Two nodes at the
same revision must print the same fingerprint; run it against each node (with
--url) to check that their replicas agree. It reads the whole store.
`,
	maxArgs: 0,
	bind: func(*flag.FlagSet) func(context.Context, *session, []string) error {
		return func(ctx context.Context, s *session, _ []string) error {
			c, err := s.client(true)
			if err != nil {
				return err
			}
			f, err := c.Fingerprint(ctx)
			if err != nil {
				return err
			}
			if s.g.output.json {
				return s.printJSON(f)
			}
			tw := newTabWriter(s.stdout)
			fmt.Fprintln(tw, "NODE\tREVISION\tFINGERPRINT\tRECORDS\tREQUESTS\tJTI_REVOCATIONS\tSUBJECT_REVOCATIONS")
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%d\t%d\n", clean(f.Node), f.Revision, f.Fingerprint, f.Records, f.Requests, f.TokenRevocations, f.SubjectRevocations)
			return tw.Flush()
		}
	},
}

// printCluster prints the cluster status: as JSON, or as a table of nodes.
func (s *session) printCluster(st adminclient.ClusterStatus) error {
	if s.g.output.json {
		return s.printJSON(st)
	}
	if st.EtcdReachable {
		fmt.Fprintf(s.stdout, "last change at etcd revision %d (asked node %s)\n", st.LatestRevision, clean(st.Node))
	}
	tw := newTabWriter(s.stdout)
	fmt.Fprintln(tw, "NODE\tSTATE\tREVISION\tBEHIND\tLAG\tAGE\tRESTARTS\tRESYNCS\tREPORTED\tLAST_ERROR")
	for _, n := range st.Nodes {
		behind := "-"
		if st.EtcdReachable && st.LatestRevision >= int64(n.Revision) {
			behind = fmt.Sprint(st.LatestRevision - int64(n.Revision))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%.3fs\t%.1fs\t%d\t%d\t%s\t%s\n", clean(n.Node), clean(n.State), n.Revision, behind,
			n.LagSeconds, n.AgeSeconds, n.WatchRestarts, n.Resyncs, fmtTime(n.ReportedAt), dash(clean(n.LastError)))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
