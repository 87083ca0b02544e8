package loadgen

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"math"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// testReport returns the report of a run of 2 s in which 1000 opaque_hit
// requests took 1 µs to 1 ms (two of them wrong), 100 unknown ones 5 ms and
// 3 more were lost.
func testReport(t *testing.T) *Report {
	t.Helper()
	o := Options{Socket: "/run/verifyd.sock", Conns: 4, Depth: 2, Mix: Mix{OpaqueHit: 10, Unknown: 1}, Warmup: time.Second}
	rep := newReport(&o)
	rec := newRecorder()
	var samples []sample
	for i := 1; i <= 1000; i++ {
		samples = append(samples, sample{kind: OpaqueHit, ns: int64(i) * 1000})
	}
	for range 100 {
		samples = append(samples, sample{kind: Unknown, ns: 5e6})
	}
	errs := [numKinds]int64{OpaqueHit: 2, Unknown: 3}
	lost := [numKinds]int64{Unknown: 3}
	rec.add(samples, &errs, &lost, map[string]int64{"opaque_hit: want ok, got unknown": 2, "unknown: no answer: read: EOF": 3}, time.Now())
	rep.fill(rec, 2*time.Second)
	return rep
}

func TestReportFigures(t *testing.T) {
	t.Parallel()
	rep := testReport(t)
	if rep.Requests != 1103 || rep.Errors != 5 {
		t.Errorf("requests %d errors %d, want 1103 and 5", rep.Requests, rep.Errors)
	}
	if math.Abs(rep.Throughput-551.5) > 1e-9 || rep.Seconds != 2 {
		t.Errorf("throughput %v over %vs, want 551.5 over 2s", rep.Throughput, rep.Seconds)
	}
	if len(rep.Kinds) != 2 || rep.Kinds[0].Kind != "opaque_hit" || rep.Kinds[1].Kind != "unknown" {
		t.Fatalf("kinds %+v, want opaque_hit and unknown", rep.Kinds)
	}
	var n, e int64
	for _, k := range rep.Kinds {
		n += k.Requests
		e += k.Errors
	}
	if n != rep.Requests || e != rep.Errors {
		t.Errorf("the kinds add up to %d requests and %d errors, the report says %d and %d", n, e, rep.Requests, rep.Errors)
	}
	if k := rep.Kinds[1]; k.Requests != 103 || k.Errors != 3 || math.Abs(k.Latency.P50-5000) > 5 {
		t.Errorf("unknown: %+v, want 103 requests, 3 errors, p50 5000µs", k)
	}
	l := rep.Kinds[0].Latency
	// 3 significant digits: within 0.1%.
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"p50", l.P50, 500}, {"p90", l.P90, 900}, {"p99", l.P99, 990}, {"p99.9", l.P999, 999}, {"max", l.Max, 1000}} {
		if math.Abs(c.got-c.want) > c.want/1000+0.001 {
			t.Errorf("opaque_hit %s = %vµs, want %vµs", c.name, c.got, c.want)
		}
	}
	for _, l := range []Latency{rep.Latency, rep.Kinds[0].Latency, rep.Kinds[1].Latency} {
		if !(l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
			t.Errorf("percentiles out of order: %+v", l)
		}
	}
	if len(rep.Failures) != 2 || rep.Failures[0].Count != 3 || !strings.HasPrefix(rep.Failures[0].What, "unknown: no answer") {
		t.Errorf("failures %+v, want the lost ones first", rep.Failures)
	}
}

func TestReportJSON(t *testing.T) {
	t.Parallel()
	rep := testReport(t)
	var b bytes.Buffer
	if err := rep.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b.String())
	}
	for _, name := range []string{"transport", "target", "conns", "depth", "mix", "setup", "warmup_seconds", "seconds", "requests", "errors", "throughput", "latency_us", "kinds", "failures"} {
		if _, ok := m[name]; !ok {
			t.Errorf("the JSON report has no %q:\n%s", name, b.String())
		}
	}
	if _, ok := m["stopped_early"]; ok {
		t.Errorf("stopped_early is present though the run was not stopped")
	}
	lat := m["latency_us"].(map[string]any)
	for _, name := range []string{"p50", "p90", "p99", "p99_9", "max"} {
		if _, ok := lat[name].(float64); !ok {
			t.Errorf("latency_us has no number %q: %v", name, lat)
		}
	}
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Requests != rep.Requests || back.Mix["opaque_hit"] != 10 || back.Kinds[1].Latency != rep.Kinds[1].Latency || back.WarmupSeconds != 1 {
		t.Errorf("the JSON report does not decode to the report: %+v", back)
	}
	if err := back.WriteChart(io.Discard); err == nil {
		t.Error("a decoded report, which holds no histograms, wrote a chart")
	}
}

func TestReportTable(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	rep := testReport(t)
	rep.ClientCPUSeconds, rep.ServerCPUSeconds = 0.5, 1.1
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"socket /run/verifyd.sock, 4 connections × depth 2, 2.00s measured after 1.00s of warm-up",
		"CPU: verifybench 453µs a request (0.25 cores); daemon 997µs a request (0.55 cores)",
		"kind  requests  errors  req/s",
		"all      1103       5    552",
		"opaque_hit      1000       2    500   500µs   900µs",
		"unknown       103       3     52  5.00ms",
		"3× unknown: no answer: read: EOF",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the table does not say %q:\n%s", want, out)
		}
	}
}

func TestReportChart(t *testing.T) {
	t.Parallel()
	rep := testReport(t)
	rep.Target = `/tmp/<a&b>.sock`
	var b bytes.Buffer
	if err := rep.WriteChart(&b); err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(&b)
	elems := map[string]int{}
	texts := ""
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the chart is not XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if len(elems) == 0 && tok.Name.Local != "svg" {
				t.Fatalf("the root element is %s, want svg", tok.Name.Local)
			}
			elems[tok.Name.Local]++
		case xml.CharData:
			texts += string(tok) + "|"
		}
	}
	if elems["polyline"] != 3 {
		t.Errorf("%d lines, want 3 (all, opaque_hit, unknown)", elems["polyline"])
	}
	for _, want := range []string{"|all|", "|opaque_hit|", "|unknown|", "|99.9%|", "/tmp/<a&b>.sock", "|1.00ms|"} {
		if !strings.Contains(texts, want) {
			t.Errorf("the chart's text does not hold %q: %s", want, texts)
		}
	}
}

func TestFmtDuration(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		812:                     "812ns",
		4210:                    "4.21µs",
		35200:                   "35.2µs",
		999_000:                 "999µs",
		1_240_000:               "1.24ms",
		2_500_000_000:           "2.50s",
		0:                       "0ns",
		time.Duration(1e9 * 99): "99.0s",
	} {
		if got := fmtDuration(d); got != want {
			t.Errorf("fmtDuration(%d) = %q, want %q", d, got, want)
		}
	}
}

func TestProcessCPU(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("processCPU reads /proc, which is Linux's")
	}
	if _, err := processCPU(os.Getpid()); err != nil {
		t.Errorf("processCPU(self): %v", err)
	}
	if _, err := processCPU(1 << 30); err == nil || !strings.Contains(err.Error(), "the CPU time of process") {
		t.Errorf("processCPU(no such process) = %v", err)
	}
	if selfCPU() <= 0 {
		t.Error("selfCPU: no CPU time used by a running test")
	}
}
