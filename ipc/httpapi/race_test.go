//go:build race

package httpapi

// raceEnabled is set when the tests run with -race, whose detector
// allocates: allocation counts are not asserted then.
const raceEnabled = true
