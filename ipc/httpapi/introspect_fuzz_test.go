package httpapi

import (
	"net/url"
	"testing"
)

// FuzzIntrospectionRequest checks the parsing of POST /v1/introspect
// requests against net/url, the reference for form encoding:
//   - a refusal is a 400 invalid_request or a 401 invalid_client with a
//     description, and returns no partial request;
//   - an accepted request has both credentials; client_secret_post ones
//     are the form's own values, and Basic ones, encoded again as RFC 6749
//     §2.3.1 says, parse to the same request;
//   - any id and secret survive client_secret_basic and client_secret_post
//     unchanged.
func FuzzIntrospectionRequest(f *testing.F) {
	const form = "application/x-www-form-urlencoded"
	f.Add(form, "Basic cnM6cnMlMkRzZWNyZXQ=", "token_type_hint=access_token&token=good", "rs", "rs-secret")
	f.Add(form, "", "token=t&client_id=rs&client_secret=rs-secret", "svc acct", "s3cr+t/%")
	f.Add(form+"; charset=utf-8", "basic Og==", "token=%zz", ":", "%")
	f.Add("application/json", "Bearer x", `{"token":"t"}`, "a", "b")
	f.Fuzz(func(t *testing.T, contentType, authorization, body, id, secret string) {
		req, oerr := parseIntrospectionRequest(contentType, authorization, body)
		if oerr != nil {
			if req != (introspectionRequest{}) {
				t.Fatalf("a refusal returned a partial request %+v", req)
			}
			if !(oerr.status == 400 && oerr.code == "invalid_request" || oerr.status == 401 && oerr.code == "invalid_client") || oerr.description == "" {
				t.Fatalf("refusal %+v", oerr)
			}
		} else {
			values, err := url.ParseQuery(body)
			if err != nil {
				t.Fatalf("accepted a body net/url refuses: %v", err)
			}
			if req.clientID == "" || req.clientSecret == "" || req.token != values.Get("token") || req.hint != values.Get("token_type_hint") {
				t.Fatalf("request %+v from form %v", req, values)
			}
			if authorization == "" {
				if req.clientID != values.Get("client_id") || req.clientSecret != values.Get("client_secret") {
					t.Fatalf("client_secret_post credentials %q %q, form %v", req.clientID, req.clientSecret, values)
				}
			} else if again, oerr := parseIntrospectionRequest(contentType, basic(req.clientID, req.clientSecret), body); oerr != nil || again != req {
				t.Fatalf("Basic credentials encoded again: %+v %+v, want %+v", again, oerr, req)
			}
			if req.check() == nil && req.token == "" {
				t.Fatal("check accepted a request without a token")
			}
		}

		if id == "" || secret == "" {
			return
		}
		req, oerr = parseIntrospectionRequest(form, basic(id, secret), "token=t")
		if oerr != nil || req.clientID != id || req.clientSecret != secret || req.token != "t" {
			t.Fatalf("client_secret_basic %q %q: %+v %+v", id, secret, req, oerr)
		}
		post := url.Values{"token": {"t"}, "client_id": {id}, "client_secret": {secret}}.Encode()
		req, oerr = parseIntrospectionRequest(form, "", post)
		if oerr != nil || req.clientID != id || req.clientSecret != secret {
			t.Fatalf("client_secret_post %q %q: %+v %+v", id, secret, req, oerr)
		}
	})
}
