package verify

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/verify/credential"
)

// TestIntrospectStoredKey: a valid stored key reports its creation time,
// through a rotation too; every refusal is Verify's.
func TestIntrospectStoredKey(t *testing.T) {
	f := newFixture(t)
	created := f.clock.Now()
	rec, secret := f.create(t, KeySpec{Subject: "alice", Scopes: []string{"tool:data:*"}, ExpiresIn: time.Hour})
	f.clock.Advance(time.Minute)
	in := f.v.Introspect(secret)
	if in.Reason != OK || in.Principal.KeyID != rec.ID || !in.IssuedAt.Equal(created) || !in.ExpiresAt.Equal(rec.ExpiresAt) {
		t.Fatalf("valid key: %v key %v issued %v expires %v, want ok %s %v %v", in.Reason, in.Principal, in.IssuedAt, in.ExpiresAt, rec.ID, created, rec.ExpiresAt)
	}
	if in.Issuer != "" || in.Audience != nil || in.AuthorizedParty != "" {
		t.Errorf("a stored key reports JWT claims: %+v", in)
	}
	_, rotated, err := f.m.RotateKey(context.Background(), rec.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if in := f.v.Introspect(rotated); in.Reason != OK || !in.IssuedAt.Equal(created) {
		t.Errorf("rotated key: %v issued %v, want ok %v", in.Reason, in.IssuedAt, created)
	}
	if in := f.v.Introspect(secret); in.Reason != Unknown || in.Principal != nil || !in.IssuedAt.IsZero() {
		t.Errorf("the secret replaced without grace: %+v", in)
	}
	f.clock.Advance(time.Hour)
	if in := f.v.Introspect(rotated); in.Reason != Expired || !in.IssuedAt.IsZero() {
		t.Errorf("expired key: %+v", in)
	}
}

// TestIntrospectJWT: a valid JWT reports the claims kept in its cache
// entry, cold and cached alike; refusals report nothing.
func TestIntrospectJWT(t *testing.T) {
	f := newJWTFixture(t)
	c := f.claims("carol")
	c["aud"] = []string{"verifyd", "billing"}
	c["azp"] = "gateway-1"
	tok := f.sign(t, "ES256", c)
	iat := time.Unix(c["iat"].(int64), 0)
	for _, pass := range []string{"cold", "cached"} {
		in := f.v.Introspect(tok)
		if in.Reason != OK || in.Principal.Subject != "carol" || in.Issuer != "https://issuer.example" ||
			!slices.Equal(in.Audience, []string{"verifyd", "billing"}) || in.AuthorizedParty != "gateway-1" || !in.IssuedAt.Equal(iat) {
			t.Errorf("%s: %+v", pass, in)
		}
	}
	if _, err := f.store.RevokeToken(context.Background(), keystore.TokenRevocation{TokenID: "jti-carol"}); err != nil {
		t.Fatal(err)
	}
	if in := f.v.Introspect(tok); in.Reason != Revoked || in.Issuer != "" || !in.IssuedAt.IsZero() {
		t.Errorf("revoked token: %+v", in)
	}
}

// TestIntrospectCountsAsVerification: an introspection is a verification
// in the decision metrics, under the kind and status Verify would count.
func TestIntrospectCountsAsVerification(t *testing.T) {
	f := newFixture(t)
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	f.v.metrics = m
	_, secret := f.create(t, KeySpec{Subject: "a"})
	f.v.Introspect(secret)
	f.v.Introspect("x")
	f.v.Introspect("x")
	if ok, bad := m.decisionCount(credential.APIKey, OK), m.decisionCount(credential.Malformed, Malformed); ok != 1 || bad != 2 {
		t.Errorf("counted %v ok api keys and %v malformed tokens, want 1 and 2", ok, bad)
	}
}
