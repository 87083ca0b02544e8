// Package bench holds verifyd's cross-package benchmarks: the verification
// hot path end to end over a real Pebble store in a temporary directory, and
// the floor benchmarks (raw SHA-256, a Go map lookup) that every result is
// reported against as a ratio.
//
// Run them with `make bench` (-count 10 into bench/out/new.txt) and compare
// with `make benchcmp`; the committed baselines and ratios are in results/.
// Every loop is bounded by the testing framework; nothing listens on a
// network.
package bench
