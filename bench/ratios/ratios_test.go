package main

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func parseFile(t *testing.T, name string) *Results {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rs, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9*math.Max(1, math.Abs(b)) }

// TestParse reads real `go test -bench` output of two packages with
// -count repetitions and custom metrics.
func TestParse(t *testing.T) {
	rs := parseFile(t, "sample.txt")
	if rs.Len() != 9 {
		t.Errorf("%d benchmarks, want 9", rs.Len())
	}
	for _, c := range []struct {
		pkg, name, unit string
		runs            int
		want            float64
	}{
		{"bench", "Verify/opaque/cache_hit", "ns/op", 3, 2001},
		{"bench", "Verify/opaque/cache_hit", "B/op", 3, 7},
		{"bench", "Floor/map_lookup", "ns/op", 4, (157.1 + 158.0) / 2}, // even count: mean of the middle two
		{"bench", "Floor/sha256_43B", "MB/s", 3, 576.04},
		{"bench", "Floor/ecdsa_p256_verify", "ns/op", 3, 61198},
		{"verify/jwt", "Floor/ecdsa_p256_verify", "ns/op", 3, 62568},
		{"verify/jwt", "VerifyJWT/ES256", "allocs/op", 3, 31},
		{"bench", "Socket/verify/conns=1/depth=1", "req/s", 3, 199156},
		{"bench", "Socket/floor/conns=1/depth=1", "p99-ns", 3, 6895},
	} {
		found := rs.Find(c.pkg, c.name)
		if len(found) != 1 {
			t.Errorf("%s %s: %d results, want 1", c.pkg, c.name, len(found))
			continue
		}
		r := found[0]
		if r.Procs != 2 || r.Runs != c.runs {
			t.Errorf("%s %s: procs %d runs %d, want 2 and %d", c.pkg, c.name, r.Procs, r.Runs, c.runs)
		}
		if got, ok := r.Median[c.unit]; !ok || !near(got, c.want) {
			t.Errorf("%s %s: median %s = %v (%v), want %v", c.pkg, c.name, c.unit, got, ok, c.want)
		}
	}
	if r := rs.Find("bench", "Floor/ecdsa_p256_verify")[0]; !strings.HasSuffix(r.Pkg, "/verifyd/bench") {
		t.Errorf("pkg %q", r.Pkg)
	}
	if got := rs.Find("bench", "VerifyJWT/ES256"); len(got) != 0 {
		t.Errorf("a verify/jwt benchmark found in bench: %+v", got[0])
	}
}

// TestParseSplitResult joins a result whose figures follow the
// benchmark's own output, and reads names without a -N suffix.
func TestParseSplitResult(t *testing.T) {
	in := "pkg: example.com/m/bench\n" +
		"BenchmarkLoud-4   \tsetting up\n" +
		"    loud_test.go:12: more output\n" +
		"  1000\t      1500 ns/op\t       0 allocs/op\n" +
		"BenchmarkLoud-4   \t  1000\t      1700 ns/op\t       0 allocs/op\n" +
		"BenchmarkQuiet \t 20\t 50.5 ns/op\n" +
		"--- BENCH: BenchmarkQuiet\n" +
		"BenchmarkBroken-4 \t 12 abc ns/op\n" +
		"PASS\n"
	rs, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	loud := rs.FindProcs("bench", "Loud", 4)
	if loud == nil || loud.Runs != 2 || loud.Median["ns/op"] != 1600 {
		t.Errorf("Loud: %+v", loud)
	}
	if q := rs.FindProcs("bench", "Quiet", 1); q == nil || q.Median["ns/op"] != 50.5 {
		t.Errorf("Quiet: %+v", q)
	}
	if rs.Len() != 2 {
		t.Errorf("%d benchmarks, want 2 (a malformed line is not a result)", rs.Len())
	}
}

// rowOf returns the report row whose stage label is label.
func rowOf(t *testing.T, rows []Row, label string) Row {
	t.Helper()
	for _, r := range rows {
		if r.Stage == label {
			return r
		}
	}
	t.Fatalf("no row %q", label)
	return Row{}
}

// TestReport checks the ratio table on the real fixture: sums of floors,
// floors of the same name in two packages, throughput and p99 ratios,
// and stages the input does not hold.
func TestReport(t *testing.T) {
	rows := Report(parseFile(t, "sample.txt"), Stages)
	for _, c := range []struct {
		label string
		want  Row
	}{
		// 2001 / (74.65 + 157.55)
		{"Verify/opaque/cache_hit", Row{Median: "2.00 µs", Allocs: "0", FloorMedian: "232 ns", Ratio: "8.62×", Target: "≤ 1.50×, 0 allocs", Met: "no"}},
		// 66288 / 61198: the bench package's floor, not verify/jwt's.
		{"Verify/jwt_es256/cold", Row{Median: "66.3 µs", Allocs: "31", FloorMedian: "61.2 µs", Ratio: "1.08×", Target: "≤ 1.10×", Met: "yes"}},
		// 63714 / 62568
		{"verify/jwt VerifyJWT/ES256", Row{Median: "63.7 µs", Allocs: "31", FloorMedian: "62.6 µs", Ratio: "1.02×", Target: "—", Met: "—"}},
		// 199156 / 277475 req/s
		{"Socket/verify/conns=1/depth=1 (throughput)", Row{Median: "199k/s", Allocs: "0", FloorMedian: "277k/s", Ratio: "0.72×", Target: "≥ 0.80×", Met: "no"}},
		// 24619 / 6895 ns
		{"Socket/verify/conns=1/depth=1 (p99)", Row{Median: "24.6 µs", Allocs: "0", FloorMedian: "6.89 µs", Ratio: "3.57×", Target: "≤ 1.50×", Met: "no"}},
		// Not in the input: dashes, never a figure; its floor is there.
		{"Verify/opaque/forged", Row{Median: "—", Allocs: "—", FloorMedian: "74.7 ns", Ratio: "—", Target: "≤ 1.00 µs", Met: "—"}},
		{"MillionKeys/cold_start", Row{Median: "—", Allocs: "—", FloorMedian: "—", Ratio: "—", Target: "≤ 2.00 s", Met: "—"}},
		// Neither the stage nor its floor.
		{"HTTP/verify/cache_hit (throughput)", Row{Median: "—", Allocs: "—", FloorMedian: "—", Ratio: "—", Target: "≥ 0.70×", Met: "—"}},
	} {
		got := rowOf(t, rows, c.label)
		got.Stage, got.Floor = "", ""
		if got != c.want {
			t.Errorf("%s:\n got %+v\nwant %+v", c.label, got, c.want)
		}
	}
	if len(rows) != len(Stages) {
		t.Errorf("%d rows for %d stages, each run with one GOMAXPROCS", len(rows), len(Stages))
	}
}

// TestReportPerCoreAndProcs checks the per-core floor, absolute targets,
// and one row per GOMAXPROCS value.
func TestReportPerCoreAndProcs(t *testing.T) {
	in := "pkg: github.com/verifyd/verifyd/bench\n" +
		"BenchmarkFloor/ecdsa_p256_verify-2 \t 1000\t 62000 ns/op\t 19 allocs/op\n" +
		"BenchmarkVerify/jwt_es256/cold_parallel-2 \t 1000\t 35000 ns/op\t 31 allocs/op\n" +
		"BenchmarkVerify/opaque/cache_hit_hot-1 \t 1000\t 290 ns/op\t 0 allocs/op\n" +
		"BenchmarkVerify/opaque/cache_hit_hot-2 \t 1000\t 310 ns/op\t 0 allocs/op\n" +
		"BenchmarkMillionKeys/cache_memory-2 \t 1\t 2e10 ns/op\t 578.7 B/key\n" +
		"BenchmarkMillionKeys/ristretto_memory-2 \t 1\t 1e9 ns/op\t 164.2 B/key\n"
	rs, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	rows := Report(rs, Stages)
	// 1e9/35000 against 2 × 1e9/62000.
	par := rowOf(t, rows, "Verify/jwt_es256/cold_parallel (throughput)")
	if par.Median != "28.6k/s" || par.FloorMedian != "32.3k/s" || par.Ratio != "0.89×" || par.Met != "no" || par.Floor != "Floor/ecdsa_p256_verify × cores" {
		t.Errorf("per core: %+v", par)
	}
	if one := rowOf(t, rows, "Verify/opaque/cache_hit_hot-1"); one.Met != "yes" || one.Ratio != "—" {
		t.Errorf("-1: %+v", one)
	}
	if two := rowOf(t, rows, "Verify/opaque/cache_hit_hot-2"); two.Met != "no" {
		t.Errorf("-2: %+v", two)
	}
	mem := rowOf(t, rows, "MillionKeys/cache_memory")
	if mem.Median != "579 B" || mem.Ratio != "3.52×" || mem.Met != "no" || mem.Allocs != "—" {
		t.Errorf("memory: %+v", mem)
	}
}

// TestRun runs the command on the fixture and on bad arguments.
func TestRun(t *testing.T) {
	var out, errs bytes.Buffer
	if code := run([]string{filepath.Join("testdata", "sample.txt")}, nil, &out, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4+len(Stages) {
		t.Errorf("%d lines, want a title, a blank line, the header, the rule and %d rows:\n%s", len(lines), len(Stages), out.String())
	}
	if !strings.Contains(out.String(), "| Verify/opaque/cache_hit ") || !strings.HasPrefix(lines[2], "| stage ") {
		t.Errorf("output:\n%s", out.String())
	}
	width := len([]rune(lines[2]))
	for _, l := range lines[2:] {
		if len([]rune(l)) != width {
			t.Errorf("columns not aligned: %q", l)
		}
	}
	if code := run([]string{filepath.Join(t.TempDir(), "none.txt")}, nil, &out, &errs); code != 1 {
		t.Errorf("missing file: exit %d, want 1", code)
	}
	if code := run([]string{"-"}, strings.NewReader("PASS\n"), &out, &errs); code != 1 {
		t.Errorf("no results: exit %d, want 1", code)
	}
	if code := run(nil, nil, &out, &errs); code != 2 {
		t.Errorf("no argument: exit %d, want 2", code)
	}
}
