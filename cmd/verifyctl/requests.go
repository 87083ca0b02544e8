package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/verifyd/verifyd/internal/adminclient"
)

var requestsListCmd = &command{
	name:     "requests list",
	synopsis: "requests list [--status pending|approved|denied|expired|all]",
	summary:  "list agents' access requests",
	help: `Lists the agents' access requests, oldest first: by default the pending ones,
which wait for requests approve or requests deny. Request tokens are never
shown; approve and deny take the request's id.

Flags:
  --status S                  pending (the default), approved, denied,
                              expired or all
`,
	maxArgs: 0,
	bind: func(fs *flag.FlagSet) func(context.Context, *session, []string) error {
		var status string
		fs.StringVar(&status, "status", "pending", "")
		return func(ctx context.Context, s *session, _ []string) error {
			c, err := s.client(true)
			if err != nil {
				return err
			}
			rs, err := c.ListRequests(ctx, status)
			if err != nil {
				return err
			}
			return s.printRequests(rs)
		}
	},
}

var requestsGetCmd = idCommand("requests get", "show one access request",
	"Shows the access request with id ID (or request token ID).\n",
	(*adminclient.Client).GetRequest, (*session).printRequest)

var requestsApproveCmd = &command{
	name:     "requests approve",
	synopsis: "requests approve ID [--role R]... [--scope P]... [--expires-in 2160h]",
	summary:  "approve an access request; the agent's key is shown once",
	help: `Approves the pending access request with id ID and prints the agent's new key
(kind agent, subject the agent's id), which the daemon shows only this once:
pass it to the agent. In table mode the key alone goes to standard output and
the details to standard error; with -o json the whole answer goes to standard
output. A request is decided once: approving it again, or after a denial or
its expiry, fails (exit status 1, CONFLICT).

Without --role or --scope the key gets the daemon's defaults
(requests.default_roles and requests.default_scopes: role agent and
mailbox:<agent id>:*, unless configured otherwise).

Flags:
  --role R                    role of the key (repeatable)
  --scope P                   scope pattern of the key (repeatable)
  --expires-in D              validity, e.g. 720h (default:
                              requests.key_validity, 90 days)
`,
	minArgs: 1,
	maxArgs: 1,
	bind: func(fs *flag.FlagSet) func(context.Context, *session, []string) error {
		var roles, scopes listValue
		var expiresIn time.Duration
		fs.Var(&roles, "role", "")
		fs.Var(&scopes, "scope", "")
		fs.DurationVar(&expiresIn, "expires-in", 0, "")
		return func(ctx context.Context, s *session, args []string) error {
			if expiresIn < 0 {
				return usagef("requests approve", "--expires-in must not be negative")
			}
			c, err := s.client(true)
			if err != nil {
				return err
			}
			a, err := c.ApproveRequest(ctx, args[0], adminclient.ApproveRequest{Roles: roles, Scopes: scopes, ExpiresIn: adminclient.Duration(expiresIn)})
			if err != nil {
				return err
			}
			return s.printApproval(a)
		}
	},
}

var requestsDenyCmd = idCommand("requests deny", "deny an access request",
	"Denies the pending access request with id ID. The agent sees \"denied\" when it\n"+
		"polls, and may ask again. A request is decided once.\n",
	(*adminclient.Client).DenyRequest, (*session).printRequest)

var agentsRevokeCmd = &command{
	name:     "agents revoke",
	synopsis: "agents revoke AGENT_ID",
	summary:  "revoke every live key of an agent",
	help: `Revokes every live key whose subject is AGENT_ID: from the moment the command
returns, the daemon refuses them, and the agent may ask for a key again.
Prints the ids of the keys revoked.
`,
	minArgs: 1,
	maxArgs: 1,
	bind: func(*flag.FlagSet) func(context.Context, *session, []string) error {
		return func(ctx context.Context, s *session, args []string) error {
			c, err := s.client(true)
			if err != nil {
				return err
			}
			r, err := c.RevokeAgent(ctx, args[0])
			if err != nil {
				return err
			}
			if s.g.output.json {
				if r.Revoked == nil {
					r.Revoked = []string{}
				}
				return s.printJSON(r)
			}
			fmt.Fprintf(s.stdout, "revoked %d live keys of %s\n", len(r.Revoked), clean(r.AgentID))
			for _, id := range r.Revoked {
				fmt.Fprintln(s.stdout, clean(id))
			}
			return nil
		}
	},
}

// printRequests prints access requests: as JSON, or as an aligned table.
func (s *session) printRequests(rs []adminclient.AccessRequest) error {
	if s.g.output.json {
		if rs == nil {
			rs = []adminclient.AccessRequest{}
		}
		return s.printJSON(adminclient.RequestList{Requests: rs})
	}
	tw := newTabWriter(s.stdout)
	fmt.Fprintln(tw, "ID\tAGENT\tNAME\tSTATUS\tFROM\tCREATED\tEXPIRES\tKEY")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", clean(r.ID), clean(r.AgentID), clean(r.Name), clean(r.Status),
			clean(r.ClientAddr), fmtTime(r.CreatedAt), fmtTime(r.ExpiresAt), clean(r.KeyID))
	}
	return tw.Flush()
}

// printRequest prints one access request: as JSON, or as a field list.
func (s *session) printRequest(r adminclient.AccessRequest) error {
	if s.g.output.json {
		return s.printJSON(r)
	}
	tw := newTabWriter(s.stdout)
	row := func(name, value string) { fmt.Fprintf(tw, "%s:\t%s\n", name, value) }
	row("id", clean(r.ID))
	row("agent", clean(r.AgentID))
	row("name", clean(r.Name))
	row("description", clean(r.Description))
	row("callback url", clean(r.CallbackURL))
	row("from", clean(r.ClientAddr))
	row("status", clean(r.Status))
	row("created", fmtTime(r.CreatedAt))
	row("expires", fmtTime(r.ExpiresAt))
	row("decided", fmtTime(r.DecidedAt))
	row("decided by", clean(r.DecidedBy))
	row("key", clean(r.KeyID))
	return tw.Flush()
}

// printApproval prints an approval: in table mode the agent key alone on
// standard output (so that it can be captured) and the details on
// standard error; with -o json the whole answer on standard output.
func (s *session) printApproval(a adminclient.Approval) error {
	if clean(a.AgentKey) != a.AgentKey {
		return fmt.Errorf("daemon approved request %s but returned a key with unprintable characters", clean(a.RequestID))
	}
	if s.g.output.json {
		if err := s.printJSON(a); err != nil {
			return err
		}
		fmt.Fprintln(s.stderr, secretNotice)
		return nil
	}
	tw := newTabWriter(s.stderr)
	row := func(name, value string) { fmt.Fprintf(tw, "%s:\t%s\n", name, value) }
	fmt.Fprintf(tw, "approved request %s of agent %s\n", clean(a.RequestID), clean(a.AgentID))
	row("key id", clean(a.KeyID))
	row("roles", cleanList(a.Roles))
	row("scopes", cleanList(a.Scopes))
	row("expires", fmtTime(a.ExpiresAt))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(s.stderr, secretNotice+" Pass it to the agent.")
	_, err := fmt.Fprintln(s.stdout, a.AgentKey)
	return err
}
