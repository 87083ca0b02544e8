package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/verifyd/verifyd/internal/adminclient"
)

// maxAuditPages bounds the pages audit --all reads: a million entries at
// the largest page size.
const maxAuditPages = 1000

var auditCmd = &command{
	name: "audit",
	synopsis: "audit [--since TIME] [--until TIME] [--actor A] [--action X] [--target T]\n" +
		"                [--oldest-first] [--limit N] [--cursor C | --all]",
	summary: "read the audit trail of administrative actions",
	help: `Prints the audit trail: every key creation, import, rotation and revocation,
PAT change, access request approval and denial, agent revocation, JWT
revocation and policy reload, with its time, actor, target and outcome. Newest
first unless --oldest-first. Secrets are never part of it.

Actors: admin:<8 hex> (the admin key in use; it changes when the key is
reset), subject:<s> (an owner with its own credential), system:sighup and
system:file_change (policy reloads verifyd made itself). Outcomes: ok,
invalid, not_found, conflict, error.

One page (--limit entries, default 100) is printed; when more match, standard
error names the --cursor that continues it. --all reads every page.

Flags:
  --since TIME                entries at or after TIME (RFC 3339, "now" or
                              Unix seconds)
  --until TIME                entries before TIME
  --actor A                   only actor A, e.g. admin:1a2b3c4d
  --action X                  only action X, e.g. key.revoke
  --target T                  only entries about T (a key, request or
                              agent id, a jti, a subject, a policy file)
  --oldest-first              oldest entries first
  --limit N                   entries per page, 1 to 1000
  --cursor C                  continue a listing (same other flags)
  --all                       read every page
`,
	maxArgs: 0,
	bind: func(fs *flag.FlagSet) func(context.Context, *session, []string) error {
		var (
			since, until timeValue
			q            adminclient.AuditQuery
			all          bool
		)
		fs.Var(&since, "since", "")
		fs.Var(&until, "until", "")
		fs.StringVar(&q.Actor, "actor", "", "")
		fs.StringVar(&q.Action, "action", "", "")
		fs.StringVar(&q.Target, "target", "", "")
		fs.BoolVar(&q.OldestFirst, "oldest-first", false, "")
		fs.IntVar(&q.Limit, "limit", 0, "")
		fs.StringVar(&q.Cursor, "cursor", "", "")
		fs.BoolVar(&all, "all", false, "")
		return func(ctx context.Context, s *session, _ []string) error {
			if q.Limit < 0 || q.Limit > 1000 {
				return usagef("audit", "--limit must be from 1 to 1000")
			}
			if all && q.Cursor != "" {
				return usagef("audit", "--all reads from the start; it does not take --cursor")
			}
			q.Since, q.Until = since.t, until.t
			c, err := s.client(true)
			if err != nil {
				return err
			}
			var entries []adminclient.AuditEntry
			for range maxAuditPages {
				p, err := c.Audit(ctx, q)
				if err != nil {
					return err
				}
				entries = append(entries, p.Entries...)
				q.Cursor = p.NextCursor
				if !all || q.Cursor == "" {
					break
				}
			}
			if err := s.printAudit(entries, q.Cursor); err != nil {
				return err
			}
			if q.Cursor != "" {
				fmt.Fprintf(s.stderr, "more entries match: continue with --cursor %s\n", clean(q.Cursor))
			}
			return nil
		}
	},
}

// printAudit prints audit entries: as JSON (with the cursor that continues
// them, if any), or as an aligned table.
func (s *session) printAudit(entries []adminclient.AuditEntry, cursor string) error {
	if s.g.output.json {
		if entries == nil {
			entries = []adminclient.AuditEntry{}
		}
		return s.printJSON(adminclient.AuditPage{Entries: entries, NextCursor: cursor})
	}
	tw := newTabWriter(s.stdout)
	fmt.Fprintln(tw, "TIME\tSEQ\tACTOR\tACTION\tTARGET\tOUTCOME\tDETAIL")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", fmtTime(e.Time), e.Seq, clean(e.Actor), clean(e.Action),
			clean(e.Target), clean(e.Outcome), clean(e.Detail))
	}
	return tw.Flush()
}
