//go:build !race

package jwt

import (
	"testing"
)

// TestAllocations guards the allocation profile of Verify: a refusal for a
// bad base64url character allocates almost nothing, and an accepted HS256
// token stays well under the budget (the number is logged).
func TestAllocations(t *testing.T) {
	f := newFixture(t)
	valid := signHS256(hs1Secret, hdrHS1, benchClaims())
	h, p, s := parts(t, valid)

	t.Run("refused_bad_base64_char", func(t *testing.T) {
		bad := h + "." + p + "." + s[:10] + "*" + s[11:]
		_, _, err := f.v.Verify(bad, now)
		checkErr(t, err, ErrMalformed)
		allocs := testing.AllocsPerRun(1000, func() { f.v.Verify(bad, now) })
		t.Logf("refusal of a bad base64url character: %v allocations", allocs)
		if allocs > 2 {
			t.Errorf("refusal of a bad base64url character allocates %v times, want at most 2", allocs)
		}
	})

	t.Run("accepted_hs256", func(t *testing.T) {
		_, _, err := f.v.Verify(valid, now)
		checkErr(t, err, nil)
		allocs := testing.AllocsPerRun(1000, func() { f.v.Verify(valid, now) })
		t.Logf("accepted HS256 token of %d bytes: %v allocations", len(valid), allocs)
		if allocs > 40 {
			t.Errorf("accepted HS256 verify allocates %v times, want at most 40", allocs)
		}
	})
}
