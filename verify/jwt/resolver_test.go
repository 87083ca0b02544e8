package jwt

import (
	"errors"
	"strings"
	"testing"
)

// brokenResolver fails without saying why in terms of this package.
type brokenResolver struct{}

func (brokenResolver) ResolveKey(Alg, string) (*Key, error) {
	return nil, errors.New("registry unavailable")
}

// TestResolverErrorsAreUntrustedKey: whatever error a resolver returns, the
// token is refused as ErrUntrustedKey, with the resolver's text kept.
func TestResolverErrorsAreUntrustedKey(t *testing.T) {
	v := mustVerifier(t, brokenResolver{}, nil)
	tok := signHS256([]byte(strings.Repeat("s", 32)), `{"alg":"HS256","kid":"hs-1"}`, payload())
	_, _, err := v.Verify(tok, now)
	checkErr(t, err, ErrUntrustedKey)
	if !strings.Contains(err.Error(), "registry unavailable") {
		t.Errorf("error %q lost the resolver's reason", err)
	}
}
