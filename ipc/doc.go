// Package ipc is verifyd's local transport: a versioned binary protocol over
// a Unix socket, specified in ipc/PROTOCOL.md and laid out as C structs in
// ipc/include/verifyd.h, the header C and C++ brokers include. The package
// holds the frame codec, the server and the Go client. Like every transport
// it turns bytes into calls on package verify and results back into bytes,
// and holds no authorization logic of its own. The HTTP transport is
// package [github.com/verifyd/verifyd/ipc/httpapi].
//
// # Codec
//
// Frames are fixed-layout and little-endian: a 16-byte [Header] (length,
// version, opcode, flags, request id), then a body whose layout the opcode
// fixes. The Append functions ([AppendHello], [AppendVerify],
// [AppendVerifyResult], ...) append one whole frame to a byte slice and
// allocate nothing when it has room. A [Decoder] finds complete frames in
// the bytes read so far and validates them; the body decoders
// ([DecodeVerify], [DecodeVerifyResult], ...) return views whose byte slices
// alias the input. Decoding allocates nothing; a refusal is a *[FrameError]
// carrying the [ErrorCode] that reports it on the wire.
//
// # Server
//
// [Server] serves one socket path with one goroutine per connection. A
// connection reads into a fixed buffer, decodes and answers requests in the
// order they arrive, and writes the answers in one batch when it has no
// complete request left buffered. Every resource is bounded (frame size,
// answers held, connections, idle time, the time a frame may take to
// arrive, the time a batch may take to leave), and a connection that breaks
// the protocol gets an ERROR frame and is closed without disturbing the
// others. A request answered from verify's cache allocates nothing.
//
// # Client
//
// [Dial] returns a [Client] over a small pool of connections. Many
// goroutines pipeline their calls over each connection: a call takes a slot
// (at most the server's max_in_flight per connection), its request id names
// the slot, and one reader goroutine per connection hands each answer to
// its caller; one writer goroutine per connection coalesces the requests of
// concurrent callers into few writes. A call honours its context; a broken
// connection fails its pending calls at once and is redialled in the
// background with backoff, while new calls go to the healthy connections.
//
// # Concurrency
//
// Decoder and the codec functions are safe for concurrent use. Server's and
// Client's methods are safe for concurrent use.
package ipc
