package jwt

import (
	"slices"
	"testing"
)

// TestInformationalClaims covers the claims read for reporting only: "iss"
// without a configured issuer, "aud" in both its shapes and "azp", which
// never refuses a token whatever its type.
func TestInformationalClaims(t *testing.T) {
	f := newFixture(t)
	noIss := testProfile()
	noIss.Issuer = ""
	noAud := testProfile()
	noAud.Audience = nil
	cases := []struct {
		name     string
		v        *Verifier
		claims   string
		iss, azp string
		aud      []string
	}{
		{"defaults", f.v, payload(), testIssuer, "", []string{testAudience}},
		{"aud array", f.v, payload("aud", []string{"other", testAudience}), testIssuer, "", []string{"other", testAudience}},
		{"aud absent", verifierWith(t, noAud), payload("aud", omit), testIssuer, "", nil},
		{"iss unchecked", verifierWith(t, noIss), payload("iss", "https://any.example/\u00e9"), "https://any.example/\u00e9", "", []string{testAudience}},
		{"iss absent", verifierWith(t, noIss), payload("iss", omit), "", "", []string{testAudience}},
		{"azp", f.v, payload("azp", "gateway-7f3a"), testIssuer, "gateway-7f3a", []string{testAudience}},
		{"azp escaped", f.v, payload("azp", rawJSON(`"rs\u002d1"`)), testIssuer, "rs-1", []string{testAudience}},
		{"azp number", f.v, payload("azp", 7), testIssuer, "", []string{testAudience}},
		{"azp array", f.v, payload("azp", []string{"a"}), testIssuer, "", []string{testAudience}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, _, err := tc.v.Verify(signES256(es1Priv, hdrES1, tc.claims), now)
			if err != nil {
				t.Fatal(err)
			}
			if c.Issuer != tc.iss || c.AuthorizedParty != tc.azp || !slices.Equal(c.Audience, tc.aud) || (c.Audience == nil) != (tc.aud == nil) {
				t.Errorf("iss %q azp %q aud %q, want %q %q %q", c.Issuer, c.AuthorizedParty, c.Audience, tc.iss, tc.azp, tc.aud)
			}
		})
	}
}
