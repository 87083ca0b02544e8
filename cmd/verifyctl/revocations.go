package main

import (
	"context"
	"errors"
	"flag"
	"strconv"
	"time"

	"github.com/verifyd/verifyd/internal/adminclient"
)

// timeValue is a flag holding a point in time, given as an RFC 3339 time,
// "now", or a number of Unix seconds (as in a JWT's exp and iat claims).
type timeValue struct {
	t   time.Time
	now bool // "now" was given; t is then this machine's current time
}

func (v *timeValue) String() string {
	switch {
	case v.now:
		return "now"
	case v.t.IsZero():
		return ""
	}
	return v.t.UTC().Format(time.RFC3339)
}

func (v *timeValue) Set(s string) error {
	if s == "now" {
		v.t, v.now = time.Now(), true
		return nil
	}
	v.now = false
	if sec, err := strconv.ParseInt(s, 10, 64); err == nil {
		v.t = time.Unix(sec, 0)
		return nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return errors.New(`want an RFC 3339 time such as 2026-05-01T12:00:00Z, "now", or Unix seconds`)
	}
	v.t = t
	return nil
}

var revokeJWTCmd = &command{
	name:     "revoke jwt",
	synopsis: "revoke jwt (--jti ID [--expires-at TIME] | --subject S [--not-before TIME])",
	summary:  "revoke JWTs by jti, or by subject and issue time",
	help: `Revokes JWTs, which the daemon does not store and so revokes by what they carry:

  --jti ID        the one token whose "jti" claim is ID
  --subject S     every token of subject S whose "iat" claim is before the
                  --not-before time (default: now), and every token of S
                  without an "iat"

From the moment the command returns, the revocation is durable and the daemon
refuses the tokens it covers, including those whose answers it had cached. Revocations only
widen: revoking a jti again keeps the later expiry, and a subject's not-before
only moves forward, so an earlier one leaves the revocation in effect as it is.
The revocation in effect is printed.

  verifyctl revoke jwt --jti 4f1c2a9e --expires-at 1767225600
  verifyctl revoke jwt --subject alice@example.com

TIME is an RFC 3339 time (2026-05-01T12:00:00Z), "now", or Unix seconds, the
form of a JWT's exp and iat claims. For --not-before, "now" (the default) is
the daemon's clock, which is what its verifications are judged by; a time more
than 5 minutes ahead of it is refused. Since iat is in whole seconds, the
daemon rounds a not-before up to a whole second.

Flags:
  --jti ID                    revoke the token whose jti is ID
  --expires-at TIME           with --jti: when the daemon may forget the
                              revocation, normally the token's exp
                              (default: never)
  --subject S                 revoke the tokens of subject S
  --not-before TIME           with --subject: revoke the tokens issued before
                              TIME (default: now)
`,
	maxArgs: 0,
	bind: func(fs *flag.FlagSet) func(context.Context, *session, []string) error {
		var (
			jti, subject         string
			expiresAt, notBefore timeValue
		)
		fs.StringVar(&jti, "jti", "", "")
		fs.StringVar(&subject, "subject", "", "")
		fs.Var(&expiresAt, "expires-at", "")
		fs.Var(&notBefore, "not-before", "")
		return func(ctx context.Context, s *session, _ []string) error {
			const name = "revoke jwt"
			switch {
			case (jti == "") == (subject == ""):
				return usagef(name, "give exactly one of --jti and --subject")
			case jti != "" && (notBefore.now || !notBefore.t.IsZero()):
				return usagef(name, "--not-before goes with --subject; a jti revocation takes --expires-at")
			case subject != "" && (expiresAt.now || !expiresAt.t.IsZero()):
				return usagef(name, "--expires-at goes with --jti; a subject revocation takes --not-before")
			}
			r := adminclient.JWTRevocation{TokenID: jti, Subject: subject, ExpiresAt: expiresAt.t}
			if !notBefore.now {
				r.NotBefore = notBefore.t // "now" is left to the daemon's clock
			}
			c, err := s.client(true)
			if err != nil {
				return err
			}
			got, err := c.RevokeJWT(ctx, r)
			if err != nil {
				return err
			}
			return s.printRevocation(got)
		}
	},
}

var revocationsListCmd = &command{
	name:     "revocations list",
	synopsis: "revocations list",
	summary:  "list the JWT revocations in effect",
	help: `Lists the JWT revocations in effect: revoked jtis, then subjects with the time
before which their tokens are revoked. A jti revocation is forgotten a day after
its expiry, when the token it names has long stopped verifying.
`,
	maxArgs: 0,
	bind: func(*flag.FlagSet) func(context.Context, *session, []string) error {
		return func(ctx context.Context, s *session, _ []string) error {
			c, err := s.client(true)
			if err != nil {
				return err
			}
			l, err := c.ListRevocations(ctx)
			if err != nil {
				return err
			}
			return s.printRevocations(l)
		}
	},
}
