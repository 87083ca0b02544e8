package main

import (
	"context"
	"errors"
	"flag"

	"github.com/verifyd/verifyd/internal/adminclient"
)

var verifyCmd = &command{
	name:     "verify",
	synopsis: "verify (TOKEN | --token-file F | --token-stdin) [--scope S] [--socket PATH]",
	summary:  "check a token, optionally against a scope",
	help: `Asks the daemon whether a token is valid and, with --scope, whether it grants
that scope. No admin key is needed.

Prefer --token-file or --token-stdin to a TOKEN argument: an argument is visible
to other users in ps and stays in the shell's history. One trailing newline is
ignored.

With --socket, or when $VERIFYD_SOCKET is set and --addr is not given, the
question goes over the daemon's Unix socket instead of HTTP, with the same
output and exit statuses. The socket protocol does not carry the credential's
own scopes, the policy's reason or what matched (beyond the grant), so those
lines are left out.

Over HTTP, the reason line says why the daemon's authorization policy allowed
or denied the scope (granted, not_on_acl, no_grant, stream_role, ...) and the
matched line which role (in which project) and pattern granted it; "policy
explain" shows every candidate.

The exit status is 0 when the token is allowed, 1 when it is denied, 2 when the
scope is malformed (or the token or scope is longer than the daemon accepts)
and 3 when the daemon cannot decide (unreachable, 5xx, unavailable).

Flags:
  --scope S                   the scope to check, e.g. tool:data:read
  --token-file F              read the token from file F
  --token-stdin               read the token from standard input
  --socket PATH               ask over the Unix socket at PATH
                              (default $VERIFYD_SOCKET unless --addr is given)
`,
	maxArgs: 1,
	bind: func(fs *flag.FlagSet) func(context.Context, *session, []string) error {
		var (
			scope, file, socket string
			fromStdin           bool
		)
		fs.StringVar(&scope, "scope", "", "")
		fs.StringVar(&file, "token-file", "", "")
		fs.BoolVar(&fromStdin, "token-stdin", false, "")
		fs.StringVar(&socket, "socket", "", "")
		return func(ctx context.Context, s *session, args []string) error {
			sources := len(args)
			if file != "" {
				sources++
			}
			if fromStdin {
				sources++
			}
			if sources != 1 {
				return usagef("verify", "give exactly one of TOKEN, --token-file and --token-stdin")
			}
			path := s.socketPath(socket)
			var c *adminclient.Client
			if path == "" {
				var err error
				if c, err = s.client(false); err != nil {
					return err
				}
			} else if s.g.timeout <= 0 {
				return usagef("verify", "--timeout must be positive")
			}
			var token string
			if len(args) == 1 {
				token = args[0]
			} else {
				var err error
				if token, err = readSecret(s.stdin, file, "token"); err != nil {
					return usagef("verify", "%v", err)
				}
			}
			if path != "" {
				return verifySocket(ctx, s, path, token, scope)
			}
			res, err := c.Verify(ctx, token, scope)
			var ae *adminclient.APIError
			if errors.As(err, &ae) && res.Status != "" && s.g.output.json {
				// The daemon explained its refusal with a decision body
				// (invalid_scope, unavailable): scripts get it too.
				if perr := s.printJSON(res); perr != nil {
					return perr
				}
			}
			if err != nil {
				return err
			}
			if perr := s.printDecision(res); perr != nil {
				return perr
			}
			if !res.Allow {
				msg := res.Message
				if msg == "" {
					msg = "denied: " + res.Status
				}
				return &deniedError{msg: msg}
			}
			return nil
		}
	},
}
