package verify

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/verifyd/verifyd/keystore"
)

func TestRevokeJWT(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	now := f.clock.Now()
	exp := now.Add(time.Hour)

	gen := f.store.RevocationGen()
	got, err := f.m.RevokeJWT(ctx, JWTRevocation{TokenID: "jti-1", ExpiresAt: exp, Creator: "ignored", CreatedAt: now.Add(-time.Hour)}, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if want := (JWTRevocation{TokenID: "jti-1", ExpiresAt: exp, CreatedAt: now, Creator: "admin"}); got != want {
		t.Errorf("RevokeJWT(jti) = %+v, want %+v", got, want)
	}
	if !f.store.TokenRevoked("jti-1", "", time.Time{}) || f.store.RevocationGen() == gen {
		t.Error("the jti revocation is not in effect when RevokeJWT returns")
	}

	// A subject with no not_before: now.
	got, err = f.m.RevokeJWT(ctx, JWTRevocation{Subject: "alice"}, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if want := (JWTRevocation{Subject: "alice", NotBefore: now, CreatedAt: now, Creator: "admin"}); got != want {
		t.Errorf("RevokeJWT(subject) = %+v, want %+v", got, want)
	}
	if !f.store.TokenRevoked("", "alice", now.Add(-time.Second)) || f.store.TokenRevoked("", "alice", now) {
		t.Error("the subject revocation is not in effect at now")
	}

	// Half a second later: rounded up to the next whole second, so that a
	// token issued in this second (iat truncated to it) is revoked too.
	f.clock.Advance(500 * time.Millisecond)
	got, err = f.m.RevokeJWT(ctx, JWTRevocation{Subject: "alice"}, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if want := now.Add(time.Second); !got.NotBefore.Equal(want) {
		t.Errorf("NotBefore = %v, want %v", got.NotBefore, want)
	}
	if !f.store.TokenRevoked("", "alice", now) {
		t.Error("a token issued in the second of the revocation is not revoked")
	}

	// An earlier not_before returns the revocation in effect.
	earlier, err := f.m.RevokeJWT(ctx, JWTRevocation{Subject: "alice", NotBefore: now.Add(-time.Hour)}, "someone")
	if err != nil {
		t.Fatal(err)
	}
	if earlier != got {
		t.Errorf("earlier not_before returned %+v, want the revocation in effect %+v", earlier, got)
	}

	// Up to MaxRevocationLead in the future is allowed.
	ahead := f.clock.Now().Add(MaxRevocationLead).Truncate(time.Second)
	if got, err := f.m.RevokeJWT(ctx, JWTRevocation{Subject: "bob", NotBefore: ahead}, "admin"); err != nil || !got.NotBefore.Equal(ahead) {
		t.Errorf("not_before %v ahead = %+v, %v", MaxRevocationLead, got, err)
	}

	list, err := f.m.ListJWTRevocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, r := range list {
		keys = append(keys, r.TokenID+"|"+r.Subject)
	}
	if want := []string{"jti-1|", "|alice", "|bob"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("ListJWTRevocations = %v, want %v", keys, want)
	}
}

func TestRevokeJWTProblems(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	now := f.clock.Now()
	long := strings.Repeat("x", keystore.MaxRevocationIDLen+1)
	tests := []struct {
		name string
		r    JWTRevocation
		want []string
	}{
		{"neither", JWTRevocation{}, []string{"one of jti and subject is required"}},
		{"both", JWTRevocation{TokenID: "j", Subject: "s"}, []string{"not both"}},
		{"not_before with jti", JWTRevocation{TokenID: "j", NotBefore: now}, []string{"not_before applies to subject revocations only"}},
		{"expires_at with subject", JWTRevocation{Subject: "s", ExpiresAt: now}, []string{"expires_at applies to jti revocations only"}},
		{"too far ahead", JWTRevocation{Subject: "s", NotBefore: now.Add(MaxRevocationLead + time.Second)}, []string{"not_before is 5m1s in the future; at most 5m0s is allowed"}},
		{"long jti", JWTRevocation{TokenID: long}, []string{"jti is 1025 bytes, more than 1024"}},
		{"control in subject", JWTRevocation{Subject: "a\x1bb"}, []string{"subject must be UTF-8 without control characters"}},
		{"every problem at once", JWTRevocation{TokenID: long, Subject: "a\nb", ExpiresAt: now, NotBefore: now.Add(time.Hour)},
			[]string{"not both", "not_before applies", "expires_at applies", "in the future", "jti is 1025 bytes", "subject must be UTF-8"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.m.RevokeJWT(ctx, tc.r, "admin")
			var se *InvalidSpecError
			if !errors.As(err, &se) {
				t.Fatalf("RevokeJWT = %v, want *InvalidSpecError", err)
			}
			all := strings.Join(se.Problems, "; ")
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("problems %q do not name %q", all, w)
				}
			}
		})
	}
	if _, err := f.m.RevokeJWT(ctx, JWTRevocation{TokenID: "j"}, strings.Repeat("a", keystore.MaxTextLen+1)); err == nil {
		t.Error("an oversized actor was accepted")
	}
	if list, _ := f.m.ListJWTRevocations(ctx); len(list) != 0 {
		t.Errorf("refused revocations were stored: %+v", list)
	}

	f.store.Close()
	_, err := f.m.RevokeJWT(ctx, JWTRevocation{TokenID: "j"}, "admin")
	var se *InvalidSpecError
	if !errors.Is(err, keystore.ErrClosed) || errors.As(err, &se) {
		t.Errorf("RevokeJWT on a closed store = %v, want ErrClosed", err)
	}
	if _, err := f.m.ListJWTRevocations(ctx); !errors.Is(err, keystore.ErrClosed) {
		t.Errorf("ListJWTRevocations on a closed store = %v, want ErrClosed", err)
	}
}
