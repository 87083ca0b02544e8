package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is the release version, set at link time with
// -ldflags "-X main.version=v1.2.3". When empty, the module version and VCS
// revision recorded by the go command are used.
var version string

var versionCmd = &command{
	name:     "version",
	synopsis: "version",
	summary:  "print the version of verifyctl",
	help:     "Prints the version of verifyctl and of the Go toolchain that built it.\n",
	bind: func(*flag.FlagSet) func(context.Context, *session, []string) error {
		return func(_ context.Context, s *session, _ []string) error {
			_, err := fmt.Fprintf(s.stdout, "verifyctl %s %s\n", buildVersion(), runtime.Version())
			return err
		}
	},
}

// buildVersion returns version, or what the build information records.
func buildVersion() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := info.Main.Version
	for _, st := range info.Settings {
		if st.Key == "vcs.revision" && len(st.Value) >= 12 {
			v += " " + st.Value[:12]
		}
	}
	return v
}
