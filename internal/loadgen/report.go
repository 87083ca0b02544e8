package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Report is the outcome of a run. Its JSON form is what `verifybench -o
// json` prints; latencies are in microseconds.
type Report struct {
	Transport string         `json:"transport"` // "socket" or "http"
	Target    string         `json:"target"`    // the socket path or the HTTP address
	Conns     int            `json:"conns"`
	Depth     int            `json:"depth"`
	Mix       map[string]int `json:"mix"` // the weight of each kind sent
	Setup     Setup          `json:"setup"`
	// WarmupSeconds is how long requests were sent before the
	// measurement; they are not counted.
	WarmupSeconds float64 `json:"warmup_seconds"`
	// Seconds is the measured time: from the first measured request to
	// the last answer.
	Seconds float64 `json:"seconds"`
	// Requests is the number of measured requests: answered, or lost when
	// their connection failed.
	Requests int64 `json:"requests"`
	// Errors counts the requests whose answer was not the one expected
	// for their kind, and those lost.
	Errors int64 `json:"errors"`
	// Throughput is Requests / Seconds.
	Throughput float64 `json:"throughput"`
	// Latency is over the answered requests.
	Latency Latency `json:"latency_us"`
	// Kinds has one entry per kind of the mix, in the order of Kind.
	Kinds []KindReport `json:"kinds"`
	// ClientCPUSeconds is the CPU time the load generator's process used
	// during the measurement; ServerCPUSeconds is the daemon's, when its
	// process id was given (Options.ServerPID). On a machine whose cores
	// both share, they say which side the throughput is bound by.
	ClientCPUSeconds float64 `json:"client_cpu_seconds"`
	ServerCPUSeconds float64 `json:"server_cpu_seconds,omitempty"`
	// StoppedEarly, when not empty, says why the run ended before its
	// duration or number of requests.
	StoppedEarly string `json:"stopped_early,omitempty"`
	// Failures says what went wrong, most frequent first (at most 20
	// descriptions, then "other failures").
	Failures []Failure `json:"failures,omitempty"`

	all   *hdrhistogram.Histogram
	hists []*hdrhistogram.Histogram // parallel to Kinds
}

// Setup is what the run did before and after the measurement, and how
// long it took. Keys and tokens are made before the run and are not part
// of the measurement.
type Setup struct {
	Keys           int     `json:"keys"`         // API keys used
	KeysCreated    int     `json:"keys_created"` // by this run (0 with --keys-from)
	KeysSeconds    float64 `json:"keys_seconds"`
	Tokens         int     `json:"tokens_minted"`
	MintSeconds    float64 `json:"mint_seconds"`
	TrustSeconds   float64 `json:"trust_seconds"` // until the daemon trusted the run's key
	PrimeSeconds   float64 `json:"prime_seconds"` // verifying every key and JWTHit token once
	KeysRevoked    int     `json:"keys_revoked"`
	CleanupSeconds float64 `json:"cleanup_seconds"`
}

// KindReport is the part of a run of one kind of request.
type KindReport struct {
	Kind       string  `json:"kind"`
	Requests   int64   `json:"requests"`
	Errors     int64   `json:"errors"`
	Throughput float64 `json:"throughput"`
	Latency    Latency `json:"latency_us"`
}

// Latency is a latency distribution's percentiles and maximum, in
// microseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

// Failure is one kind of wrong answer or failed connection and how often
// it happened.
type Failure struct {
	What  string `json:"what"`
	Count int64  `json:"count"`
}

func newReport(o *Options) *Report {
	r := &Report{Conns: o.Conns, Depth: o.Depth, Mix: map[string]int{}, WarmupSeconds: max(o.Warmup, 0).Seconds()}
	if o.Socket != "" {
		r.Transport, r.Target = "socket", o.Socket
	} else {
		r.Transport, r.Target = "http", o.Addr
	}
	for k, w := range o.Mix {
		if w > 0 {
			r.Mix[Kind(k).String()] = w
		}
	}
	return r
}

// fill sets the measured figures from rec, over the measured time elapsed.
func (r *Report) fill(rec *recorder, elapsed time.Duration) {
	r.Failures = rec.failureList()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	secs := elapsed.Seconds()
	rate := func(n int64) float64 {
		if secs <= 0 {
			return 0
		}
		return float64(n) / secs
	}
	r.Seconds = secs
	r.all = rec.all
	r.Kinds, r.hists = nil, nil
	r.Requests, r.Errors = 0, 0
	for k := range numKinds {
		if r.Mix[k.String()] == 0 {
			continue
		}
		h := rec.kinds[k]
		kr := KindReport{
			Kind:     k.String(),
			Requests: h.TotalCount() + rec.lost[k],
			Errors:   rec.errs[k],
			Latency:  latencyOf(h),
		}
		kr.Throughput = rate(kr.Requests)
		r.Requests += kr.Requests
		r.Errors += kr.Errors
		r.Kinds = append(r.Kinds, kr)
		r.hists = append(r.hists, h)
	}
	r.Throughput = rate(r.Requests)
	r.Latency = latencyOf(rec.all)
}

func latencyOf(h *hdrhistogram.Histogram) Latency {
	us := func(ns int64) float64 { return math.Round(float64(ns)) / 1000 }
	return Latency{
		P50:  us(h.ValueAtQuantile(50)),
		P90:  us(h.ValueAtQuantile(90)),
		P99:  us(h.ValueAtQuantile(99)),
		P999: us(h.ValueAtQuantile(99.9)),
		Max:  us(h.Max()),
	}
}

// WriteJSON writes r as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes r for people: what was run, the setup, and a table of
// throughput and latency, overall and per kind.
func (r *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "verifybench: %s %s, %d connections × depth %d, %s measured after %s of warm-up\n",
		r.Transport, r.Target, r.Conns, r.Depth, fmtSeconds(r.Seconds), fmtSeconds(r.WarmupSeconds))
	s := r.Setup
	var setup []string
	if s.KeysCreated > 0 {
		setup = append(setup, fmt.Sprintf("%d keys created in %s", s.KeysCreated, fmtSeconds(s.KeysSeconds)))
	} else if s.Keys > 0 {
		setup = append(setup, fmt.Sprintf("%d keys loaded", s.Keys))
	}
	if s.Tokens > 0 {
		setup = append(setup, fmt.Sprintf("%d tokens minted in %s, trusted after %s", s.Tokens, fmtSeconds(s.MintSeconds), fmtSeconds(s.TrustSeconds)))
	}
	if s.PrimeSeconds > 0 {
		setup = append(setup, fmt.Sprintf("each verified once in %s", fmtSeconds(s.PrimeSeconds)))
	}
	if s.KeysRevoked > 0 {
		setup = append(setup, fmt.Sprintf("%d keys revoked in %s", s.KeysRevoked, fmtSeconds(s.CleanupSeconds)))
	}
	if len(setup) > 0 {
		fmt.Fprintf(&b, "setup: %s\n", strings.Join(setup, "; "))
	}
	if r.Requests > 0 && r.Seconds > 0 && r.ClientCPUSeconds > 0 {
		perRequest := func(secs float64) string {
			return fmt.Sprintf("%s a request (%.2f cores)", fmtSeconds(secs/float64(r.Requests)), secs/r.Seconds)
		}
		fmt.Fprintf(&b, "CPU: verifybench %s", perRequest(r.ClientCPUSeconds))
		if r.ServerCPUSeconds > 0 {
			fmt.Fprintf(&b, "; daemon %s", perRequest(r.ServerCPUSeconds))
		}
		b.WriteByte('\n')
	}
	if r.StoppedEarly != "" {
		fmt.Fprintf(&b, "stopped early: %s\n", r.StoppedEarly)
	}
	b.WriteByte('\n')
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kind\trequests\terrors\treq/s\tp50\tp90\tp99\tp99.9\tmax\t")
	row := func(name string, n, errs int64, rate float64, l Latency) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t\n", name, n, errs, rate,
			fmtMicros(l.P50), fmtMicros(l.P90), fmtMicros(l.P99), fmtMicros(l.P999), fmtMicros(l.Max))
	}
	row("all", r.Requests, r.Errors, r.Throughput, r.Latency)
	for _, k := range r.Kinds {
		row(k.Kind, k.Requests, k.Errors, k.Throughput, k.Latency)
	}
	tw.Flush()
	if len(r.Failures) > 0 {
		b.WriteString("\nerrors:\n")
		for _, f := range r.Failures {
			fmt.Fprintf(&b, "  %d× %s\n", f.Count, f.What)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// fmtMicros formats a latency given in microseconds.
func fmtMicros(us float64) string { return fmtDuration(time.Duration(us * 1000)) }

// fmtDuration formats d with three significant digits: 812ns, 4.21µs,
// 35.2µs, 1.24ms, 2.50s.
func fmtDuration(d time.Duration) string {
	f := float64(d)
	unit := "ns"
	for _, u := range []struct {
		name string
		size float64
	}{{"s", 1e9}, {"ms", 1e6}, {"µs", 1e3}} {
		if f >= u.size {
			f /= u.size
			unit = u.name
			break
		}
	}
	switch {
	case unit == "ns" || f >= 100:
		return fmt.Sprintf("%.0f%s", f, unit)
	case f >= 10:
		return fmt.Sprintf("%.1f%s", f, unit)
	}
	return fmt.Sprintf("%.2f%s", f, unit)
}

func fmtSeconds(s float64) string { return fmtDuration(time.Duration(s * 1e9)) }
