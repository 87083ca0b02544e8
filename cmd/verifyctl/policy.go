package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/verifyd/verifyd/internal/adminclient"
	"github.com/verifyd/verifyd/rbac"
)

var policyCheckCmd = &command{
	name:     "policy check",
	synopsis: "policy check FILE",
	summary:  "validate a policy file, offline",
	help: `Reads the authorization policy FILE and validates it completely, as the daemon
does when it loads or reloads it, without contacting the daemon. Every problem
is printed, one per line, as FILE:LINE:COLUMN: PATH: MESSAGE, where PATH names
the place in the document (roles.developer.inherits[0]); a valid file prints
its mode and what it holds.

The exit status is 0 when the file is a valid policy and 2 when it is not (or
cannot be read). With -o json the result is {"file","valid","mode","summary"}
or {"file","valid","problems"}.
`,
	minArgs: 1,
	maxArgs: 1,
	bind: func(*flag.FlagSet) func(context.Context, *session, []string) error {
		return func(_ context.Context, s *session, args []string) error {
			return s.checkPolicy(args[0])
		}
	},
}

// policyCheck is the output of policy check -o json.
type policyCheck struct {
	File     string                      `json:"file"`
	Valid    bool                        `json:"valid"`
	Mode     string                      `json:"mode,omitempty"`
	Summary  *adminclient.PolicySummary  `json:"summary,omitempty"`
	Problems []adminclient.PolicyProblem `json:"problems,omitempty"`
}

func (s *session) checkPolicy(file string) error {
	data, err := readPolicyFile(file)
	if err != nil {
		return &exitError{code: exitUsage, msg: err.Error()}
	}
	p, err := rbac.ParsePolicy(data)
	var pe *rbac.PolicyError
	switch {
	case errors.As(err, &pe):
		out := policyCheck{File: file}
		for _, prob := range pe.Problems {
			out.Problems = append(out.Problems, adminclient.PolicyProblem{
				Line: prob.Line, Column: prob.Column, Path: prob.Path, Message: prob.Message, Text: prob.String(),
			})
		}
		if s.g.output.json {
			if err := s.printJSON(out); err != nil {
				return err
			}
		} else {
			s.printProblems(file, out.Problems)
		}
		return &exitError{code: exitUsage, msg: fmt.Sprintf("%s: %s", file, countProblems(len(pe.Problems)))}
	case err != nil:
		return &exitError{code: exitUsage, msg: fmt.Sprintf("%s: %v", file, err)}
	}
	sum := summaryOf(p.Summary())
	if s.g.output.json {
		return s.printJSON(policyCheck{File: file, Valid: true, Mode: p.Mode().String(), Summary: &sum})
	}
	_, err = fmt.Fprintf(s.stdout, "%s: valid policy, mode %s: %s\n", file, p.Mode(), describeSummary(sum))
	return err
}

// readPolicyFile reads a policy file, up to one byte more than a policy
// may hold (so that the parser reports a file that is too large).
func readPolicyFile(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, rbac.MaxPolicySize+1))
}

func summaryOf(s rbac.Summary) adminclient.PolicySummary {
	return adminclient.PolicySummary{Roles: s.Roles, Patterns: s.Patterns, Subjects: s.Subjects, ACLs: s.ACLs, Streams: s.Streams, BoundSets: s.BoundSets}
}

func describeSummary(s adminclient.PolicySummary) string {
	return fmt.Sprintf("%s, %s, %s, %s, %s",
		plural(s.Roles, "role"), plural(s.Patterns, "pattern"), plural(s.Subjects, "subject"), plural(s.ACLs, "ACL"), plural(s.Streams, "stream"))
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

func countProblems(n int) string {
	if n == 1 {
		return "1 problem"
	}
	return strconv.Itoa(n) + " problems"
}

// printProblems prints each problem of a policy file as
// FILE:LINE:COLUMN: PATH: MESSAGE.
func (s *session) printProblems(file string, probs []adminclient.PolicyProblem) {
	for _, p := range probs {
		var b strings.Builder
		b.WriteString(clean(file))
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d:%d", p.Line, p.Column)
		}
		b.WriteString(": ")
		if p.Path != "" {
			b.WriteString(cleanText(p.Path) + ": ")
		}
		b.WriteString(cleanText(p.Message))
		fmt.Fprintln(s.stdout, b.String())
	}
}

// cleanText is clean for text that may be empty and is not a table cell.
func cleanText(v string) string {
	if v == "" {
		return ""
	}
	return clean(v)
}

var policyExplainCmd = &command{
	name:     "policy explain",
	synopsis: "policy explain (--subject S [--project P] [--realm R] [--role ROLE]... | --key ID | --token-file F | --token-stdin) --scope X",
	summary:  "explain how the daemon's policy decides a scope",
	help: `Asks the daemon how its authorization policy in force decides the scope X for
a principal, and why: the decision, then every candidate grant considered (the
credential's own scopes, each pattern of each role with its templates filled,
stream rules, ACLs) and whether it applied.

The principal is subject S, with the roles the policy assigns to S, plus the
roles given with --role as a credential would carry them: global roles, or,
with --project P, roles held in project P. --realm R is the realm a JWT would
name. With --key ID, the principal is that of the stored key instead: its
subject, roles, project roles and own scopes. With --token-file or
--token-stdin, it is the principal of that credential as verification sees it
(a JWT's realm, roles and scope claims included); a credential that is not
valid is refused with its status. Without any of these, the request is
anonymous (only streams that require no authentication allow it).

  verifyctl policy explain --subject alice --scope projects/p2/topics/payroll:publish
  verifyctl policy explain --subject bob --project p1 --role publisher --scope projects/p1/topics/t:publish
  verifyctl policy explain --token-file token.txt --scope streams/sensor_data:read

The exit status is 0 when the policy allows the scope and 1 when it denies it.

Flags:
  --subject S                 the principal's subject
  --project P                 with --role: the roles are held in project P
  --realm R                   the principal's realm
  --role ROLE                 a role the credential carries (repeatable)
  --key ID                    explain for the stored key ID instead
  --token-file F              explain for the credential in file F instead
  --token-stdin               explain for the credential read from standard input
  --scope X                   the scope to decide (required)
`,
	maxArgs: 0,
	bind: func(fs *flag.FlagSet) func(context.Context, *session, []string) error {
		var (
			r         adminclient.PolicyExplainRequest
			roles     listValue
			file      string
			fromStdin bool
		)
		fs.StringVar(&r.Subject, "subject", "", "")
		fs.StringVar(&r.Project, "project", "", "")
		fs.StringVar(&r.Realm, "realm", "", "")
		fs.Var(&roles, "role", "")
		fs.StringVar(&r.KeyID, "key", "", "")
		fs.StringVar(&file, "token-file", "", "")
		fs.BoolVar(&fromStdin, "token-stdin", false, "")
		fs.StringVar(&r.Scope, "scope", "", "")
		return func(ctx context.Context, s *session, _ []string) error {
			const name = "policy explain"
			r.Roles = roles
			switch {
			case r.Scope == "":
				return usagef(name, "--scope is required")
			case file != "" && fromStdin:
				return usagef(name, "give one of --token-file and --token-stdin")
			case (file != "" || fromStdin) && (r.KeyID != "" || r.Subject != "" || r.Project != "" || r.Realm != "" || len(r.Roles) > 0):
				return usagef(name, "a token names the whole principal: leave out --key, --subject, --project, --realm and --role")
			case r.KeyID != "" && (r.Subject != "" || r.Project != "" || r.Realm != "" || len(r.Roles) > 0):
				return usagef(name, "--key names the whole principal: leave out --subject, --project, --realm and --role")
			case r.Subject == "" && (r.Project != "" || r.Realm != "" || len(r.Roles) > 0):
				return usagef(name, "--project, --realm and --role need --subject")
			case r.Project != "" && len(r.Roles) == 0:
				return usagef(name, "--project needs the roles held in it (--role)")
			}
			if file != "" || fromStdin {
				var err error
				if r.Token, err = readSecret(s.stdin, file, "token"); err != nil {
					return usagef(name, "%v", err)
				}
			}
			c, err := s.client(true)
			if err != nil {
				return err
			}
			e, err := c.ExplainPolicy(ctx, r)
			if err != nil {
				return err
			}
			if s.g.output.json {
				err = s.printJSON(e)
			} else {
				err = s.printLines(e.Text)
			}
			if err != nil {
				return err
			}
			if !e.Decision.Allowed {
				return &deniedError{msg: "denied: " + e.Decision.Reason}
			}
			return nil
		}
	},
}

// printLines prints text from the daemon line by line, each made safe for
// the terminal.
func (s *session) printLines(text string) error {
	for _, l := range strings.Split(text, "\n") {
		indent := l[:len(l)-len(strings.TrimLeft(l, " "))]
		if _, err := fmt.Fprintln(s.stdout, indent+cleanText(strings.TrimLeft(l, " "))); err != nil {
			return err
		}
	}
	return nil
}

var policyReloadCmd = &command{
	name:     "policy reload",
	synopsis: "policy reload",
	summary:  "make the daemon reload its policy file",
	help: `Makes the daemon read its policy file again, validate it completely and put it
in force, atomically: every verification that starts after the command returns
decides under it, cached credentials included. A file that holds the policy
already in force changes nothing.

An invalid file is refused and the policy in force keeps serving: every
problem is printed, as by policy check, and the exit status is 2. A daemon
without a policy file (policy: in its configuration) has nothing to reload and
answers with exit status 1.

The daemon also reloads the file on SIGHUP and, by default, when it changes.
`,
	maxArgs: 0,
	bind: func(*flag.FlagSet) func(context.Context, *session, []string) error {
		return func(ctx context.Context, s *session, _ []string) error {
			c, err := s.client(true)
			if err != nil {
				return err
			}
			st, err := c.ReloadPolicy(ctx)
			var ae *adminclient.APIError
			if errors.As(err, &ae) && len(ae.Problems) > 0 {
				if s.g.output.json {
					if perr := s.printJSON(ae); perr != nil {
						return perr
					}
				} else {
					s.printProblems(policyFileName(ctx, c), ae.Problems)
				}
				return &exitError{code: exitUsage, msg: "the policy file is invalid (" + countProblems(len(ae.Problems)) + "); the daemon keeps its policy"}
			}
			if err != nil {
				return err
			}
			if s.g.output.json {
				return s.printJSON(st)
			}
			what := "reloaded: the file holds the policy in force, unchanged"
			if st.Changed != nil && *st.Changed {
				what = "reloaded: a new policy is in force"
			}
			_, err = fmt.Fprintf(s.stdout, "%s\n%s: mode %s: %s\n", what, clean(st.File), clean(st.Mode), describeSummary(st.Summary))
			return err
		}
	},
}

// policyFileName returns the daemon's policy file, to name it in problems,
// or "policy" when the daemon does not say.
func policyFileName(ctx context.Context, c *adminclient.Client) string {
	if st, err := c.PolicyStatus(ctx); err == nil && st.File != "" {
		return st.File
	}
	return "policy"
}

var policyShowCmd = &command{
	name:     "policy show",
	synopsis: "policy show",
	summary:  "show the daemon's policy in force",
	help: `Shows the daemon's authorization policy in force: its mode, its file, when it
was put in force, what it holds (roles, patterns, subjects with assignments,
ACLs, streams, and the compiled role sets in memory), and when the file was last
reloaded, with the error and problems of that reload if it failed.

Mode deny_all (the default, without a policy file) grants nothing through
roles: only the scopes a credential carries itself. Mode none allows every
scope and is for development only.
`,
	maxArgs: 0,
	bind: func(*flag.FlagSet) func(context.Context, *session, []string) error {
		return func(ctx context.Context, s *session, _ []string) error {
			c, err := s.client(true)
			if err != nil {
				return err
			}
			st, err := c.PolicyStatus(ctx)
			if err != nil {
				return err
			}
			return s.printPolicy(st)
		}
	},
}

// printPolicy prints the policy status: as JSON, or as a field list.
func (s *session) printPolicy(st adminclient.PolicyStatus) error {
	if st.Mode == "none" {
		fmt.Fprintln(s.stderr, "verifyctl: warning: the policy has mode none: every scope is allowed to every valid credential")
	}
	if s.g.output.json {
		return s.printJSON(st)
	}
	tw := newTabWriter(s.stdout)
	row := func(name, value string) { fmt.Fprintf(tw, "%s:\t%s\n", name, value) }
	row("mode", clean(st.Mode))
	row("file", clean(st.File))
	row("loaded", fmtTime(st.LoadedAt))
	row("roles", strconv.Itoa(st.Summary.Roles))
	row("patterns", strconv.Itoa(st.Summary.Patterns))
	row("subjects", strconv.Itoa(st.Summary.Subjects))
	row("acls", strconv.Itoa(st.Summary.ACLs))
	row("streams", strconv.Itoa(st.Summary.Streams))
	row("bound sets", strconv.Itoa(st.Summary.BoundSets))
	row("last reload", fmtTime(st.LastReload))
	row("last error", clean(firstLine(st.LastError)))
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(st.Problems) > 0 {
		fmt.Fprintln(s.stdout, "problems of the last reload:")
		s.printProblems(st.File, st.Problems)
	}
	return nil
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}
