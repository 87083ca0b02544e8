package loadgen

import (
	"encoding/base64"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/verifyd/verifyd/verify"
)

// request is one verification to send and the answer it must get.
type request struct {
	kind     Kind
	measured bool // counted in the report (false while warming up)
	want     verify.Reason
	token    string
	scope    string
	subject  string // the subject an allowed answer must name
	credKind string // the credential kind an allowed answer must name
}

// A source hands out the requests of a phase of the run to the workers.
// Its next method is called by every worker concurrently.
type source interface {
	// next returns w's next request, or false when there is none left for
	// w to send.
	next(w *worker) (request, bool)
}

// Flushing of a worker's samples to the recorder.
const (
	flushSamples  = 256
	flushInterval = 200 * time.Millisecond
)

// worker is the state of one connection's loop that does not depend on
// the transport: the requests it draws and the answers it records. It is
// used by one goroutine.
type worker struct {
	rng       *rand.Rand
	rec       *recorder
	samples   []sample
	errs      [numKinds]int64
	lost      [numKinds]int64
	failures  map[string]int64
	lastFlush time.Time

	// The block of request numbers the worker draws from (scheduleSource).
	blockN, blockEnd int64
	blockPhase       int32
}

func newWorker(rec *recorder, seed uint64) *worker {
	return &worker{
		rng:       rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		rec:       rec,
		samples:   make([]sample, 0, flushSamples),
		failures:  map[string]int64{},
		lastFlush: time.Now(),
	}
}

// answered records the answer to req, sent at sent and read at now;
// failure says what was wrong with it ("" for nothing).
func (w *worker) answered(req *request, sent, now time.Time, failure string) {
	if !req.measured {
		return
	}
	w.samples = append(w.samples, sample{kind: req.kind, ns: now.Sub(sent).Nanoseconds()})
	if failure != "" {
		w.errs[req.kind]++
		w.failures[req.kind.String()+": "+failure]++
	}
	if len(w.samples) >= flushSamples || now.Sub(w.lastFlush) >= flushInterval {
		w.flush(now)
	}
}

// lostRequest records that req got no answer, for the reason why.
func (w *worker) lostRequest(req *request, why string) {
	if !req.measured {
		return
	}
	w.errs[req.kind]++
	w.lost[req.kind]++
	w.failures[req.kind.String()+": no answer: "+why]++
}

// flush hands the pending samples and counts to the recorder.
func (w *worker) flush(now time.Time) {
	w.rec.add(w.samples, &w.errs, &w.lost, w.failures, now)
	w.samples = w.samples[:0]
	w.errs, w.lost = [numKinds]int64{}, [numKinds]int64{}
	clear(w.failures)
	w.lastFlush = now
}

// check returns what is wrong with an answer of status got, naming subject
// and kind, to req; "" when it is the expected answer.
func check(req *request, got verify.Reason, subject, kind []byte) string {
	switch {
	case got != req.want:
		return "want " + req.want.String() + ", got " + got.String()
	case got != verify.OK:
		return ""
	case string(subject) != req.subject:
		return "the answer names another subject"
	case string(kind) != req.credKind:
		return "the answer names kind " + strings.ToValidUTF8(string(kind), "?") + ", want " + req.credKind
	}
	return ""
}

// The phases of a scheduled run.
const (
	phaseWarmup int32 = iota
	phaseMeasure
	phaseStop
)

// blockSize is the number of request numbers a worker claims at once.
const blockSize = 64

// workload is what the requests are made of.
type workload struct {
	keys           []key
	forged         []string // forged keys, derived from keys
	hit            []string // the JWTHit tokens
	hitSubjects    []string
	cold           []string // the JWTCold tokens, each sent once
	scope          string
	forbiddenScope string
}

// scheduleSource sends the mix: warm-up requests until the phase changes,
// then measured ones until the limit (if any) or the stop. The n-th
// measured request, whichever worker sends it, is of kind
// sched[n%len(sched)].
type scheduleSource struct {
	wl    *workload
	sched []Kind
	limit int64 // measured requests to send; 0: until the stop
	phase atomic.Int32
	warmN atomic.Int64
	measN atomic.Int64
	coldN atomic.Int64
	// exhausted is set when a JWTCold request found no token left.
	exhausted atomic.Bool
}

func (s *scheduleSource) next(w *worker) (request, bool) {
	ph := s.phase.Load()
	if ph == phaseStop {
		return request{}, false
	}
	if w.blockPhase != ph || w.blockN == w.blockEnd {
		ctr := &s.warmN
		if ph == phaseMeasure {
			ctr = &s.measN
		}
		end := ctr.Add(blockSize)
		start := end - blockSize
		if ph == phaseMeasure && s.limit > 0 {
			if start >= s.limit {
				return request{}, false
			}
			end = min(end, s.limit)
		}
		w.blockN, w.blockEnd, w.blockPhase = start, end, ph
	}
	k := s.sched[w.blockN%int64(len(s.sched))]
	w.blockN++
	measured := ph == phaseMeasure
	if k == JWTCold {
		if !measured {
			// Warming up: a cold token is not spent; a hit token serves.
			k = JWTHit
		} else if i := s.coldN.Add(1) - 1; i < int64(len(s.wl.cold)) {
			return request{kind: JWTCold, measured: true, want: verify.OK, token: s.wl.cold[i], scope: s.wl.scope, subject: coldSubject, credKind: "jwt"}, true
		} else {
			s.exhausted.Store(true)
			s.phase.Store(phaseStop)
			return request{}, false
		}
	}
	return s.wl.request(w, k, measured), true
}

// request returns a request of kind k, with its key or token picked at
// random. k is not JWTCold.
func (wl *workload) request(w *worker, k Kind, measured bool) request {
	r := request{kind: k, measured: measured, scope: wl.scope, credKind: "api_key"}
	switch k {
	case OpaqueHit, Forbidden:
		key := &wl.keys[w.rng.IntN(len(wl.keys))]
		r.token, r.subject = key.secret, key.subject
		r.want = verify.OK
		if k == Forbidden {
			r.scope, r.want = wl.forbiddenScope, verify.Forbidden
		}
	case Forged:
		r.token, r.want = wl.forged[w.rng.IntN(len(wl.forged))], verify.Malformed
	case Unknown:
		r.token, r.want = unknownKey(w.rng), verify.Unknown
	case JWTHit:
		i := w.rng.IntN(len(wl.hit))
		r.token, r.subject, r.credKind, r.want = wl.hit[i], wl.hitSubjects[i], "jwt", verify.OK
	}
	return r
}

// unknownKey returns a fresh agent key (43 base64url characters encoding
// 32 random bytes): well-formed, and no record has it.
func unknownKey(rng *rand.Rand) string {
	var b [32]byte
	for {
		for i := 0; i < len(b); i += 8 {
			v := rng.Uint64()
			for j := range 8 {
				b[i+j] = byte(v >> (8 * j))
			}
		}
		s := base64.RawURLEncoding.EncodeToString(b[:])
		// Those prefixes are reserved for API keys and PATs.
		if !strings.HasPrefix(s, "vk_") && !strings.HasPrefix(s, "pat_") {
			return s
		}
	}
}

// primeSource verifies every key and every JWTHit token once, so that
// the measured requests of those kinds are cache hits.
type primeSource struct {
	wl *workload
	n  atomic.Int64
}

func (s *primeSource) next(*worker) (request, bool) {
	i := int(s.n.Add(1) - 1)
	wl := s.wl
	switch {
	case i < len(wl.keys):
		k := &wl.keys[i]
		return request{kind: OpaqueHit, measured: true, want: verify.OK, token: k.secret, scope: wl.scope, subject: k.subject, credKind: "api_key"}, true
	case i < len(wl.keys)+len(wl.hit):
		i -= len(wl.keys)
		return request{kind: JWTHit, measured: true, want: verify.OK, token: wl.hit[i], scope: wl.scope, subject: wl.hitSubjects[i], credKind: "jwt"}, true
	}
	return request{}, false
}
