package httpapi

import (
	"context"
	"time"

	"github.com/valyala/fasthttp"
)

// Cluster is what the HTTP API shows of replicated mode.
type Cluster interface {
	// Summary is the node's state in one line, for GET /readyz, and
	// whether it is degraded (serving from a replica etcd has not
	// confirmed lately).
	Summary() (degraded bool, line string)
	// ClusterStatus is the answer of GET /v1/admin/cluster: this node's
	// status and every node's last published one (a JSON-encodable value).
	ClusterStatus(ctx context.Context) any
	// Fingerprint is the answer of GET /v1/admin/cluster/fingerprint: a
	// hash of the replica's replicated state and the revision it is at.
	Fingerprint() (any, error)
}

// clusterStatusTimeout bounds the etcd read of GET /v1/admin/cluster.
const clusterStatusTimeout = 5 * time.Second

// handleCluster serves GET /v1/admin/cluster and
// GET /v1/admin/cluster/fingerprint (sub is "" or "/fingerprint").
func (s *Server) handleCluster(ctx *fasthttp.RequestCtx, sub string) {
	if !s.isAdmin(ctx) || !allowMethod(ctx, fasthttp.MethodGet) {
		return
	}
	if s.opts.Cluster == nil {
		writeError(ctx, fasthttp.StatusNotFound, "NOT_CLUSTERED", "this node runs in single-node mode (no cluster section in its configuration)")
		return
	}
	if sub == "/fingerprint" {
		f, err := s.opts.Cluster.Fingerprint()
		if err != nil {
			s.answerError(ctx, err)
			return
		}
		writeJSON(ctx, fasthttp.StatusOK, f)
		return
	}
	c, cancel := context.WithTimeout(context.Background(), clusterStatusTimeout)
	defer cancel()
	writeJSON(ctx, fasthttp.StatusOK, s.opts.Cluster.ClusterStatus(c))
}
