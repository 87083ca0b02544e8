// Command ratios reads `go test -bench` output and prints each hot-path
// stage of verifyd as a ratio to its floor benchmark (raw SHA-256, a map
// lookup, a raw ECDSA verification, an HMAC, a bare socket round trip,
// bare HTTP), with the target bench/README.md sets and whether it is met.
// Figures are medians over the runs of a benchmark (-count); a benchmark
// the input does not hold is shown as "—".
//
// Usage:
//
//	go run ./bench/ratios bench/out/new.txt
//	go test -bench . ./bench/ | go run ./bench/ratios -
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) != 1 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stderr, "usage: ratios FILE   (go test -bench output; - for standard input)")
		return 2
	}
	in := stdin
	if args[0] != "-" {
		f, err := os.Open(args[0])
		if err != nil {
			fmt.Fprintf(stderr, "ratios: %v\n", err)
			return 1
		}
		defer f.Close()
		in = f
	}
	rs, err := Parse(in)
	if err != nil {
		fmt.Fprintf(stderr, "ratios: %s: %v\n", args[0], err)
		return 1
	}
	if rs.Len() == 0 {
		fmt.Fprintf(stderr, "ratios: %s: no benchmark results\n", args[0])
		return 1
	}
	fmt.Fprintf(stdout, "Ratios to the floors (%s, %d benchmarks, medians over their runs):\n\n", args[0], rs.Len())
	if err := WriteTable(stdout, Report(rs, Stages)); err != nil {
		fmt.Fprintf(stderr, "ratios: %v\n", err)
		return 1
	}
	return 0
}
