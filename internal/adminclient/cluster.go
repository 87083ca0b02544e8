package adminclient

import (
	"context"
	"net/http"
	"time"
)

// NodeStatus is one node's state in replicated mode.
type NodeStatus struct {
	Node          string    `json:"node"`
	State         string    `json:"state"` // ok, degraded, stale or syncing
	Revision      uint64    `json:"revision"`
	CommitTime    time.Time `json:"commit_time"`
	LagSeconds    float64   `json:"lag_seconds"`
	AgeSeconds    float64   `json:"age_seconds"`
	WatchRestarts int64     `json:"watch_restarts"`
	Resyncs       int64     `json:"resyncs"`
	LastError     string    `json:"last_error,omitempty"`
	ReportedAt    time.Time `json:"reported_at"`
}

// ClusterStatus is the answer of GET /v1/admin/cluster: the node asked,
// the etcd revision of the last change to the replicated state, and every
// node's last published status.
type ClusterStatus struct {
	NodeStatus
	LatestRevision int64        `json:"latest_revision"`
	EtcdReachable  bool         `json:"etcd_reachable"`
	EtcdError      string       `json:"etcd_error,omitempty"`
	Nodes          []NodeStatus `json:"nodes"`
}

// Fingerprint is the answer of GET /v1/admin/cluster/fingerprint.
type Fingerprint struct {
	Node               string `json:"node"`
	Revision           uint64 `json:"revision"`
	Fingerprint        string `json:"fingerprint"`
	Records            int    `json:"records"`
	TokenRevocations   int    `json:"token_revocations"`
	SubjectRevocations int    `json:"subject_revocations"`
	Requests           int    `json:"requests"`
}

// ClusterStatus reads the cluster's state through the daemon
// (GET /v1/admin/cluster). A single-node daemon answers 404 NOT_CLUSTERED.
func (c *Client) ClusterStatus(ctx context.Context) (ClusterStatus, error) {
	var st ClusterStatus
	if err := c.admin(ctx, http.MethodGet, "/v1/admin/cluster", nil, nil, &st); err != nil {
		return ClusterStatus{}, err
	}
	return st, nil
}

// Fingerprint reads the hash of the daemon's replica
// (GET /v1/admin/cluster/fingerprint).
func (c *Client) Fingerprint(ctx context.Context) (Fingerprint, error) {
	var f Fingerprint
	if err := c.admin(ctx, http.MethodGet, "/v1/admin/cluster/fingerprint", nil, nil, &f); err != nil {
		return Fingerprint{}, err
	}
	return f, nil
}
