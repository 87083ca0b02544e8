package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

type revocationAnswer struct {
	JTI       string     `json:"jti"`
	Subject   string     `json:"subject"`
	ExpiresAt *time.Time `json:"expires_at"`
	NotBefore *time.Time `json:"not_before"`
	CreatedAt time.Time  `json:"created_at"`
	Creator   string     `json:"creator"`
	Code      string     `json:"code"`
	Message   string     `json:"message"`
}

type revocationListAnswer struct {
	Tokens   []revocationAnswer `json:"tokens"`
	Subjects []revocationAnswer `json:"subjects"`
}

func (s *testServer) revoke(body string) revocationAnswer {
	s.t.Helper()
	var a revocationAnswer
	if code := s.do("POST", "/v1/admin/revocations", adminKey, body, &a); code != 201 {
		s.t.Fatalf("revoke %s: %d %+v", body, code, a)
	}
	return a
}

func (s *testServer) revocations() revocationListAnswer {
	s.t.Helper()
	var l revocationListAnswer
	if code := s.do("GET", "/v1/admin/revocations", adminKey, "", &l); code != 200 {
		s.t.Fatalf("list revocations: %d %+v", code, l)
	}
	return l
}

func TestRevokeJWTEndpoint(t *testing.T) {
	s := newTestServer(t)
	if l := s.revocations(); l.Tokens == nil || l.Subjects == nil || len(l.Tokens)+len(l.Subjects) != 0 {
		t.Fatalf("empty list = %+v, want two empty arrays", l)
	}
	start := time.Now().Add(-time.Second)

	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	a := s.revoke(`{"jti":"jti-rfc3339","expires_at":"2030-01-02T04:04:05+01:00"}`)
	if a.JTI != "jti-rfc3339" || a.ExpiresAt == nil || !a.ExpiresAt.Equal(exp) || a.ExpiresAt.Location() != time.UTC ||
		a.NotBefore != nil || a.Subject != "" || a.CreatedAt.Before(start) || a.Creator != "admin" {
		t.Errorf("jti with an RFC 3339 expiry: %+v", a)
	}
	a = s.revoke(fmt.Sprintf(`{"jti":"jti-numeric","expires_at":%d}`, exp.Unix()))
	if a.ExpiresAt == nil || !a.ExpiresAt.Equal(exp) {
		t.Errorf("jti with a NumericDate expiry: %+v", a)
	}
	a = s.revoke(`{"jti":"jti-forever"}`)
	if a.ExpiresAt != nil {
		t.Errorf("jti without expiry: %+v", a)
	}
	a = s.revoke(`{"jti":"jti-null","expires_at":null}`)
	if a.ExpiresAt != nil {
		t.Errorf("jti with a null expiry: %+v", a)
	}
	// Revoking again keeps the later expiry.
	a = s.revoke(`{"jti":"jti-numeric","expires_at":"2029-01-01T00:00:00Z"}`)
	if !a.ExpiresAt.Equal(exp) {
		t.Errorf("a second revocation with an earlier expiry answered %+v, want the later %v", a, exp)
	}

	a = s.revoke(`{"subject":"alice"}`)
	if a.Subject != "alice" || a.NotBefore == nil || a.NotBefore.Before(start) || a.NotBefore.After(time.Now().Add(time.Second)) ||
		a.NotBefore.Nanosecond() != 0 || a.ExpiresAt != nil || a.JTI != "" {
		t.Errorf("subject without not_before: %+v, want now rounded up to a second", a)
	}
	// An earlier not_before answers the revocation in effect.
	b := s.revoke(`{"subject":"alice","not_before":1700000000}`)
	if !b.NotBefore.Equal(*a.NotBefore) {
		t.Errorf("an earlier not_before answered %+v, want %v", b, a.NotBefore)
	}
	nb := time.Date(2023, 11, 14, 22, 13, 21, 0, time.UTC)
	b = s.revoke(`{"subject":"bob","not_before":1700000000.25}`)
	if !b.NotBefore.Equal(nb) {
		t.Errorf("fractional NumericDate: %+v, want %v (rounded up)", b, nb)
	}

	l := s.revocations()
	var jtis, subjects []string
	for _, r := range l.Tokens {
		jtis = append(jtis, r.JTI)
	}
	for _, r := range l.Subjects {
		subjects = append(subjects, r.Subject)
	}
	if fmt.Sprint(jtis) != "[jti-forever jti-null jti-numeric jti-rfc3339]" || fmt.Sprint(subjects) != "[alice bob]" {
		t.Errorf("list = %v, %v", jtis, subjects)
	}

	// The answer's exact shape.
	resp, err := http.Get(s.base + "/v1/admin/revocations")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	req, _ := http.NewRequest("POST", s.base+"/v1/admin/revocations", strings.NewReader(`{"jti":"shape","expires_at":"2030-01-02T03:04:05Z"}`))
	req.Header.Set("X-Admin-Key", adminKey)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var fields map[string]any
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatal(err)
	}
	if len(fields) != 4 || fields["jti"] != "shape" || fields["expires_at"] != "2030-01-02T03:04:05Z" || fields["created_at"] == nil || fields["creator"] != "admin" {
		t.Errorf("answer = %s", raw)
	}
}

func TestRevokeJWTBadRequests(t *testing.T) {
	s := newTestServer(t)
	long := strings.Repeat("j", 1025)
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	cases := []struct {
		name, body, want string
	}{
		{"neither", `{}`, "one of jti and subject is required"},
		{"empty strings", `{"jti":"","subject":""}`, "one of jti and subject is required"},
		{"both", `{"jti":"j","subject":"s"}`, "not both"},
		{"unknown field", `{"jti":"j","exp":1}`, `unknown field "exp"`},
		{"bad time string", `{"jti":"j","expires_at":"tomorrow"}`, `expires_at "tomorrow" is not an RFC 3339 time`},
		{"time without zone", `{"subject":"s","not_before":"2026-05-01T12:00:00"}`, "not_before"},
		{"exponent", `{"jti":"j","expires_at":1e9}`, "expires_at 1e9 is not"},
		{"too many decimals", `{"jti":"j","expires_at":1.0000000001}`, "expires_at 1.0000000001 is not"},
		{"time as bool", `{"jti":"j","expires_at":true}`, "expires_at true is not"},
		{"time as object", `{"jti":"j","expires_at":{}}`, "expires_at {} is not"},
		{"out of range", `{"jti":"j","expires_at":300000000000}`, "expires_at is outside years 1 to 9999"},
		{"too long", `{"jti":"` + long + `"}`, "jti is 1025 bytes, more than 1024"},
		{"control character", `{"subject":"a\u0007b"}`, "subject must be UTF-8 without control characters"},
		{"not_before with jti", `{"jti":"j","not_before":1}`, "not_before applies to subject revocations only"},
		{"expires_at with subject", `{"subject":"s","expires_at":1}`, "expires_at applies to jti revocations only"},
		{"not_before far ahead", `{"subject":"s","not_before":"` + future + `"}`, "in the future"},
		{"two bad times", `{"jti":"j","expires_at":"x","not_before":"y"}`, `expires_at "x" is not an RFC 3339 time such as "2026-05-01T12:00:00Z" or a number of Unix seconds; not_before "y"`},
		{"empty body", ``, "empty"},
		{"wrong type", `{"jti":5}`, `"jti"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var a revocationAnswer
			code := s.do("POST", "/v1/admin/revocations", adminKey, tc.body, &a)
			if code != 400 || a.Code != "BAD_REQUEST" || !strings.Contains(a.Message, tc.want) {
				t.Fatalf("got %d %+v, want 400 naming %q", code, a, tc.want)
			}
			if l := s.revocations(); len(l.Tokens)+len(l.Subjects) != 0 {
				t.Fatalf("a bad request stored a revocation: %+v", l)
			}
		})
	}
}

func TestRevocationsRequireTheAdminKey(t *testing.T) {
	s := newTestServer(t)
	k := s.create(`{"subject":"alice"}`)
	for _, key := range []string{"", "wrong-admin-key-0123456789", k.Secret} {
		for _, r := range []struct{ method, body string }{{"GET", ""}, {"POST", `{"jti":"j"}`}, {"DELETE", ""}} {
			var a answer
			if code := s.do(r.method, "/v1/admin/revocations", key, r.body, &a); code != 401 || a.Code != "UNAUTHORIZED" {
				t.Errorf("%s with key %q: %d %+v", r.method, key, code, a)
			}
		}
	}
	if l := s.revocations(); len(l.Tokens) != 0 {
		t.Errorf("a refused call revoked: %+v", l)
	}
	var a answer
	if code := s.do("DELETE", "/v1/admin/revocations", adminKey, "", &a); code != 405 {
		t.Errorf("DELETE: %d %+v", code, a)
	}
	if code := s.do("GET", "/v1/admin/revocations/x", adminKey, "", &a); code != 404 {
		t.Errorf("GET /v1/admin/revocations/x: %d", code)
	}
	resp, err := http.Get(s.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`verifyd_http_requests_total{code="401",route="admin_revocations"}`, `verifyd_keystore_revocations{kind="token"} 0`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{in: ``, want: time.Time{}},
		{in: `null`, want: time.Time{}},
		{in: `0`, want: time.Unix(0, 0)},
		{in: `1700000000`, want: time.Unix(1700000000, 0)},
		{in: `1700000000.5`, want: time.Unix(1700000000, 5e8)},
		{in: `1700000000.123456789`, want: time.Unix(1700000000, 123456789)},
		{in: `-1.5`, want: time.Unix(-1, -5e8)},
		{in: `"2026-05-01T12:00:00Z"`, want: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)},
		{in: `"2026-05-01T14:00:00.25+02:00"`, want: time.Date(2026, 5, 1, 12, 0, 0, 25e7, time.UTC)},
		{in: `"2026-05-01"`, bad: true},
		{in: `"now"`, bad: true},
		{in: `""`, bad: true},
		{in: `1.`, bad: true},
		{in: `-`, bad: true},
		{in: `1e3`, bad: true},
		{in: `99999999999999999999`, bad: true},
		{in: `[1]`, bad: true},
	}
	for _, tc := range tests {
		got, err := parseTime("t", json.RawMessage(tc.in))
		if tc.bad != (err != nil) || !got.Equal(tc.want) {
			t.Errorf("parseTime(%s) = %v, %v", tc.in, got, err)
		}
	}
}
