package main

import (
	"bufio"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Result is one benchmark's figures: the median, over its runs, of every
// unit its result lines report.
type Result struct {
	Pkg   string // import path from the last "pkg:" line, "" when none
	Name  string // without the "Benchmark" prefix and the -N suffix
	Procs int    // GOMAXPROCS, from the -N suffix (1 without one)
	Runs  int    // result lines seen
	// Median holds the median of each unit ("ns/op", "B/op",
	// "allocs/op", "req/s", ...).
	Median map[string]float64
}

// Results are the parsed benchmarks, in the order they first appear.
type Results struct {
	list []*Result
}

// Find returns the results of benchmark name in package pkg, one per
// GOMAXPROCS value, in the order they appear. pkg matches an import path
// equal to it or ending in "/"+pkg; "" matches any package, and a result
// read with no "pkg:" line before it matches any pkg.
func (rs *Results) Find(pkg, name string) []*Result {
	var out []*Result
	for _, r := range rs.list {
		if r.Name == name && pkgMatches(r.Pkg, pkg) {
			out = append(out, r)
		}
	}
	return out
}

// FindProcs returns the result of benchmark name in pkg run with procs,
// or nil.
func (rs *Results) FindProcs(pkg, name string, procs int) *Result {
	for _, r := range rs.Find(pkg, name) {
		if r.Procs == procs {
			return r
		}
	}
	return nil
}

// Len returns the number of distinct benchmarks.
func (rs *Results) Len() int { return len(rs.list) }

func pkgMatches(path, pkg string) bool {
	return pkg == "" || path == "" || path == pkg || strings.HasSuffix(path, "/"+pkg)
}

// Parse reads `go test -bench` output: result lines ("BenchmarkName-N
// iterations value unit [value unit]..."), with the "pkg:" lines that
// say which package the following benchmarks belong to. A benchmark run
// several times (-count) gets the median of each unit. When a benchmark
// writes output of its own, its name is printed first, followed by that
// output, and its figures come on a later line: they are joined with the
// name. Lines that are not results are ignored.
func Parse(r io.Reader) (*Results, error) {
	type key struct {
		pkg, name string
		procs     int
	}
	samples := map[key]map[string][]float64{}
	runs := map[key]int{}
	var order []key
	pkg, pending := "", ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		text := sc.Text()
		if p, ok := strings.CutPrefix(text, "pkg: "); ok {
			pkg, pending = strings.TrimSpace(p), ""
			continue
		}
		f := strings.Fields(text)
		if len(f) == 0 {
			continue
		}
		var name string
		var units map[string]float64
		switch {
		case strings.HasPrefix(f[0], "Benchmark"):
			var err error
			if units, err = parseFigures(f[1:]); err != nil {
				pending = f[0] // the figures follow on a later line
				continue
			}
			name, pending = f[0], ""
		case pending != "":
			var err error
			if units, err = parseFigures(f); err != nil {
				continue // the benchmark's own output
			}
			name, pending = pending, ""
		default:
			continue
		}
		bare, procs := splitProcs(strings.TrimPrefix(name, "Benchmark"))
		k := key{pkg, bare, procs}
		if samples[k] == nil {
			samples[k] = map[string][]float64{}
			order = append(order, k)
		}
		for u, v := range units {
			samples[k][u] = append(samples[k][u], v)
		}
		runs[k]++
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	rs := &Results{}
	for _, k := range order {
		r := &Result{Pkg: k.pkg, Name: k.name, Procs: k.procs, Runs: runs[k], Median: map[string]float64{}}
		for u, vs := range samples[k] {
			r.Median[u] = median(vs)
		}
		rs.list = append(rs.list, r)
	}
	return rs, nil
}

// splitProcs splits "Name-N" into Name and N; a name without the suffix
// ran with GOMAXPROCS 1.
func splitProcs(s string) (string, int) {
	i := strings.LastIndexByte(s, '-')
	if i < 0 {
		return s, 1
	}
	n, err := strconv.Atoi(s[i+1:])
	if err != nil || n < 1 {
		return s, 1
	}
	return s[:i], n
}

// parseFigures parses "iterations value unit value unit ...".
func parseFigures(f []string) (map[string]float64, error) {
	if len(f) < 3 || len(f)%2 != 1 {
		return nil, errors.New("want iterations and value-unit pairs")
	}
	if !isInt(f[0]) {
		return nil, errors.New("no iteration count")
	}
	units := make(map[string]float64, len(f)/2)
	for i := 1; i < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return nil, err
		}
		units[f[i+1]] = v
	}
	return units, nil
}

func isInt(s string) bool {
	_, err := strconv.ParseUint(s, 10, 64)
	return err == nil
}

// median returns the median of vs (the mean of the middle two for an even
// count); vs is reordered.
func median(vs []float64) float64 {
	slices.Sort(vs)
	n := len(vs)
	if n%2 == 1 {
		return vs[n/2]
	}
	return (vs[n/2-1] + vs[n/2]) / 2
}
