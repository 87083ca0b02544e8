// Package bench holds verifyd's cross-package benchmarks: the verification
// hot path end to end over a real Pebble store in a temporary directory, and
// the floor benchmarks (raw SHA-256, a Go map lookup, raw ECDSA, HMAC, a
// bare socket round trip, bare HTTP) that every result is reported against
// as a ratio.
//
// Run them with `make bench` (-count 10 into bench/out/new.txt, with the
// ratios to the floors printed) and compare with `make benchcmp`; README.md
// explains the figures, results/ holds the committed raw output.
// Every loop is bounded by the testing framework. Only the 1M-key cold start
// (VERIFYD_BENCH_1M=1) listens on a network: the daemon it starts, on
// loopback.
package bench
