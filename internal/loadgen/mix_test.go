package loadgen

import (
	"strings"
	"testing"
)

func TestParseMix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		want     Mix
		err      []string // substrings every one of which the error holds
	}{
		{name: "default", in: DefaultMix, want: Mix{OpaqueHit: 90, JWTHit: 5, JWTCold: 1, Unknown: 2, Forged: 1, Forbidden: 1}},
		{name: "one kind", in: "unknown=3", want: Mix{Unknown: 3}},
		{name: "spaces and zero", in: " opaque_hit = 7 , forged=0", want: Mix{OpaqueHit: 7}},
		{name: "empty", in: "", err: []string{"empty entry"}},
		{name: "trailing comma", in: "opaque_hit=1,", err: []string{"empty entry"}},
		{name: "no weight", in: "opaque_hit", err: []string{"want kind=weight"}},
		{name: "unknown kind", in: "opaque=1", err: []string{`unknown kind "opaque"`, "opaque_hit, jwt_hit"}},
		{name: "negative", in: "opaque_hit=-1", err: []string{"integer from 0"}},
		{name: "not a number", in: "opaque_hit=1.5", err: []string{"integer from 0"}},
		{name: "twice", in: "forged=1,forged=2", err: []string{"forged given twice"}},
		{name: "all zero", in: "forged=0,unknown=0", err: []string{"every weight is 0"}},
		{name: "too large", in: "forged=1000000,unknown=999999", err: []string{"more than 1000000"}},
		{name: "every problem", in: "x=1,forged=-2", err: []string{`unknown kind "x"`, `"forged=-2"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseMix(tc.in)
			if tc.err != nil {
				if err == nil {
					t.Fatalf("ParseMix(%q) = %v, want an error", tc.in, got)
				}
				for _, s := range tc.err {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("ParseMix(%q) error %q does not say %q", tc.in, err, s)
					}
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseMix(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
			if again, err := ParseMix(got.String()); err != nil || again != got {
				t.Errorf("ParseMix(%q) (the String of the result) = %v, %v", got.String(), again, err)
			}
		})
	}
}

func TestSchedule(t *testing.T) {
	t.Parallel()
	m, _ := ParseMix("opaque_hit=60,unknown=20,forged=20")
	s := m.schedule()
	// Weights 60:20:20 reduce to 3:1:1.
	if len(s) != 5 {
		t.Fatalf("schedule %v: length %d, want 5", s, len(s))
	}
	counts := map[Kind]int{}
	for i, k := range s {
		counts[k]++
		if i > 0 && k != OpaqueHit && s[i-1] == k {
			t.Errorf("schedule %v sends %s twice in a row", s, k)
		}
	}
	if counts[OpaqueHit] != 3 || counts[Unknown] != 1 || counts[Forged] != 1 {
		t.Errorf("schedule %v: counts %v", s, counts)
	}
	d, _ := ParseMix(DefaultMix)
	sched := d.schedule()
	for _, n := range []int64{0, 1, 99, 100, 101, 2000, 12345} {
		for k := range numKinds {
			want := int64(0)
			for i := range n {
				if sched[i%int64(len(sched))] == k {
					want++
				}
			}
			if got := countIn(sched, k, n); got != want {
				t.Errorf("countIn(%s, %d) = %d, want %d", k, n, got, want)
			}
		}
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		o    Options
		err  string // "" for valid
	}{
		{name: "socket and duration", o: Options{Socket: "/s", Duration: 1e9, Mix: Mix{OpaqueHit: 1}}},
		{name: "http and requests", o: Options{Addr: "http://127.0.0.1:1", Requests: 10, Mix: Mix{OpaqueHit: 1}}},
		{name: "unbounded", o: Options{Socket: "/s", Mix: Mix{OpaqueHit: 1}}, err: "every run is bounded"},
		{name: "both bounds", o: Options{Socket: "/s", Duration: 1e9, Requests: 1, Mix: Mix{OpaqueHit: 1}}, err: "not both"},
		{name: "too long", o: Options{Socket: "/s", Duration: MaxDuration + 1, Mix: Mix{OpaqueHit: 1}}, err: "duration"},
		{name: "no target", o: Options{Requests: 1, Mix: Mix{OpaqueHit: 1}}, err: "exactly one target"},
		{name: "two targets", o: Options{Socket: "/s", Addr: "http://127.0.0.1:1", Requests: 1, Mix: Mix{OpaqueHit: 1}}, err: "exactly one target"},
		{name: "https", o: Options{Addr: "https://127.0.0.1:1", Requests: 1, Mix: Mix{OpaqueHit: 1}}, err: "https is not supported"},
		{name: "jwt without key set", o: Options{Socket: "/s", Requests: 1, Mix: Mix{JWTHit: 1}}, err: "--jwks-listen"},
		{name: "key set not on loopback", o: Options{Socket: "/s", Requests: 1, Mix: Mix{JWTHit: 1}, JWKSListen: "0.0.0.0:9000"}, err: "loopback"},
		{name: "setup only", o: Options{Socket: "/s", SaveKeys: "/tmp/k", Mix: Mix{OpaqueHit: 1}}},
		{name: "save and load", o: Options{Socket: "/s", Requests: 1, SaveKeys: "/a", KeysFrom: "/b", Mix: Mix{OpaqueHit: 1}}, err: "not both"},
		{name: "depth", o: Options{Socket: "/s", Requests: 1, Depth: MaxDepth + 1, Mix: Mix{OpaqueHit: 1}}, err: "depth"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.o.EnsureDefaults()
			err := tc.o.Validate()
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("Validate = %v, want an error saying %q", err, tc.err)
			}
		})
	}
}

func TestColdTokens(t *testing.T) {
	t.Parallel()
	m, _ := ParseMix(DefaultMix)
	sched := m.schedule()
	o := Options{Mix: m, Requests: 2000}
	if got := o.coldTokens(sched); got != 20 {
		t.Errorf("cold tokens for 2000 requests at 1%%: %d, want 20", got)
	}
	o = Options{Mix: m, Duration: 10e9}
	if got := o.coldTokens(sched); got != 100_000 {
		t.Errorf("cold tokens for 10s at 1%%: %d, want 100000 (1%% of 1M/s)", got)
	}
	o = Options{Mix: m, Duration: MaxDuration}
	if got := o.coldTokens(sched); got != maxDefaultColdTokens {
		t.Errorf("cold tokens for an hour: %d, want the cap %d", got, maxDefaultColdTokens)
	}
	o = Options{Mix: Mix{OpaqueHit: 1}, Duration: 10e9}
	if got := o.coldTokens(Mix{OpaqueHit: 1}.schedule()); got != 0 {
		t.Errorf("cold tokens without jwt_cold: %d", got)
	}
}
