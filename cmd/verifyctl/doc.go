// Command verifyctl is the operator's command line for verifyd. It talks to a
// running daemon over its HTTP API: it creates, imports, lists, shows,
// revokes and rotates keys, revokes JWTs (by jti, or all of a subject's
// issued before a time) and lists those revocations, lists, approves and
// denies agents' access requests and revokes agents' keys, reads the audit
// trail, shows the state of the
// JWT trust sources, shows, reloads and explains the authorization policy
// (and validates a policy file offline, with policy check), and checks a
// token, optionally against a scope. The
// token check (verify) can also go over the daemon's Unix socket, with
// --socket PATH or $VERIFYD_SOCKET, and ping checks that the socket answers
// and prints the limits the daemon states on it.
//
// Usage:
//
//	verifyctl [--addr A] [--admin-key K] [-o table|json] [--timeout 10s] <command>
//
// The daemon address comes from --addr or $VERIFYD_ADDR (default
// http://127.0.0.1:8080; a bare host:port means http). The admin key comes
// from $VERIFYD_ADMIN_KEY or --admin-key; the environment variable is the
// safer choice, since command-line flags are visible to other users in ps.
// For a daemon that serves HTTPS, --cacert (or $VERIFYD_CACERT) names the
// CA bundle its certificate must chain to, and --cert and --cert-key (or
// $VERIFYD_CERT and $VERIFYD_CERT_KEY) the client certificate it asks
// for; with any of them a bare host:port means https.
// The socket comes from the --socket flag of verify and ping, or from
// $VERIFYD_SOCKET (for verify, only when --addr is not given).
// Flags may be given before or after positional arguments.
//
// Run "verifyctl help" for the commands, the handling of secrets and the exit
// statuses; the same text is in usage.go.
package main
