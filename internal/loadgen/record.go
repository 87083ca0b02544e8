package loadgen

import (
	"sort"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds: latencies are recorded in nanoseconds from 1 ns to
// one minute (longer ones count as one minute) with 3 significant digits.
const (
	histMax    = int64(time.Minute)
	histDigits = 3
	// maxFailures bounds the distinct failure descriptions kept.
	maxFailures = 20
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(1, histMax, histDigits) }

// sample is one measured answer.
type sample struct {
	kind Kind
	ns   int64
}

// recorder collects the measured answers of every connection. Connections
// hand it samples in batches, so its lock is taken once per batch. It is
// safe for concurrent use.
type recorder struct {
	mu       sync.Mutex
	all      *hdrhistogram.Histogram
	kinds    [numKinds]*hdrhistogram.Histogram
	errs     [numKinds]int64  // wrong answers and lost requests
	lost     [numKinds]int64  // requests whose connection failed before their answer
	failures map[string]int64 // what went wrong, how often
	last     time.Time        // when the last measured answer arrived
}

func newRecorder() *recorder {
	r := &recorder{all: newHist(), failures: map[string]int64{}}
	for k := range r.kinds {
		r.kinds[k] = newHist()
	}
	return r
}

// add records samples, errors and lost requests per kind and failure
// descriptions, all arrived by at.
func (r *recorder) add(samples []sample, errs, lost *[numKinds]int64, failures map[string]int64, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range samples {
		v := min(max(s.ns, 1), histMax)
		r.kinds[s.kind].RecordValue(v)
		r.all.RecordValue(v)
	}
	for k := range numKinds {
		r.errs[k] += errs[k]
		r.lost[k] += lost[k]
	}
	for what, n := range failures {
		if _, ok := r.failures[what]; ok || len(r.failures) < maxFailures {
			r.failures[what] += n
		} else {
			r.failures["other failures"] += n
		}
	}
	if len(samples) > 0 && at.After(r.last) {
		r.last = at
	}
}

// progress returns the answers and errors recorded so far and their p99.
func (r *recorder) progress() (answers, errs int64, p99 time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.errs {
		errs += n
	}
	return r.all.TotalCount(), errs, time.Duration(r.all.ValueAtQuantile(99))
}

// errors returns the number of errors recorded.
func (r *recorder) errors() int64 {
	_, errs, _ := r.progress()
	return errs
}

// failureList returns the failure descriptions, most frequent first.
func (r *recorder) failureList() []Failure {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Failure, 0, len(r.failures))
	for what, n := range r.failures {
		out = append(out, Failure{What: what, Count: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].What < out[j].What
	})
	return out
}
