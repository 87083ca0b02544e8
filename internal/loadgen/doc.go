// Package loadgen drives a running verifyd with a mix of verifications and
// measures its throughput and latency: the logic of the verifybench
// command.
//
// # What a run does
//
// [Run] creates the API keys the mix needs through the admin API (many
// calls at once; or loads keys an earlier run saved), mints ES256 tokens
// with a key of its own, whose set it serves on a loopback address the
// daemon is configured to trust ([TrustSnippet]), and waits until the
// daemon trusts that key. It then verifies every key and every cache-hit
// token once, so that the measured requests of those kinds are cache
// hits, and sends the mix over Options.Conns connections with
// Options.Depth requests in flight on each: first for the warm-up, which
// is not counted, then for Options.Duration or Options.Requests. At the
// end it revokes the keys it created. The time the setup took is reported
// apart from the measurement.
//
// Every answer is checked against the one expected for its kind (the
// status, and for an allowed answer the subject and the credential
// kind); a wrong answer, or a request lost with its connection, is an
// error in the [Report]. A load generator that counted wrong answers as
// throughput would measure nothing.
//
// # Transports
//
// Over the Unix socket, each connection is driven directly with the ipc
// codec: one goroutine per connection writes each batch of requests in
// one write and decodes the answers in place, pairing them by request id.
// Over HTTP, requests to POST /v1/verify are pipelined on HTTP/1.1
// connections (a depth above 1 writes that many requests before reading
// their answers, which come back in order), with a minimal client that
// reads Content-Length bodies. Both keep the client's CPU per request
// small: on a machine with few cores the client and the daemon share
// them.
//
// # Measurement
//
// A request's latency runs from the write of the batch that carries it
// to the read that brings its answer. Latencies go to HDR histograms
// (nanoseconds, 3 significant digits), one overall and one per kind;
// connections hand them over in batches. The n-th measured request, on
// whichever connection, is of the kind at position n of a smooth
// weighted round robin over the mix, so a run of N requests sends exactly
// the mix's share of each kind.
//
// # Secrets
//
// The keys' secrets and the tokens live in memory only, except in the
// file Options.SaveKeys names (mode 0600). Reports, logs and errors name
// kinds and statuses, never a secret.
package loadgen
