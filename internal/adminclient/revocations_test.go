package adminclient_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/verifyd/verifyd/internal/adminclient"
	"github.com/verifyd/verifyd/internal/adminclient/admintest"
)

func TestRevocations(t *testing.T) {
	t.Parallel()
	c, _ := newTestClient(t)
	ctx := t.Context()

	l, err := c.ListRevocations(ctx)
	if err != nil || l.Tokens == nil || l.Subjects == nil || len(l.Tokens)+len(l.Subjects) != 0 {
		t.Fatalf("ListRevocations on a fresh daemon = %+v, %v; want two empty lists", l, err)
	}

	exp := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	before := time.Now().Add(-time.Second)
	tok, err := c.RevokeJWT(ctx, adminclient.JWTRevocation{TokenID: "jti-1", ExpiresAt: exp, Creator: "not sent", CreatedAt: exp})
	if err != nil {
		t.Fatal(err)
	}
	if tok.TokenID != "jti-1" || !tok.ExpiresAt.Equal(exp) || tok.Creator != "admin" || tok.CreatedAt.Before(before) || tok.CreatedAt.After(time.Now()) {
		t.Errorf("RevokeJWT(jti) = %+v", tok)
	}
	// A second revocation with an earlier expiry keeps the later one.
	again, err := c.RevokeJWT(ctx, adminclient.JWTRevocation{TokenID: "jti-1", ExpiresAt: exp.Add(-time.Hour)})
	if err != nil || !again.ExpiresAt.Equal(exp) {
		t.Errorf("RevokeJWT(jti) again = %+v, %v; want the expiry %v kept", again, err, exp)
	}

	sub, err := c.RevokeJWT(ctx, adminclient.JWTRevocation{Subject: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if sub.Subject != "alice" || sub.NotBefore.Before(before) || !sub.ExpiresAt.IsZero() || sub.TokenID != "" {
		t.Errorf("RevokeJWT(subject) = %+v", sub)
	}
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if got, err := c.RevokeJWT(ctx, adminclient.JWTRevocation{Subject: "bob", NotBefore: nb}); err != nil || !got.NotBefore.Equal(nb) {
		t.Errorf("RevokeJWT(subject, not before) = %+v, %v", got, err)
	}

	l, err = c.ListRevocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Tokens) != 1 || l.Tokens[0] != tok || len(l.Subjects) != 2 || l.Subjects[0] != sub || l.Subjects[1].Subject != "bob" {
		t.Errorf("ListRevocations = %+v", l)
	}
}

func TestRevocationErrors(t *testing.T) {
	t.Parallel()
	srv := admintest.NewServer(testAdminKey)
	t.Cleanup(srv.Close)
	noKey, err := adminclient.New(srv.URL, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := adminclient.New(srv.URL, testAdminKey, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, tc := range []struct {
		name string
		call func() error
		want error
	}{
		{"neither", func() error { _, err := c.RevokeJWT(ctx, adminclient.JWTRevocation{}); return err }, adminclient.ErrInvalidArgument},
		{"both", func() error {
			_, err := c.RevokeJWT(ctx, adminclient.JWTRevocation{TokenID: "j", Subject: "s"})
			return err
		}, adminclient.ErrInvalidArgument},
		{"revoke without admin key", func() error {
			_, err := noKey.RevokeJWT(ctx, adminclient.JWTRevocation{TokenID: "j"})
			return err
		}, adminclient.ErrNoAdminKey},
		{"list without admin key", func() error { _, err := noKey.ListRevocations(ctx); return err }, adminclient.ErrNoAdminKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, tc.want) {
				t.Errorf("error = %v, want %v", err, tc.want)
			}
		})
	}
	if n := srv.Connections(); n != 0 {
		t.Fatalf("server accepted %d connections, want 0", n)
	}

	for _, tc := range []struct {
		name string
		r    adminclient.JWTRevocation
		want string
	}{
		{"long jti", adminclient.JWTRevocation{TokenID: strings.Repeat("j", 1025)}, "more than 1024"},
		{"expiry with subject", adminclient.JWTRevocation{Subject: "s", ExpiresAt: time.Now()}, "expires_at applies to jti revocations only"},
		{"not before far ahead", adminclient.JWTRevocation{Subject: "s", NotBefore: time.Now().Add(time.Hour)}, "in the future"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.RevokeJWT(ctx, tc.r)
			var ae *adminclient.APIError
			if !errors.As(err, &ae) || ae.Status != 400 || ae.Code != adminclient.CodeBadRequest || !strings.Contains(ae.Message, tc.want) {
				t.Errorf("error = %v, want a 400 APIError naming %q", err, tc.want)
			}
		})
	}
	wrongKey, _ := adminclient.New(srv.URL, "not-the-admin-key", 0)
	var ae *adminclient.APIError
	if _, err := wrongKey.ListRevocations(ctx); !errors.As(err, &ae) || ae.Status != 401 {
		t.Errorf("ListRevocations with a wrong admin key = %v, want a 401 APIError", err)
	}
}

// TestRevocationOutsideContract checks that an answer about another
// revocation than the one requested fails the call.
func TestRevocationOutsideContract(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(201)
		w.Write([]byte(`{"jti":"someone-else","created_at":"2026-01-01T00:00:00Z"}`))
	}))
	t.Cleanup(srv.Close)
	c, err := adminclient.New(srv.URL, testAdminKey, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var ae *adminclient.APIError
	if _, err := c.RevokeJWT(t.Context(), adminclient.JWTRevocation{TokenID: "mine"}); err == nil || errors.As(err, &ae) {
		t.Errorf("RevokeJWT with a mismatched answer = %v, want a non-API error", err)
	}
}

// TestRevocationWireShapes pins the JSON of the revocation types.
func TestRevocationWireShapes(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"jti request", adminclient.JWTRevocation{TokenID: "j"}, `{"jti":"j"}`},
		{"jti with expiry", adminclient.JWTRevocation{TokenID: "j", ExpiresAt: at}, `{"jti":"j","expires_at":"2026-11-23T10:00:00Z"}`},
		{"subject request", adminclient.JWTRevocation{Subject: "s", NotBefore: at}, `{"subject":"s","not_before":"2026-11-23T10:00:00Z"}`},
		{"answer", adminclient.JWTRevocation{Subject: "s", NotBefore: at, CreatedAt: at, Creator: "admin"},
			`{"subject":"s","not_before":"2026-11-23T10:00:00Z","created_at":"2026-11-23T10:00:00Z","creator":"admin"}`},
		{"empty list", adminclient.RevocationList{Tokens: []adminclient.JWTRevocation{}, Subjects: []adminclient.JWTRevocation{}}, `{"tokens":[],"subjects":[]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, err := json.Marshal(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.want {
				t.Errorf("got  %s\nwant %s", b, tc.want)
			}
		})
	}
}
