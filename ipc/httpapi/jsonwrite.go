package httpapi

import (
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/verifyd/verifyd/verify"
)

// The verify answers are written by appending JSON to a buffer rather than
// with encoding/json, which allocates per request. They are byte for byte
// what encoding/json writes for the same members
// (TestVerifyAnswersMatchEncodingJSON).

// appendVerifyAllowed appends the answer to an allowed verification r,
// in the member order of every earlier release: allow, status, reason,
// matched (when the policy decided a scope), subject, kind, key_id,
// source, realm, roles, scopes, project_roles, grant, expires_at and
// cache_ttl_ms; the optional members are left out when empty. keys is
// scratch for sorting the project names and is returned for reuse.
func appendVerifyAllowed(b []byte, r verify.Result, keys []string) ([]byte, []string) {
	p := r.Principal
	b = append(b, `{"allow":true,"status":`...)
	b = appendJSONString(b, r.Reason.String())
	b = append(b, `,"reason":`...)
	b = appendJSONString(b, answerReason(r))
	if r.Decided() {
		d := r.Decision
		b = append(b, `,"matched":{"role":`...)
		b = appendJSONString(b, d.Role)
		b = append(b, `,"project":`...)
		b = appendJSONString(b, d.Project)
		b = append(b, `,"pattern":`...)
		b = appendJSONString(b, d.Pattern)
		b = append(b, '}')
	}
	b = append(b, `,"subject":`...)
	b = appendJSONString(b, p.Subject)
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, p.Kind)
	b = append(b, `,"key_id":`...)
	b = appendJSONString(b, p.KeyID)
	if p.Source != "" {
		b = append(b, `,"source":`...)
		b = appendJSONString(b, p.Source)
	}
	if p.Realm != "" {
		b = append(b, `,"realm":`...)
		b = appendJSONString(b, p.Realm)
	}
	b = append(b, `,"roles":`...)
	b = appendJSONStrings(b, p.Roles, false)
	if len(p.Scopes) > 0 {
		b = append(b, `,"scopes":`...)
		b = appendJSONStrings(b, p.Scopes, false)
	}
	if len(p.ProjectRoles) > 0 {
		// encoding/json writes a map's members sorted by key.
		keys = keys[:0]
		for k := range p.ProjectRoles {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, `,"project_roles":{`...)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONStrings(b, p.ProjectRoles[k], true)
		}
		b = append(b, '}')
		clear(keys) // keep no principal's strings alive in the pool
	}
	if g := r.Grant(); g != "" {
		b = append(b, `,"grant":`...)
		b = appendJSONString(b, g)
	}
	if !r.ExpiresAt.IsZero() {
		b = append(b, `,"expires_at":"`...)
		b = r.ExpiresAt.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	b = append(b, `,"cache_ttl_ms":`...)
	b = strconv.AppendInt(b, r.CacheTTL.Milliseconds(), 10)
	return append(b, '}'), keys
}

// appendVerifyDenied appends the answer to a refused verification: the
// members of verifyDenied, with allow false.
func appendVerifyDenied(b []byte, r verify.Reason, reason string) []byte {
	b = append(b, `{"allow":false,"status":`...)
	b = appendJSONString(b, r.String())
	b = append(b, `,"reason":`...)
	b = appendJSONString(b, reason)
	b = append(b, `,"code":`...)
	b = appendJSONString(b, r.ErrorCode())
	b = append(b, `,"error":`...)
	b = appendJSONString(b, r.String())
	b = append(b, `,"message":`...)
	b = appendJSONString(b, r.Message())
	return append(b, '}')
}

// appendJSONStrings appends ss as a JSON array of strings. A nil ss is
// written as null when nilIsNull is set, as encoding/json writes a nil
// slice, and as [] otherwise.
func appendJSONStrings(b []byte, ss []string, nilIsNull bool) []byte {
	if ss == nil && nilIsNull {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

const hexDigits = "0123456789abcdef"

// jsonPlain marks the ASCII bytes a JSON string holds as they are:
// printable, and neither '"', '\\' nor one of '<', '>' and '&'.
var jsonPlain = func() (t [utf8.RuneSelf]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendJSONString appends s as a JSON string, escaped as encoding/json
// escapes by default: '"' and '\\' with a backslash; \b, \f, \n, \r and \t
// by name; other control characters and the HTML-sensitive '<', '>' and
// '&' as \u00XX; U+2028 and U+2029 as \u2028 and \u2029; and each byte of
// invalid UTF-8 as \ufffd.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if jsonPlain[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
