package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/verifyd/verifyd/internal/adminclient"
)

// patScopeValue is the repeatable --scope DOMAIN:TYPE:OPERATION:ID flag of
// the PAT commands. ':' cannot occur in a domain or entity id.
type patScopeValue []adminclient.PATScope

func (v *patScopeValue) String() string { return "" }

func (v *patScopeValue) Set(s string) error {
	f := strings.Split(s, ":")
	if len(f) != 4 || f[0] == "" || f[1] == "" || f[2] == "" || f[3] == "" {
		return fmt.Errorf("want DOMAIN:TYPE:OPERATION:ID such as 'd1:clients:read:*', got %q", s)
	}
	*v = append(*v, adminclient.PATScope{Domain: f[0], EntityType: f[1], Operation: f[2], EntityID: f[3]})
	return nil
}

// patScopeHelp describes the --scope flag of the PAT commands.
const patScopeHelp = `A scope is DOMAIN:TYPE:OPERATION:ID, SuperMQ's tuple (domain, entity type,
operation, entity id or "*"): d1:clients:create:* lets the PAT create clients
in domain d1, d1:channels:publish:ch-42 publish to channel ch-42. Entity types
and their operations:

  clients, groups, dashboards   create list read update delete share unshare
  channels                      create list read update delete share unshare publish subscribe
  messages                      publish subscribe (on a channel id)
  domains                       read update delete share unshare (id "*" or the domain)

"view" is accepted for "read"; create and list take the id "*" only. Quote
scopes holding "*" in the shell.
`

var patsCreateCmd = &command{
	name:     "pats create",
	synopsis: "pats create --subject S --name N [--description D] [--duration 720h] [--scope DOMAIN:TYPE:OPERATION:ID]...",
	summary:  "create a personal access token; its secret is shown once",
	help: `Creates a personal access token (PAT) for subject S and prints it
("pat_<id>_<secret>"), which the daemon shows only this once: in table mode the
token alone on standard output and the PAT's details on standard error; with
-o json the whole PAT on standard output.

  verifyctl pats create --subject alice --name ci --scope 'd1:clients:create:*' > alice.pat

` + patScopeHelp + `
Flags:
  --subject S                 the owner (required)
  --name N                    short label (required)
  --description D             free text
  --duration D                validity, e.g. 720h (default 720h; at most the
                              daemon's pats.max_duration, 8760h by default)
  --scope DOMAIN:TYPE:OPERATION:ID
                              a scope (repeatable)
`,
	maxArgs: 0,
	bind: func(fs *flag.FlagSet) func(context.Context, *session, []string) error {
		var (
			spec     adminclient.PATSpec
			duration time.Duration
			scopes   patScopeValue
		)
		fs.StringVar(&spec.Subject, "subject", "", "")
		fs.StringVar(&spec.Name, "name", "", "")
		fs.StringVar(&spec.Description, "description", "", "")
		fs.DurationVar(&duration, "duration", 0, "")
		fs.Var(&scopes, "scope", "")
		return func(ctx context.Context, s *session, _ []string) error {
			const name = "pats create"
			switch {
			case spec.Subject == "":
				return usagef(name, "--subject is required")
			case spec.Name == "":
				return usagef(name, "--name is required")
			case duration < 0:
				return usagef(name, "--duration must be positive")
			}
			spec.Duration = adminclient.Duration(duration)
			spec.Scopes = scopes
			c, err := s.client(true)
			if err != nil {
				return err
			}
			p, err := c.CreatePAT(ctx, spec)
			if err != nil {
				return err
			}
			return s.printNewPAT(p, "created")
		}
	},
}

var patsListCmd = &command{
	name:     "pats list",
	synopsis: "pats list [--subject S]",
	summary:  "list personal access tokens (never their secrets)",
	help: `Lists personal access tokens, those of one subject with --subject.

Flags:
  --subject S                 only the PATs of subject S
`,
	maxArgs: 0,
	bind: func(fs *flag.FlagSet) func(context.Context, *session, []string) error {
		var subject string
		fs.StringVar(&subject, "subject", "", "")
		return func(ctx context.Context, s *session, _ []string) error {
			c, err := s.client(true)
			if err != nil {
				return err
			}
			l, err := c.ListPATs(ctx, subject)
			if err != nil {
				return err
			}
			return s.printPATs(l)
		}
	},
}

var patsGetCmd = idCommand("pats get", "show one personal access token",
	"Shows the personal access token with id ID: its status, expiry, last use,\n"+
		"and its scopes as tuples and as the patterns they grant. Its secret is never\n"+
		"shown.\n",
	(*adminclient.Client).GetPAT, (*session).printPAT)

var patsRevokeCmd = idCommand("pats revoke", "revoke a personal access token at once",
	"Revokes the personal access token with id ID: from the moment the command\n"+
		"returns, the daemon refuses it. Prints the PAT as it now is.\n",
	(*adminclient.Client).RevokePAT, (*session).printPAT)

var patsScopesCmd = &command{
	name:     "pats scopes",
	synopsis: "pats scopes ID",
	summary:  "show the scopes of a personal access token",
	help: `Shows the scopes of the personal access token with id ID: each tuple as it was
added, and the patterns the PAT grants.
`,
	minArgs: 1,
	maxArgs: 1,
	bind: func(*flag.FlagSet) func(context.Context, *session, []string) error {
		return func(ctx context.Context, s *session, args []string) error {
			c, err := s.client(true)
			if err != nil {
				return err
			}
			l, err := c.PATScopes(ctx, args[0])
			if err != nil {
				return err
			}
			if s.g.output.json {
				if l.Scopes == nil {
					l.Scopes = []adminclient.PATScope{}
				}
				if l.Patterns == nil {
					l.Patterns = []string{}
				}
				return s.printJSON(l)
			}
			return writePATScopes(s.stdout, l.Scopes, l.ScopesError, l.Patterns)
		}
	},
}

// patScopeCommand returns "pats add-scope" or "pats remove-scope".
func patScopeCommand(name, summary, help string, call func(c *adminclient.Client, ctx context.Context, id string, scopes []adminclient.PATScope) (adminclient.PAT, error)) *command {
	return &command{
		name:     name,
		synopsis: name + " ID --scope DOMAIN:TYPE:OPERATION:ID...",
		summary:  summary,
		help:     help + "\n" + patScopeHelp + "\nFlags:\n  --scope DOMAIN:TYPE:OPERATION:ID\n                              a scope (repeatable; at least one)\n",
		minArgs:  1,
		maxArgs:  1,
		bind: func(fs *flag.FlagSet) func(context.Context, *session, []string) error {
			var scopes patScopeValue
			fs.Var(&scopes, "scope", "")
			return func(ctx context.Context, s *session, args []string) error {
				if len(scopes) == 0 {
					return usagef(name, "give at least one --scope DOMAIN:TYPE:OPERATION:ID")
				}
				c, err := s.client(true)
				if err != nil {
					return err
				}
				p, err := call(c, ctx, args[0], scopes)
				if err != nil {
					return err
				}
				return s.printPAT(p)
			}
		},
	}
}

var patsAddScopeCmd = patScopeCommand("pats add-scope", "add scopes to a personal access token",
	`Adds scopes to the personal access token with id ID and prints the PAT as it
now is. A scope it holds already is not added twice. If the daemon refuses one
scope, it adds none. The change applies to the very next verification.
`,
	(*adminclient.Client).AddPATScopes)

var patsRemoveScopeCmd = patScopeCommand("pats remove-scope", "remove scopes from a personal access token",
	`Removes scopes from the personal access token with id ID and prints the PAT as
it now is. Removing a scope removes the pattern it grants, and every scope of
the PAT that grants the same pattern (d1:dashboards:view:* with
d1:dashboards:read:*): afterwards the PAT grants none of them. A scope whose
pattern the PAT does not grant changes nothing. The change applies to the very
next verification.
`,
	(*adminclient.Client).RemovePATScopes)

var patsResetCmd = &command{
	name:     "pats reset",
	synopsis: "pats reset ID [--duration 720h]",
	summary:  "give a personal access token a new secret, keeping its id and scopes",
	help: `Gives the personal access token with id ID a new secret, valid for the
duration from now, and prints it as pats create does. The old token stops
working at once. An expired PAT may be reset; a revoked one may not.

Flags:
  --duration D                validity from now, e.g. 720h (default 720h)
`,
	minArgs: 1,
	maxArgs: 1,
	bind: func(fs *flag.FlagSet) func(context.Context, *session, []string) error {
		var duration time.Duration
		fs.DurationVar(&duration, "duration", 0, "")
		return func(ctx context.Context, s *session, args []string) error {
			if duration < 0 {
				return usagef("pats reset", "--duration must be positive")
			}
			c, err := s.client(true)
			if err != nil {
				return err
			}
			p, err := c.ResetPAT(ctx, args[0], duration)
			if err != nil {
				return err
			}
			return s.printNewPAT(p, "reset")
		}
	},
}

// printPAT prints one PAT: as JSON, or as a field list.
func (s *session) printPAT(p adminclient.PAT) error {
	if s.g.output.json {
		return s.printJSON(p)
	}
	return writePATDetails(s.stdout, p)
}

// printPATs prints a PAT list: as JSON, or as an aligned table.
func (s *session) printPATs(l []adminclient.PAT) error {
	if s.g.output.json {
		if l == nil {
			l = []adminclient.PAT{}
		}
		return s.printJSON(adminclient.PATList{PATs: l})
	}
	tw := newTabWriter(s.stdout)
	fmt.Fprintln(tw, "ID\tSUBJECT\tNAME\tSTATUS\tSCOPES\tCREATED\tEXPIRES\tLAST USED")
	for _, p := range l {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n",
			clean(p.ID), clean(p.Subject), clean(p.Name), clean(p.Status), len(p.Scopes),
			fmtTime(p.CreatedAt), fmtTime(p.ExpiresAt), fmtTime(p.LastUsedAt))
	}
	return tw.Flush()
}

// printNewPAT prints a PAT that carries a fresh secret (after create or
// reset), as printNewSecret does for keys.
func (s *session) printNewPAT(p adminclient.PAT, verb string) error {
	if clean(p.Secret) != p.Secret {
		return fmt.Errorf("daemon %s PAT %s but returned a secret with unprintable characters", verb, clean(p.ID))
	}
	if s.g.output.json {
		if err := s.printJSON(p); err != nil {
			return err
		}
		fmt.Fprintln(s.stderr, secretNotice)
		return nil
	}
	fmt.Fprintf(s.stderr, "%s PAT %s for %s\n", verb, clean(p.ID), clean(p.Subject))
	if err := writePATDetails(s.stderr, p); err != nil {
		return err
	}
	fmt.Fprintln(s.stderr, secretNotice)
	_, err := fmt.Fprintln(s.stdout, p.Secret)
	return err
}

// writePATDetails writes p as an aligned list of fields, one per line. The
// secret is never part of it.
func writePATDetails(w io.Writer, p adminclient.PAT) error {
	tw := newTabWriter(w)
	row := func(name, value string) { fmt.Fprintf(tw, "%s:\t%s\n", name, value) }
	row("id", clean(p.ID))
	row("subject", clean(p.Subject))
	row("name", clean(p.Name))
	row("description", clean(p.Description))
	row("status", clean(p.Status))
	row("version", strconv.FormatUint(p.Version, 10))
	row("scopes", fmtPATScopes(p.Scopes))
	if p.ScopesError != "" {
		row("scopes error", clean(p.ScopesError))
	}
	row("patterns", cleanList(p.Patterns))
	row("creator", clean(p.Creator))
	row("created", fmtTime(p.CreatedAt))
	row("expires", fmtTime(p.ExpiresAt))
	if !p.RevokedAt.IsZero() {
		row("revoked", fmtTime(p.RevokedAt))
	}
	row("last used", fmtTime(p.LastUsedAt))
	if !p.PreviousValidUntil.IsZero() {
		row("old secret valid until", fmtTime(p.PreviousValidUntil))
	}
	return tw.Flush()
}

// writePATScopes writes a PAT's tuples, as the --scope flag takes them,
// and its patterns.
func writePATScopes(w io.Writer, scopes []adminclient.PATScope, scopesError string, patterns []string) error {
	tw := newTabWriter(w)
	row := func(name, value string) { fmt.Fprintf(tw, "%s:\t%s\n", name, value) }
	row("scopes", fmtPATScopes(scopes))
	if scopesError != "" {
		row("scopes error", clean(scopesError))
	}
	row("patterns", cleanList(patterns))
	return tw.Flush()
}

func fmtPATScope(sc adminclient.PATScope) string {
	return clean(sc.Domain + ":" + sc.EntityType + ":" + sc.Operation + ":" + sc.EntityID)
}

// fmtPATScopes joins tuples as the --scope flag takes them; none is "-".
func fmtPATScopes(scopes []adminclient.PATScope) string {
	if len(scopes) == 0 {
		return "-"
	}
	out := make([]string, len(scopes))
	for i, sc := range scopes {
		out[i] = fmtPATScope(sc)
	}
	return strings.Join(out, ", ")
}
