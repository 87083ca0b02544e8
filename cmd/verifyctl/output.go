package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/verifyd/verifyd/internal/adminclient"
)

// printJSON writes v to standard output as indented JSON. v is one of the
// adminclient wire types, so the output has the daemon's field names.
func (s *session) printJSON(v any) error {
	enc := json.NewEncoder(s.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// printKey prints one key: as JSON, or as a field list.
func (s *session) printKey(k adminclient.Key) error {
	if s.g.output.json {
		return s.printJSON(k)
	}
	return writeKeyDetails(s.stdout, k)
}

// printKeys prints a key list: as JSON, or as an aligned table.
func (s *session) printKeys(keys []adminclient.Key) error {
	if s.g.output.json {
		if keys == nil {
			keys = []adminclient.Key{}
		}
		return s.printJSON(adminclient.KeyList{Keys: keys})
	}
	tw := newTabWriter(s.stdout)
	fmt.Fprintln(tw, "ID\tKIND\tSUBJECT\tNAME\tSTATUS\tCREATED\tEXPIRES\tLAST USED")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			clean(k.ID), clean(k.Kind), clean(k.Subject), clean(k.Name), clean(k.Status),
			fmtTime(k.CreatedAt), fmtTime(k.ExpiresAt), fmtTime(k.LastUsedAt))
	}
	return tw.Flush()
}

// secretNotice is printed on standard error whenever a secret is printed.
const secretNotice = "The secret is shown only this once: store it now. It cannot be retrieved again."

// printNewSecret prints a key that carries a fresh secret (after create or
// rotate). In table mode the secret alone goes to standard output, so it can
// be captured or redirected, and the details go to standard error; in JSON
// mode the whole key goes to standard output.
func (s *session) printNewSecret(k adminclient.Key, verb string) error {
	if clean(k.Secret) != k.Secret {
		return fmt.Errorf("daemon %s key %s but returned a secret with unprintable characters", verb, clean(k.ID))
	}
	if s.g.output.json {
		if err := s.printJSON(k); err != nil {
			return err
		}
		fmt.Fprintln(s.stderr, secretNotice)
		return nil
	}
	fmt.Fprintf(s.stderr, "%s key %s for %s\n", verb, clean(k.ID), clean(k.Subject))
	if err := writeKeyDetails(s.stderr, k); err != nil {
		return err
	}
	fmt.Fprintln(s.stderr, secretNotice)
	_, err := fmt.Fprintln(s.stdout, k.Secret)
	return err
}

// printDecision prints a verify decision: as JSON, or as a field list.
func (s *session) printDecision(r adminclient.VerifyResult) error {
	return s.writeDecision(r, true)
}

// writeDecision prints a verify decision. viaHTTP adds what only the HTTP
// API reports: the credential's own scopes, the policy's reason and what
// matched.
func (s *session) writeDecision(r adminclient.VerifyResult, viaHTTP bool) error {
	if s.g.output.json {
		return s.printJSON(r)
	}
	tw := newTabWriter(s.stdout)
	row := func(name, value string) { fmt.Fprintf(tw, "%s:\t%s\n", name, value) }
	row("allow", strconv.FormatBool(r.Allow))
	row("status", clean(r.Status))
	if r.Allow {
		row("subject", clean(r.Subject))
		row("kind", clean(r.Kind))
		row("key id", clean(r.KeyID))
		if r.Kind == "jwt" {
			row("source", clean(r.Source))
			row("realm", clean(r.Realm))
		}
		row("roles", cleanList(r.Roles))
		if viaHTTP {
			row("scopes", cleanList(r.Scopes))
			row("reason", clean(r.Reason))
			row("matched", fmtMatch(r.Matched))
		}
		row("grant", clean(r.Grant))
		row("expires", fmtTime(r.ExpiresAt))
		row("cache ttl", (time.Duration(r.CacheTTLMS) * time.Millisecond).String())
	} else {
		if viaHTTP && r.Reason != "" && r.Reason != r.Status {
			row("reason", clean(r.Reason))
		}
		row("code", clean(r.Code))
		row("message", clean(r.Message))
	}
	return tw.Flush()
}

// fmtMatch describes what granted a scope: "role publisher in p2, pattern
// projects/p2/topics/*:publish", "own scope tool:data:*", or "-".
func fmtMatch(m *adminclient.PolicyMatch) string {
	if m == nil {
		return "-"
	}
	var parts []string
	switch {
	case m.Role == "" && m.Pattern != "":
		parts = append(parts, "own scope "+clean(m.Pattern))
	case m.Role != "":
		role := "role " + clean(m.Role)
		if m.Project != "" {
			role += " in " + clean(m.Project)
		}
		parts = append(parts, role)
		if m.Pattern != "" {
			parts = append(parts, "pattern "+clean(m.Pattern))
		}
	default:
		return "-"
	}
	return strings.Join(parts, ", ")
}

// printRevocation prints one JWT revocation: as JSON, or as a field list.
func (s *session) printRevocation(r adminclient.JWTRevocation) error {
	if s.g.output.json {
		return s.printJSON(r)
	}
	tw := newTabWriter(s.stdout)
	row := func(name, value string) { fmt.Fprintf(tw, "%s:\t%s\n", name, value) }
	if r.TokenID != "" {
		row("jti", clean(r.TokenID))
		row("expires", fmtTime(r.ExpiresAt))
	} else {
		row("subject", clean(r.Subject))
		row("not before", fmtTime(r.NotBefore))
	}
	row("created", fmtTime(r.CreatedAt))
	row("creator", clean(r.Creator))
	return tw.Flush()
}

// printRevocations prints the revocation list: as JSON, or as one aligned
// table, jti revocations first.
func (s *session) printRevocations(l adminclient.RevocationList) error {
	if s.g.output.json {
		if l.Tokens == nil {
			l.Tokens = []adminclient.JWTRevocation{}
		}
		if l.Subjects == nil {
			l.Subjects = []adminclient.JWTRevocation{}
		}
		return s.printJSON(l)
	}
	tw := newTabWriter(s.stdout)
	fmt.Fprintln(tw, "KIND\tJTI OR SUBJECT\tNOT BEFORE\tEXPIRES\tCREATED\tCREATOR")
	for _, r := range l.Tokens {
		fmt.Fprintf(tw, "jti\t%s\t-\t%s\t%s\t%s\n", clean(r.TokenID), fmtTime(r.ExpiresAt), fmtTime(r.CreatedAt), clean(r.Creator))
	}
	for _, r := range l.Subjects {
		fmt.Fprintf(tw, "subject\t%s\t%s\t-\t%s\t%s\n", clean(r.Subject), fmtTime(r.NotBefore), fmtTime(r.CreatedAt), clean(r.Creator))
	}
	return tw.Flush()
}

// printTrust prints the trust sources: as JSON, or as an aligned table.
func (s *session) printTrust(sources []adminclient.TrustSource) error {
	if s.g.output.json {
		if sources == nil {
			sources = []adminclient.TrustSource{}
		}
		return s.printJSON(adminclient.TrustSourceList{Sources: sources})
	}
	tw := newTabWriter(s.stdout)
	fmt.Fprintln(tw, "NAME\tTYPE\tKEYS\tSKIPPED\tLAST SUCCESS\tSTALE\tLAST ERROR")
	for _, src := range sources {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%t\t%s\n",
			clean(src.Name), clean(src.Type), src.Keys, src.SkippedKeys,
			fmtTime(src.LastSuccess), src.Stale, clean(src.LastError))
	}
	return tw.Flush()
}

// writeKeyDetails writes k as an aligned list of fields, one per line. The
// secret is never part of it.
func writeKeyDetails(w io.Writer, k adminclient.Key) error {
	tw := newTabWriter(w)
	row := func(name, value string) { fmt.Fprintf(tw, "%s:\t%s\n", name, value) }
	row("id", clean(k.ID))
	row("kind", clean(k.Kind))
	row("subject", clean(k.Subject))
	row("name", clean(k.Name))
	row("description", clean(k.Description))
	row("status", clean(k.Status))
	row("version", strconv.FormatUint(k.Version, 10))
	row("scopes", cleanList(k.Scopes))
	row("roles", cleanList(k.Roles))
	row("project roles", fmtProjectRoles(k.ProjectRoles))
	row("metadata", fmtMetadata(k.Metadata))
	row("creator", clean(k.Creator))
	row("created", fmtTime(k.CreatedAt))
	row("expires", fmtTime(k.ExpiresAt))
	if !k.RevokedAt.IsZero() {
		row("revoked", fmtTime(k.RevokedAt))
	}
	row("last used", fmtTime(k.LastUsedAt))
	if !k.PreviousValidUntil.IsZero() {
		row("old secret valid until", fmtTime(k.PreviousValidUntil))
	}
	return tw.Flush()
}

func newTabWriter(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

// fmtTime formats t in RFC 3339, UTC; the zero time is "-".
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// clean makes a value from the daemon safe to put in a table cell: "-" when
// empty, and quoted with escapes when it holds anything but printable
// characters (a tab would break the columns, an escape sequence would reach
// the terminal).
func clean(s string) string {
	if s == "" {
		return "-"
	}
	if strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return strconv.Quote(s)
	}
	return s
}

// cleanList joins values with ", "; an empty list is "-".
func cleanList(vs []string) string {
	if len(vs) == 0 {
		return "-"
	}
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = clean(v)
	}
	return strings.Join(out, ", ")
}

// fmtProjectRoles formats project roles as "p1=editor,viewer p2=admin",
// sorted by project.
func fmtProjectRoles(m map[string][]string) string {
	if len(m) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(m))
	for _, p := range slices.Sorted(maps.Keys(m)) {
		roles := make([]string, len(m[p]))
		for i, r := range m[p] {
			roles[i] = clean(r)
		}
		parts = append(parts, clean(p)+"="+strings.Join(roles, ","))
	}
	return strings.Join(parts, " ")
}

// fmtMetadata formats metadata as "k1=v1 k2=v2", sorted by key.
func fmtMetadata(m map[string]string) string {
	if len(m) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, clean(k)+"="+clean(m[k]))
	}
	return strings.Join(parts, " ")
}
