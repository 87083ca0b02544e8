package httpapi

import (
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/verifyd/verifyd/internal/strictjson"
)

// verifyRequest is the struct POST /v1/verify bodies were decoded into
// with encoding/json (decodeBody): the reference of FuzzVerifyBody.
type verifyRequest struct {
	Token string `json:"token"`
	Scope string `json:"scope"`
}

// fuzzBodyLimit is the body limit of FuzzVerifyBody: small, so that the
// limit is explored too.
const fuzzBodyLimit = 512

// FuzzVerifyBody checks the POST /v1/verify body parser against
// encoding/json's strict decoding (decodeBody, which the body went
// through before): what the parser accepts, encoding/json accepts with the
// same token and scope; what it refuses, encoding/json refuses too, unless
// the body is one the parser refuses by design (strictOnly); a refusal
// yields no token or scope and a message for the client. The scratch is
// reused across inputs, as the pool reuses it.
func FuzzVerifyBody(f *testing.F) {
	var sc verifyScratch
	f.Fuzz(func(t *testing.T, body []byte) {
		token, scope, err := sc.parse(body, fuzzBodyLimit)
		var ctx fasthttp.RequestCtx
		ctx.Request.SetBody(body)
		var want verifyRequest
		refErr := decodeBody(&ctx, fuzzBodyLimit, &want)
		if err == nil {
			if refErr != nil {
				t.Fatalf("parse(%q) accepts what encoding/json refuses: %v", body, refErr)
			}
			if token != want.Token || scope != want.Scope {
				t.Fatalf("parse(%q) = %q, %q; encoding/json decodes %q, %q", body, token, scope, want.Token, want.Scope)
			}
			return
		}
		if token != "" || scope != "" {
			t.Fatalf("parse(%q) failed (%v) but returned %q, %q", body, err, token, scope)
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "invalid JSON") && !strings.HasPrefix(msg, "request body is ") {
			t.Fatalf("parse(%q): message %q does not say what is wrong with the body", body, msg)
		}
		if refErr == nil && !strictOnly(body) {
			t.Fatalf("parse(%q) = %v; encoding/json accepts it, for none of the reasons the parser is stricter", body, err)
		}
	})
}

// strictOnly reports whether body is one encoding/json accepts and the
// verify body parser refuses by design: strictjson refuses it (invalid
// UTF-8, a lone surrogate escape, a duplicate member), its top level is
// null, or it names a member that is "token" or "scope" only when case is
// ignored (encoding/json matches names case-insensitively).
func strictOnly(body []byte) bool {
	var d strictjson.Doc
	if d.Parse(body) != nil {
		return true
	}
	root := d.Root()
	if root.Kind() == strictjson.Null {
		return true
	}
	for name := range root.Members() {
		if !name.StrEqual("token") && !name.StrEqual("scope") {
			return true
		}
	}
	return false
}
