// Command verifyd is the token verification daemon. With no arguments it runs
// on the embedded default configuration: the store in ./data and HTTP on
// 127.0.0.1:8080, generating an admin key on first start. See README.md for
// the configuration reference.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/verifyd/verifyd/internal/config"
)

func main() {
	var usage bytes.Buffer
	cfg, reset, err := config.Load(os.Args[1:], os.Getenv, &usage)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(os.Stderr, "usage: verifyd [flags]\n\n"+usage.String())
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprint(os.Stderr, usage.String())
		fmt.Fprintf(os.Stderr, "verifyd: %v\n", err)
		os.Exit(exitConfig)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, cfg, reset, os.Stdout, os.Stderr))
}
