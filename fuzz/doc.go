// Package fuzz holds verifyd's cross-package fuzz targets. Each target
// asserts properties of an exported parser or decoder (round trips,
// agreement with a reference implementation, no partial results), not only
// the absence of panics.
//
// Seed corpora live in testdata/fuzz/<FuzzName>/ and are replayed by every
// `go test ./...`. `make fuzz FUZZ=Name FUZZTIME=10m` runs one target for
// long; `make fuzz-smoke` runs every target briefly and is part of
// `make test`. Every input the fuzzer finds failing is committed as a seed.
//
// The targets are declared in package fuzz rather than fuzz_test: code
// inlined into an external test package loses coverage guidance.
package fuzz
