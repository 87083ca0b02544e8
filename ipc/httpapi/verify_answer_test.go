package httpapi

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/verifyd/verifyd/rbac"
	"github.com/verifyd/verifyd/verify"
)

// matchedBody and verifyAllowed are the structs POST /v1/verify was
// encoded from with encoding/json, kept as the reference the answers are
// compared against.
type matchedBody struct {
	Role    string `json:"role"`
	Project string `json:"project"`
	Pattern string `json:"pattern"`
}

type verifyAllowed struct {
	Allow      bool                `json:"allow"`
	Status     string              `json:"status"`
	Reason     string              `json:"reason"`
	Matched    *matchedBody        `json:"matched,omitempty"`
	Subject    string              `json:"subject"`
	Kind       string              `json:"kind"`
	KeyID      string              `json:"key_id"`
	Source     string              `json:"source,omitempty"`
	Realm      string              `json:"realm,omitempty"`
	Roles      []string            `json:"roles"`
	Scopes     []string            `json:"scopes,omitempty"`
	Projects   map[string][]string `json:"project_roles,omitempty"`
	Grant      string              `json:"grant,omitempty"`
	ExpiresAt  *time.Time          `json:"expires_at,omitempty"`
	CacheTTLms int64               `json:"cache_ttl_ms"`
}

// referenceAnswer is the body of the answer to r as encoding/json wrote
// it from the reference structs.
func referenceAnswer(t *testing.T, r verify.Result) []byte {
	t.Helper()
	var v any
	if r.Reason != verify.OK {
		v = verifyDenied{
			Status:  r.Reason.String(),
			Reason:  answerReason(r),
			Code:    r.Reason.ErrorCode(),
			Error:   r.Reason.String(),
			Message: r.Reason.Message(),
		}
	} else {
		p := r.Principal
		out := verifyAllowed{
			Allow: true, Status: r.Reason.String(), Reason: answerReason(r),
			Subject: p.Subject, Kind: p.Kind, KeyID: p.KeyID, Source: p.Source, Realm: p.Realm,
			Roles: p.Roles, Scopes: p.Scopes, Projects: p.ProjectRoles, Grant: r.Grant(),
			CacheTTLms: r.CacheTTL.Milliseconds(),
		}
		if r.Decided() {
			d := r.Decision
			out.Matched = &matchedBody{Role: d.Role, Project: d.Project, Pattern: d.Pattern}
		}
		if out.Roles == nil {
			out.Roles = []string{}
		}
		if !r.ExpiresAt.IsZero() {
			e := r.ExpiresAt.UTC()
			out.ExpiresAt = &e
		}
		v = out
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// appendAnswer is the body handleVerify writes for r.
func appendAnswer(r verify.Result) []byte {
	var b []byte
	if r.Reason == verify.OK {
		b, _ = appendVerifyAllowed(nil, r, nil)
	} else {
		b = appendVerifyDenied(nil, r.Reason, answerReason(r))
	}
	return append(b, '\n')
}

// nasty holds the strings that need escaping, and some that do not.
var nasty = []string{
	"", "plain", `quote " and \ backslash`, "<script>&amp;</script>", "tab\tnewline\nreturn\rback\bfeed\f",
	"\x00\x01\x1f\x7f", "invalid \xff\xfe UTF-8 \xc0\xaf \xed\xa0\x80 surrogate", "truncated \xe2\x82",
	"line\u2028paragraph\u2029", "é 日本 😀", "/slash/",
}

func TestVerifyAnswersMatchEncodingJSON(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		paris = time.FixedZone("CEST", 2*3600)
	}
	full := &rbac.Principal{
		Subject: "alice",
		KeyID:   "k-1",
		Profile: &rbac.Profile{
			Kind:         "jwt",
			Source:       "idp",
			Realm:        "emea",
			Roles:        []string{"publisher", "viewer"},
			Scopes:       []string{"tool:data:*", "mailbox:alice:*"},
			ProjectRoles: map[string][]string{"p2": {"viewer"}, "p1": {"publisher", "admin"}, "P0": nil, "<&>": {}},
		},
	}
	minimal := &rbac.Principal{Subject: "bob", KeyID: "k-2", Profile: &rbac.Profile{Kind: "api_key"}}
	cases := map[string]verify.Result{
		"allowed, every member": {
			Reason: verify.OK, Principal: full,
			Decision:  rbac.Decision{Allowed: true, Reason: rbac.Granted, Role: "publisher", Project: "p1", Pattern: "projects/p1/topics/*:publish"},
			ExpiresAt: time.Date(2031, 2, 3, 4, 5, 6, 789, paris), CacheTTL: 4321 * time.Millisecond,
		},
		"allowed, stream rule": {
			Reason: verify.OK, Principal: full,
			Decision: rbac.Decision{Allowed: true, Reason: rbac.StreamRole, Role: "reader", Project: "mars"},
			CacheTTL: 5 * time.Second,
		},
		"allowed, no scope": {Reason: verify.OK, Principal: minimal, ExpiresAt: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), CacheTTL: time.Second},
		"allowed, whole-second expiry, odd TTL": {
			Reason: verify.OK, Principal: &rbac.Principal{Subject: "c", KeyID: "k", Profile: &rbac.Profile{Kind: "pat", Roles: []string{}}},
			ExpiresAt: time.Date(2030, 6, 1, 12, 0, 0, 120000000, time.UTC), CacheTTL: 1500 * time.Microsecond,
		},
		"allowed, no caching": {Reason: verify.OK, Principal: minimal, CacheTTL: -time.Second},
		"forbidden": {
			Reason: verify.Forbidden, Principal: full, Decision: rbac.Decision{Reason: rbac.NotOnACL}, CacheTTL: time.Second,
		},
	}
	for _, r := range verify.Reasons() {
		if r != verify.OK {
			cases["denied, "+r.String()] = verify.Result{Reason: r}
		}
	}
	for _, d := range []rbac.Reason{rbac.NoGrant, rbac.NotOnACL, rbac.AuthRequired, rbac.StreamForbidden} {
		cases["forbidden, "+d.String()] = verify.Result{Reason: verify.Forbidden, Principal: minimal, Decision: rbac.Decision{Reason: d}}
	}
	for _, d := range []rbac.Reason{rbac.Granted, rbac.Unrestricted, rbac.StreamOpen, rbac.StreamAuthenticated, rbac.StreamRole, rbac.StreamAdmin} {
		cases["allowed, "+d.String()] = verify.Result{Reason: verify.OK, Principal: minimal, Decision: rbac.Decision{Allowed: true, Reason: d, Role: "*"}}
	}
	for i, s := range nasty {
		cases["strings "+s] = verify.Result{
			Reason: verify.OK,
			Principal: &rbac.Principal{
				Subject: s,
				KeyID:   s,
				Profile: &rbac.Profile{
					Kind:         s,
					Source:       s,
					Realm:        s,
					Roles:        []string{s, s},
					Scopes:       []string{s},
					ProjectRoles: map[string][]string{s: {s}, nasty[(i+1)%len(nasty)]: {s}},
				},
			},
			Decision: rbac.Decision{Allowed: true, Reason: rbac.Granted, Role: s, Project: s, Pattern: s},
		}
	}
	for name, r := range cases {
		t.Run(name, func(t *testing.T) {
			want := referenceAnswer(t, r)
			if got := appendAnswer(r); !bytes.Equal(got, want) {
				t.Fatalf("answer differs from encoding/json's:\n got %s\nwant %s", got, want)
			}
		})
	}
}

// TestAppendJSONStringMatchesEncodingJSON compares the string encoder with
// encoding/json's on every string of up to two bytes and on random
// strings over the bytes that matter.
func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	check := func(s string) {
		t.Helper()
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("appendJSONString(%q) = %s, want %s", s, got, want)
		}
	}
	for a := range 256 {
		check(string([]byte{byte(a)}))
		for b := range 256 {
			check(string([]byte{byte(a), byte(b)}))
		}
	}
	alphabet := []string{"a", `"`, `\`, "<", ">", "&", "\x00", "\n", "\x1f", "\x7f", "\x80", "\xbf", "\xc3", "\xe2", "\x80\xa8", "\xf0", "\xff", "é", "\u2028", "\u2029", "😀"}
	rng := rand.New(rand.NewPCG(1, 2))
	var sb strings.Builder
	for range 20000 {
		sb.Reset()
		for range rng.IntN(12) {
			sb.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		check(sb.String())
	}
}

func TestVerifyBodyParse(t *testing.T) {
	accepted := []struct{ body, token, scope string }{
		{`{"token":"t1","scope":"a:b"}`, "t1", "a:b"},
		{` {"scope":"a:b" , "token":"t1"}` + "\r\n\t", "t1", "a:b"},
		{`{"token":"t1"}`, "t1", ""},
		{`{"scope":"a:b"}`, "", "a:b"},
		{`{}`, "", ""},
		{`{"token":null,"scope":null}`, "", ""},
		{`{"token":"t\u0031\"\\\/\n","scope":"\u00e9\ud83d\ude00"}`, "t1\"\\/\n", "é😀"},
		{`{"token":"<&>"}`, "<&>", ""},
	}
	var sc verifyScratch
	for _, tc := range accepted {
		tok, scope, err := sc.parse([]byte(tc.body), 1024)
		if err != nil || tok != tc.token || scope != tc.scope {
			t.Errorf("parse(%s) = %q, %q, %v; want %q, %q", tc.body, tok, scope, err, tc.token, tc.scope)
		}
	}
	rejected := []struct{ name, body, want string }{
		{"unknown field", `{"token":"t","scopes":"a"}`, `unknown field "scopes"`},
		{"case variant", `{"Token":"t"}`, `unknown field "Token"`},
		{"escaped unknown name", `{"tok\u0065n2":"t"}`, `unknown field "token2"`},
		{"number", `{"token":5}`, `field "token" must be a string, not a number`},
		{"boolean", `{"scope":true}`, `field "scope" must be a string, not a boolean`},
		{"array", `{"token":["t"]}`, `field "token" must be a string, not an array`},
		{"object", `{"scope":{}}`, `field "scope" must be a string, not an object`},
		{"top-level array", `[{"token":"t"}]`, "expected an object, got an array"},
		{"top-level null", `null`, "expected an object, got null"},
		{"top-level string", `"t"`, "expected an object, got a string"},
		{"trailing data", `{"token":"t"} {}`, "invalid JSON at byte 14: unexpected data after the object"},
		{"duplicate", `{"token":"a","token":"b"}`, "duplicate member name"},
		{"escaped duplicate", `{"token":"a","\u0074oken":"b"}`, "duplicate member name"},
		{"invalid UTF-8", "{\"token\":\"\xff\"}", "invalid UTF-8"},
		{"lone surrogate", `{"token":"\ud800"}`, "surrogate"},
		{"control character", "{\"token\":\"a\nb\"}", "control character"},
		{"truncated", `{"token":`, "invalid JSON at byte 9: unexpected end of input"},
		{"byte order mark", "\xef\xbb\xbf{}", "invalid JSON at byte 0"},
		{"whitespace only", " \r\n\t", "request body is empty"},
		{"too large", `{"token":"` + strings.Repeat("x", 1024) + `"}`, "request body is larger than 1024 bytes"},
	}
	for _, tc := range rejected {
		t.Run(tc.name, func(t *testing.T) {
			tok, scope, err := sc.parse([]byte(tc.body), 1024)
			if err == nil || !strings.Contains(err.Error(), tc.want) || tok != "" || scope != "" {
				t.Fatalf("parse(%q) = %q, %q, %v; want an error naming %q", tc.body, tok, scope, err, tc.want)
			}
			if strings.HasPrefix(tc.body, `{"token":"a"`) && strings.Contains(err.Error(), `"a"`) {
				t.Fatalf("the error quotes a value: %v", err)
			}
		})
	}
}
