package main

import (
	"fmt"
	"io"
	"strings"
)

const helpIntro = `verifyctl manages keys, personal access tokens, agents' access requests and JWT
revocations on a running verifyd daemon, reads its audit trail, shows the
state of its JWT trust sources and of its authorization policy (which it can
reload and explain), and checks tokens
against it, over its HTTP API or, for verify and ping, its Unix socket. policy
check validates a policy file offline.

Usage:
  verifyctl [global flags] <command> [flags] [arguments]
`

const helpGlobals = `Global flags (accepted before or after the command and its arguments):
  --addr ADDR                 daemon address: http(s) URL or host:port
                              (default $VERIFYD_ADDR, else http://127.0.0.1:8080)
  --admin-key KEY             admin key, needed by every command but verify,
                              ping, policy check and version. Prefer setting $VERIFYD_ADMIN_KEY: a flag
                              is visible to other users in ps and stays in the
                              shell's history.
  -o table|json               output format (default table)
  --timeout D                 time limit for each request (default 10s)
  --cacert FILE               PEM CA bundle the daemon's HTTPS certificate must
                              chain to (default $VERIFYD_CACERT, else the
                              system's roots)
  --cert FILE, --cert-key FILE
                              PEM client certificate and its key, for a daemon
                              that asks for one (default $VERIFYD_CERT,
                              $VERIFYD_CERT_KEY); with any of these three, a
                              bare host:port address means https
`

const helpDetails = `Environment:
  VERIFYD_ADDR                default for --addr
  VERIFYD_ADMIN_KEY           the admin key (preferred over --admin-key)
  VERIFYD_SOCKET              default for the --socket of verify (unless --addr
                              is given) and ping
  VERIFYD_CACERT, VERIFYD_CERT, VERIFYD_CERT_KEY
                              defaults for --cacert, --cert and --cert-key

Output:
  Table mode prints aligned tables and field lists for people. -o json prints the
  daemon's JSON objects, indented, for scripts.

Secrets:
  keys create and keys rotate (and pats create and pats reset) print the new
  secret alone on standard output, so that it can be captured or redirected:
      verifyctl keys create --subject alice > alice.key
  The key's details and a reminder that the secret is shown only once go to
  standard error. With -o json the whole key, secret included, goes to standard
  output. keys import reads the secret from a file or standard input, never from
  the command line; verify can too (--token-file, --token-stdin) and should.
  verifyctl never prints the admin key.

Exit status:
  0  success; for verify, the token is allowed; for policy explain, the
     scope is allowed
  1  the daemon refused: token denied (401/403), scope denied (policy
     explain), no such key (404), admin key rejected, nothing to reload (409),
     rate limited
  2  usage error, missing admin key, a request the daemon rejected as
     malformed (400, e.g. an invalid scope or a jti over 1024 bytes), or an
     invalid policy file (policy check, policy reload)
  3  the daemon is unreachable or timed out, answered 5xx (or unavailable on
     the socket), or answered outside its API
`

// printHelp writes the help for cmd, or the overall help when cmd is nil.
func printHelp(w io.Writer, cmd *command) {
	if cmd != nil {
		fmt.Fprintf(w, "Usage:\n  verifyctl %s\n\n%s\n%s", cmd.synopsis, cmd.help, helpGlobals)
		return
	}
	var b strings.Builder
	b.WriteString(helpIntro)
	b.WriteString("\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-26s  %s\n", c.name, c.summary)
	}
	fmt.Fprintf(&b, "  %-26s  %s\n", "help [command]", "show help for a command")
	b.WriteString("\n" + helpGlobals + "\n" + helpDetails)
	io.WriteString(w, b.String())
}

// helpCommand runs "verifyctl help [command words]".
func helpCommand(w io.Writer, words []string) error {
	if len(words) == 0 || len(words) == 1 && groups[words[0]] != "" {
		printHelp(w, nil)
		return nil
	}
	name := strings.Join(words, " ")
	cmd := lookup(name)
	if cmd == nil {
		return usagef("", "no help for unknown command %q", name)
	}
	printHelp(w, cmd)
	return nil
}
