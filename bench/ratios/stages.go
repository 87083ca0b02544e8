package main

import (
	"fmt"
	"strings"
)

// Metric is the figure a row compares.
type Metric int

// The metrics.
const (
	// Time is ns/op: lower is better, the ratio is stage / floor.
	Time Metric = iota
	// Throughput is req/s when the benchmark reports it, else 1e9 / ns/op
	// (wall time per operation, also of a b.RunParallel benchmark):
	// higher is better, the ratio is stage / floor.
	Throughput
	// P99 is the p99-ns metric: lower is better, the ratio is stage /
	// floor.
	P99
	// Bytes is the B/key metric: lower is better, the ratio is stage /
	// floor.
	Bytes
)

// Ref names a benchmark: Pkg is its package path relative to the module
// ("bench", "verify/jwt"), Name its name without "Benchmark" and -N.
type Ref struct {
	Pkg, Name string
}

func (r Ref) String() string {
	if r.Pkg == "bench" {
		return r.Name
	}
	return r.Pkg + " " + r.Name
}

// Target is what a row must reach; a zero field is no condition.
type Target struct {
	MaxRatio  float64 // ratio at most this (Time, P99, Bytes)
	MinRatio  float64 // ratio at least this (Throughput)
	MaxValue  float64 // the stage's own figure at most this, in its metric's unit
	NoAllocs  bool    // 0 allocs/op
	hasTarget bool
}

// Stage is one row of the report: a hot-path stage, the floor it is read
// against (the sum of Floors, in Metric), and its target.
type Stage struct {
	Stage  Ref
	Floors []Ref
	Metric Metric
	// PerCore multiplies the floor's throughput by the stage's
	// GOMAXPROCS: the floor is a single-goroutine benchmark, the stage
	// runs on every core.
	PerCore bool
	Target  Target
}

// atMost, atLeast, below and noAllocs build targets.
func atMost(r float64) Target     { return Target{MaxRatio: r, hasTarget: true} }
func atLeast(r float64) Target    { return Target{MinRatio: r, hasTarget: true} }
func below(v float64) Target      { return Target{MaxValue: v, hasTarget: true} }
func (t Target) noAllocs() Target { t.NoAllocs, t.hasTarget = true, true; return t }

func bench(name string) Ref { return Ref{"bench", name} }

// Floors of the bench package.
var (
	sha256Floor = bench("Floor/sha256_43B")
	mapFloor    = bench("Floor/map_lookup")
	ecdsaFloor  = bench("Floor/ecdsa_p256_verify")
	hmacFloor   = bench("Floor/hmac_sha256_reuse")
	cacheFloors = []Ref{sha256Floor, mapFloor}
	hotHit      = bench("Verify/opaque/cache_hit_hot")
)

// socketShapes are BenchmarkSocket's shapes (bench/socket_bench_test.go).
var socketShapes = []string{"conns=1/depth=1", "conns=16/depth=1", "conns=64/depth=1", "conns=1/depth=64", "conns=2/depth=64"}

// Stages is the report: every hot-path stage with its floor and, where
// bench/README.md sets one, its target.
var Stages = buildStages()

func buildStages() []Stage {
	s := []Stage{
		{Stage: bench("Verify/opaque/cache_hit"), Floors: cacheFloors, Target: atMost(1.5).noAllocs()},
		{Stage: hotHit, Floors: cacheFloors, Target: below(300).noAllocs()},
		{Stage: bench("Verify/opaque/store_hit"), Floors: cacheFloors},
		{Stage: bench("Verify/opaque/forged"), Floors: []Ref{sha256Floor}, Target: below(1000)},
		{Stage: bench("Verify/opaque/unknown"), Floors: cacheFloors, Target: below(1500)},
		{Stage: bench("Verify/jwt_es256/cold"), Floors: []Ref{ecdsaFloor}, Target: atMost(1.10)},
		{Stage: bench("Verify/jwt_hs256/cold"), Floors: []Ref{hmacFloor}, Target: atMost(5)},
		{Stage: bench("Verify/jwt_es256/cold_parallel"), Floors: []Ref{ecdsaFloor}, Metric: Throughput, PerCore: true, Target: atLeast(0.9)},
		{Stage: bench("Verify/jwt_es256/cold_parallel"), Floors: []Ref{bench("Floor/ecdsa_p256_verify_parallel")}, Metric: Throughput},
		{Stage: bench("Verify/jwt_es256/cache_hit"), Floors: []Ref{hotHit}, Target: atMost(1.5).noAllocs()},
		{Stage: bench("Verify/jwt_hs256/cache_hit"), Floors: []Ref{hotHit}, Target: atMost(1.5).noAllocs()},
		{Stage: Ref{"verify/jwt", "VerifyJWT/ES256"}, Floors: []Ref{{"verify/jwt", "Floor/ecdsa_p256_verify"}}},
		{Stage: Ref{"verify/jwt", "VerifyJWT/HS256"}, Floors: []Ref{{"verify/jwt", "Floor/hmac_sha256_reuse"}}},
		{Stage: Ref{"internal/strictjson", "Parse/jwt_claims"}, Floors: []Ref{{"internal/strictjson", "Floor/encoding_json_valid"}}, Target: Target{}.noAllocs()},
		{Stage: Ref{"rbac", "Match/patterns=100000"}, Target: below(200).noAllocs()},
		{Stage: Ref{"internal/stripe", "Add/striped"}, Floors: []Ref{{"internal/stripe", "Add/floor_shared_atomic"}}, Target: Target{}.noAllocs()},
	}
	for _, shape := range socketShapes {
		v, f := bench("Socket/verify/"+shape), bench("Socket/floor/"+shape)
		s = append(s,
			Stage{Stage: v, Floors: []Ref{f}, Metric: Throughput, Target: atLeast(0.8)},
			Stage{Stage: v, Floors: []Ref{f}, Metric: P99, Target: atMost(1.5)})
	}
	s = append(s,
		Stage{Stage: bench("HTTP/verify/cache_hit"), Floors: []Ref{bench("HTTP/floor")}, Metric: Throughput, Target: atLeast(0.7)},
		Stage{Stage: bench("HTTP/authz/cache_hit"), Floors: []Ref{bench("HTTP/floor_authz_request")}, Metric: Throughput, Target: atLeast(0.7)},
		Stage{Stage: bench("HTTPHandler/verify/cache_hit"), Floors: []Ref{hotHit}, Target: Target{}.noAllocs()},
		Stage{Stage: bench("HTTPHandler/authz/cache_hit"), Floors: []Ref{hotHit}, Target: Target{}.noAllocs()},
		Stage{Stage: bench("MillionKeys/cache_memory"), Floors: []Ref{bench("MillionKeys/ristretto_memory")}, Metric: Bytes, Target: below(256)},
		Stage{Stage: bench("MillionKeys/cold_start"), Target: below(2e9)},
	)
	return s
}

// unit is the result unit a metric reads.
func (m Metric) unit() string {
	switch m {
	case P99:
		return "p99-ns"
	case Bytes:
		return "B/key"
	}
	return "ns/op"
}

// value returns r's figure in metric m.
func (m Metric) value(r *Result) (float64, bool) {
	if m == Throughput {
		if v, ok := r.Median["req/s"]; ok {
			return v, true
		}
		if ns, ok := r.Median["ns/op"]; ok && ns > 0 {
			return 1e9 / ns, true
		}
		return 0, false
	}
	v, ok := r.Median[m.unit()]
	return v, ok
}

// format writes v in metric m's unit.
func (m Metric) format(v float64) string {
	switch m {
	case Throughput:
		return si(v) + "/s"
	case Bytes:
		return fmt.Sprintf("%.0f B", v)
	}
	return duration(v)
}

// String describes the target in m's terms.
func (t Target) String(m Metric) string {
	if !t.hasTarget {
		return "—"
	}
	var parts []string
	switch {
	case t.MaxRatio > 0:
		parts = append(parts, fmt.Sprintf("≤ %.2f×", t.MaxRatio))
	case t.MinRatio > 0:
		parts = append(parts, fmt.Sprintf("≥ %.2f×", t.MinRatio))
	}
	if t.MaxValue > 0 {
		parts = append(parts, "≤ "+m.format(t.MaxValue))
	}
	if t.NoAllocs {
		parts = append(parts, "0 allocs")
	}
	return strings.Join(parts, ", ")
}

// duration formats nanoseconds with three significant digits.
func duration(ns float64) string {
	switch {
	case ns >= 1e9:
		return sig3(ns/1e9) + " s"
	case ns >= 1e6:
		return sig3(ns/1e6) + " ms"
	case ns >= 1e3:
		return sig3(ns/1e3) + " µs"
	}
	return sig3(ns) + " ns"
}

// si formats a count with k or M and three significant digits.
func si(v float64) string {
	switch {
	case v >= 1e6:
		return sig3(v/1e6) + "M"
	case v >= 1e3:
		return sig3(v/1e3) + "k"
	}
	return sig3(v)
}

func sig3(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}
