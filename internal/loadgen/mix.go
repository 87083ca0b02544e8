package loadgen

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Kind is one kind of request in a workload mix.
type Kind uint8

// The kinds of request, each with the answer it must get.
const (
	// OpaqueHit verifies a created API key for a scope it grants: ok, from
	// the daemon's cache (every key is verified once before the run).
	OpaqueHit Kind = iota
	// JWTHit verifies an ES256 token of a fixed set for a scope it grants:
	// ok, from the daemon's verified-token cache.
	JWTHit
	// JWTCold verifies an ES256 token the daemon has never seen: ok, after
	// a signature verification. Each token is minted before the run and
	// sent once.
	JWTCold
	// Unknown verifies a well-formed agent key no record has: unknown.
	Unknown
	// Forged verifies a created API key with one checksum character
	// changed: malformed, refused by the checksum before any lookup.
	Forged
	// Forbidden verifies a created API key for a scope it does not grant:
	// forbidden.
	Forbidden
	numKinds
)

var kindNames = [numKinds]string{
	OpaqueHit: "opaque_hit",
	JWTHit:    "jwt_hit",
	JWTCold:   "jwt_cold",
	Unknown:   "unknown",
	Forged:    "forged",
	Forbidden: "forbidden",
}

// String returns the kind's name as the mix and the reports spell it.
func (k Kind) String() string {
	if k >= numKinds {
		return "invalid"
	}
	return kindNames[k]
}

// DefaultMix is the mix used when Options.Mix is empty.
const DefaultMix = "opaque_hit=90,jwt_hit=5,jwt_cold=1,unknown=2,forged=1,forbidden=1"

// maxMixTotal bounds the sum of a mix's weights (after dividing them by
// their greatest common divisor): the schedule holds one entry per unit.
const maxMixTotal = 1_000_000

// Mix is the relative weight of each kind of request. The zero Mix sends
// nothing.
type Mix [numKinds]int

// ParseMix parses a mix such as "opaque_hit=90,jwt_hit=5,unknown=5": kinds
// with non-negative integer weights, separated by commas. A kind not named
// has weight 0; at least one weight must be positive. Every problem is
// reported.
func ParseMix(s string) (Mix, error) {
	var m Mix
	var errs []error
	seen := [numKinds]bool{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			errs = append(errs, fmt.Errorf("loadgen: mix %q: empty entry", s))
			continue
		}
		name, w, ok := strings.Cut(part, "=")
		if !ok {
			errs = append(errs, fmt.Errorf("loadgen: mix entry %q: want kind=weight", part))
			continue
		}
		k, ok := kindByName(strings.TrimSpace(name))
		if !ok {
			errs = append(errs, fmt.Errorf("loadgen: mix entry %q: unknown kind %q (kinds: %s)", part, name, strings.Join(kindNames[:], ", ")))
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil || n < 0 || n > maxMixTotal {
			errs = append(errs, fmt.Errorf("loadgen: mix entry %q: weight must be an integer from 0 to %d", part, maxMixTotal))
			continue
		}
		if seen[k] {
			errs = append(errs, fmt.Errorf("loadgen: mix %q: %s given twice", s, k))
			continue
		}
		seen[k] = true
		m[k] = n
	}
	if len(errs) == 0 && m.total() == 0 {
		errs = append(errs, fmt.Errorf("loadgen: mix %q: every weight is 0", s))
	}
	if len(errs) == 0 && m.reduced().total() > maxMixTotal {
		errs = append(errs, fmt.Errorf("loadgen: mix %q: the weights add up to more than %d", s, maxMixTotal))
	}
	if len(errs) > 0 {
		return Mix{}, errors.Join(errs...)
	}
	return m, nil
}

func kindByName(name string) (Kind, bool) {
	for k, n := range kindNames {
		if n == name {
			return Kind(k), true
		}
	}
	return 0, false
}

// String returns the mix in the form ParseMix reads, kinds of weight 0
// left out.
func (m Mix) String() string {
	var b strings.Builder
	for k, w := range m {
		if w == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%d", Kind(k), w)
	}
	return b.String()
}

func (m Mix) total() int {
	t := 0
	for _, w := range m {
		t += w
	}
	return t
}

// reduced returns m with every weight divided by their greatest common
// divisor.
func (m Mix) reduced() Mix {
	g := 0
	for _, w := range m {
		g = gcd(g, w)
	}
	if g <= 1 {
		return m
	}
	for k := range m {
		m[k] /= g
	}
	return m
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// needsKeys reports whether the mix sends created API keys.
func (m Mix) needsKeys() bool { return m[OpaqueHit]+m[Forged]+m[Forbidden] > 0 }

// needsJWT reports whether the mix sends JWTs.
func (m Mix) needsJWT() bool { return m[JWTHit]+m[JWTCold] > 0 }

// schedule returns the order in which kinds are sent: one period of a
// smooth weighted round robin over the reduced weights, so that every
// kind is spread evenly over the period instead of sent in a run. The
// n-th request of a run is of kind schedule[n%len(schedule)], whichever
// connection sends it.
func (m Mix) schedule() []Kind {
	m = m.reduced()
	total := m.total()
	out := make([]Kind, 0, total)
	var cur [numKinds]int
	for range total {
		best := -1
		for k, w := range m {
			if w == 0 {
				continue
			}
			cur[k] += w
			if best < 0 || cur[k] > cur[best] {
				best = k
			}
		}
		cur[best] -= total
		out = append(out, Kind(best))
	}
	return out
}

// countIn returns how many of the first n requests of a run are of kind k.
func countIn(sched []Kind, k Kind, n int64) int64 {
	per := int64(0)
	for _, s := range sched {
		if s == k {
			per++
		}
	}
	p := int64(len(sched))
	c := n / p * per
	for _, s := range sched[:n%p] {
		if s == k {
			c++
		}
	}
	return c
}
