package main

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// missing is shown for a figure the input does not hold.
const missing = "—"

// Row is one formatted line of the report.
type Row struct {
	Stage, Median, Allocs, Floor, FloorMedian, Ratio, Target, Met string
}

// Report computes one row per stage and GOMAXPROCS value found in rs (one
// row of dashes for a stage rs does not hold).
func Report(rs *Results, stages []Stage) []Row {
	var rows []Row
	for _, st := range stages {
		found := rs.Find(st.Stage.Pkg, st.Stage.Name)
		if len(found) == 0 {
			rows = append(rows, st.row(nil, rs, false))
			continue
		}
		for _, r := range found {
			rows = append(rows, st.row(r, rs, len(found) > 1))
		}
	}
	return rows
}

// row computes st's row for result r (nil: not measured).
func (st Stage) row(r *Result, rs *Results, showProcs bool) Row {
	row := Row{
		Stage: st.label(r, showProcs), Median: missing, Allocs: missing,
		Floor: st.floorLabel(), FloorMedian: missing, Ratio: missing,
		Target: st.Target.String(st.Metric), Met: missing,
	}
	procs := 1
	if r != nil {
		procs = r.Procs
	}
	floor, hasFloor := st.floorValue(rs, procs)
	if hasFloor {
		row.FloorMedian = st.Metric.format(floor)
	}
	if r == nil {
		return row
	}
	v, ok := st.Metric.value(r)
	if !ok {
		return row
	}
	row.Median = st.Metric.format(v)
	allocs, hasAllocs := r.Median["allocs/op"]
	if hasAllocs {
		row.Allocs = fmt.Sprintf("%.4g", allocs)
	}
	ratio := 0.0
	if hasFloor && floor > 0 {
		ratio = v / floor
		row.Ratio = fmt.Sprintf("%.2f×", ratio)
	}
	if !st.Target.hasTarget {
		return row
	}
	t := st.Target
	needRatio := t.MaxRatio > 0 || t.MinRatio > 0
	if (needRatio && ratio == 0) || (t.NoAllocs && !hasAllocs) {
		return row
	}
	met := (t.MaxRatio == 0 || ratio <= t.MaxRatio) &&
		(t.MinRatio == 0 || ratio >= t.MinRatio) &&
		(t.MaxValue == 0 || v <= t.MaxValue) &&
		(!t.NoAllocs || allocs == 0)
	row.Met = map[bool]string{true: "yes", false: "no"}[met]
	return row
}

// label names the stage, with the metric when it is not ns/op and the
// GOMAXPROCS value when the input holds several.
func (st Stage) label(r *Result, showProcs bool) string {
	s := st.Stage.String()
	if r != nil && showProcs {
		s += fmt.Sprintf("-%d", r.Procs)
	}
	switch st.Metric {
	case Throughput:
		s += " (throughput)"
	case P99:
		s += " (p99)"
	}
	return s
}

func (st Stage) floorLabel() string {
	if len(st.Floors) == 0 {
		return missing
	}
	names := make([]string, len(st.Floors))
	for i, f := range st.Floors {
		names[i] = f.String()
	}
	s := strings.Join(names, " + ")
	if st.PerCore {
		s += " × cores"
	}
	return s
}

// floorValue returns the floor in st's metric: the sum of the floors'
// figures (for throughput, the rate of doing them one after another),
// times procs for a per-core floor. Each floor is taken from the run
// with the same GOMAXPROCS, or the only run there is.
func (st Stage) floorValue(rs *Results, procs int) (float64, bool) {
	if len(st.Floors) == 0 {
		return 0, false
	}
	sum := 0.0
	for _, f := range st.Floors {
		r := rs.FindProcs(f.Pkg, f.Name, procs)
		if r == nil {
			if all := rs.Find(f.Pkg, f.Name); len(all) == 1 {
				r = all[0]
			}
		}
		if r == nil {
			return 0, false
		}
		v, ok := st.Metric.value(r)
		if !ok || v <= 0 {
			return 0, false
		}
		if st.Metric == Throughput {
			v = 1 / v
		}
		sum += v
	}
	if st.Metric == Throughput {
		sum = 1 / sum
		if st.PerCore {
			sum *= float64(procs)
		}
	}
	return sum, true
}

// header is the table's first line.
var header = Row{"stage", "median", "allocs/op", "floor", "floor median", "ratio", "target", "met"}

// WriteTable writes rows as a Markdown table with aligned columns.
func WriteTable(w io.Writer, rows []Row) error {
	all := append([]Row{header}, rows...)
	cells := make([][]string, len(all))
	widths := make([]int, 8)
	for i, r := range all {
		cells[i] = []string{r.Stage, r.Median, r.Allocs, r.Floor, r.FloorMedian, r.Ratio, r.Target, r.Met}
		for j, c := range cells[i] {
			widths[j] = max(widths[j], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	line := func(cs []string) {
		for j, c := range cs {
			fmt.Fprintf(&b, "| %-*s ", widths[j], c)
		}
		b.WriteString("|\n")
	}
	line(cells[0])
	sep := make([]string, len(widths))
	for j, n := range widths {
		sep[j] = strings.Repeat("-", n)
	}
	line(sep)
	for _, cs := range cells[1:] {
		line(cs)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
