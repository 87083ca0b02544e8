// Package ipc is the home of verifyd's transports: they turn bytes from
// brokers and gateways into calls on package verify and results back into
// bytes, and hold no authorization logic of their own.
//
// The HTTP transport is package [github.com/verifyd/verifyd/ipc/httpapi].
// The local Unix-socket transport, a versioned binary protocol specified in
// ipc/PROTOCOL.md, is implemented in this package.
package ipc
