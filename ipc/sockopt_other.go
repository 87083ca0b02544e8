//go:build !linux

package ipc

import (
	"errors"
	"net"
)

// peerCred is supported on Linux only: elsewhere an allowlist refuses
// every peer.
func peerCred(*net.UnixConn) (peer, error) {
	return peer{}, errors.New("ipc: peer credentials are read on Linux only")
}

// inq cannot count queued bytes here: a drain answers only what was read.
func inq(*net.UnixConn) int { return 0 }
