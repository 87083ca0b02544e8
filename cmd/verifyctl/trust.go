package main

import (
	"context"
	"flag"
	"fmt"
)

// noTrustNotice is printed on standard error when the daemon has no trust
// source.
const noTrustNotice = "verifyctl: no trust sources are configured on the daemon; it refuses every JWT as untrusted_key"

var trustStatusCmd = &command{
	name:     "trust status",
	synopsis: "trust status",
	summary:  "show the state of the JWT trust sources",
	help: `Shows the daemon's JWT trust sources, in the order of its configuration: for
each, its type (jwks_file, jwks_url, oidc_issuer or hs256), the keys it
contributes, the keys of its key set that were skipped (not ES256 verification
keys), the time of its last good load or fetch, whether it is stale, and the
error of its last load or fetch ("-" when that succeeded).

A fetched source (jwks_url, oidc_issuer) is stale when its last good fetch is
older than the daemon's trust.max_staleness, or when it never had one: it then
verifies no token until a fetch succeeds.

The exit status is 0 whatever the state of the sources. A daemon without trust
sources lists none, and a note saying so goes to standard error.
`,
	maxArgs: 0,
	bind: func(*flag.FlagSet) func(context.Context, *session, []string) error {
		return func(ctx context.Context, s *session, _ []string) error {
			c, err := s.client(true)
			if err != nil {
				return err
			}
			sources, err := c.TrustStatus(ctx)
			if err != nil {
				return err
			}
			if err := s.printTrust(sources); err != nil {
				return err
			}
			if len(sources) == 0 {
				fmt.Fprintln(s.stderr, noTrustNotice)
			}
			return nil
		}
	},
}
