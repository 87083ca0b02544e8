//go:build race

package jwt

// raceEnabled reports whether the race detector is on; allocation counts
// are not asserted under it.
const raceEnabled = true
