// Package clustertest holds the scale-out tests of verifyd's replicated
// mode. They start an embedded etcd cluster of one or three members on
// loopback and several real verifyd processes, built from ../../cmd/verifyd,
// each keeping its own store as a replica of the etcd cluster, and check
// through the HTTP API only that admin writes made on one node are seen on
// every node, that revocations propagate, and that the replicas agree after
// etcd leader changes, compaction, an etcd outage and killed nodes.
//
// The package is its own module so that the daemon's module never depends
// on etcd's server packages. From the daemon's module (through a replace
// directive to ../..) it imports only internal/testpki, for its
// certificates.
//
// Run it from this directory:
//
//	go test -count=1 -v .            # the tests
//	go test -count=1 -short .        # fewer keys
//	go test -run '^$' -bench Replication -benchtime 200x .
//
// VERIFYD_CLUSTER_REPORT names a file that receives the revocation
// propagation figures as JSON.
package clustertest
