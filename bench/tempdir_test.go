package bench

import (
	"os"
	"testing"
)

// tempDirs are the shared fixture directories, removed after all
// benchmarks ran.
var tempDirs []string

func mkdirTemp() (string, error) {
	d, err := os.MkdirTemp("", "verifyd-bench-")
	if err == nil {
		tempDirs = append(tempDirs, d)
	}
	return d, err
}

func TestMain(m *testing.M) {
	code := m.Run()
	if big != nil {
		big.store.Close()
	}
	for _, d := range tempDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}
