package httpapi

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/verifyd/verifyd/rbac"
)

// lenientUnescape is the reference of the percent-decoding of Basic
// passwords: "%XX" with two hex digits is the byte, anything else stays.
func lenientUnescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			hi, _ := unhex(s[i+1])
			lo, _ := unhex(s[i+2])
			b.WriteByte(hi<<4 | lo)
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool { _, ok := unhex(c); return ok }

// FuzzAuthzBasicToken checks the reading of the forward-auth endpoint's
// Basic credentials against encoding/base64 and a reference decoding:
//   - for any user (without ':') and password, the token is the password,
//     or the user when the password is empty, percent-decoded, and found
//     exactly when it is not empty;
//   - for any header value, a token is found only in standard base64 of
//     "user:password", and is what the first property says of it.
func FuzzAuthzBasicToken(f *testing.F) {
	f.Add("alice", "vk_secret", []byte("YWxpY2U6dmtfc2VjcmV0"))
	f.Add("vk_token", "", []byte("dmtfdG9rZW46"))
	f.Add("rs", "a%2Fb%zz%4", []byte("Og=="))
	f.Add("", "", []byte("not base64!"))
	f.Add("user", "p:w", []byte("dXNlcg"))
	var sc authzScratch
	f.Fuzz(func(t *testing.T, user, pass string, raw []byte) {
		want := func(user, pass string) (string, bool) {
			tok := pass
			if tok == "" {
				tok = user
			}
			tok = lenientUnescape(tok)
			return tok, tok != ""
		}
		if !strings.Contains(user, ":") {
			enc := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
			got, ok := sc.basicToken([]byte(enc))
			if w, wok := want(user, pass); ok != wok || ok && string(got) != w {
				t.Fatalf("user %q password %q: basicToken = %q, %v; want %q, %v", user, pass, got, ok, w, wok)
			}
		}
		got, ok := sc.basicToken(raw)
		decoded, err := base64.StdEncoding.DecodeString(string(raw))
		if err != nil {
			if ok {
				t.Fatalf("%q is not standard base64, yet basicToken found %q", raw, got)
			}
			return
		}
		u, p, found := bytes.Cut(decoded, []byte(":"))
		if !found {
			if ok {
				t.Fatalf("%q holds no ':', yet basicToken found %q", decoded, got)
			}
			return
		}
		if w, wok := want(string(u), string(p)); ok != wok || ok && string(got) != w {
			t.Fatalf("%q: basicToken = %q, %v; want %q, %v", decoded, got, ok, w, wok)
		}
	})
}

// referenceRouteScope matches method and path against r with strings.Split
// and builds the scope the route gives, or reports why it gives none.
func referenceRouteScope(r Route, method, path string) (string, routeOutcome) {
	if r.Method != "" && r.Method != "*" && r.Method != method || !strings.HasPrefix(path, "/") {
		return "", routeNone
	}
	tmpl, segs := strings.Split(r.Path[1:], "/"), strings.Split(path[1:], "/")
	if len(tmpl) != len(segs) {
		return "", routeNone
	}
	values := map[string]string{}
	for i, ts := range tmpl {
		open := strings.IndexByte(ts, '{')
		if open < 0 {
			if segs[i] != ts {
				return "", routeNone
			}
			continue
		}
		end := strings.IndexByte(ts, '}')
		prefix, name, suffix := ts[:open], ts[open+1:end], ts[end+1:]
		s := segs[i]
		if len(s) < len(prefix)+len(suffix) || !strings.HasPrefix(s, prefix) || !strings.HasSuffix(s, suffix) {
			return "", routeNone
		}
		values[name] = s[len(prefix) : len(s)-len(suffix)]
	}
	var scope strings.Builder
	rest := r.Scope
	for rest != "" {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			scope.WriteString(rest)
			break
		}
		end := strings.IndexByte(rest, '}')
		scope.WriteString(rest[:open])
		raw := values[rest[open+1:end]]
		v := strictUnescape(raw)
		if v == "" || v == "." || v == ".." || strings.ContainsAny(v, "/:*") {
			return "", routeBadParam
		}
		scope.WriteString(v)
		rest = rest[end+1:]
	}
	if rbac.ValidateScope(scope.String()) != nil {
		return "", routeBadParam
	}
	return scope.String(), routeMatched
}

// strictUnescape percent-decodes s, or returns "" when an escape is not
// "%XX" with two hex digits.
func strictUnescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return ""
			}
			hi, _ := unhex(s[i+1])
			lo, _ := unhex(s[i+2])
			c = hi<<4 | lo
			i += 2
		}
		b.WriteByte(c)
	}
	return b.String()
}

// FuzzAuthzRoutes compiles a route of the forward-auth route table and
// matches a request against it. The table never panics; what it compiles,
// it matches as a reference matcher built on strings.Split does: the same
// outcome, and the same scope; a matched scope is a valid scope, and no
// parameter brings a '/', ':' or '*' into it once percent-decoded (a value
// holding one is refused, as is an empty or dot-segment value).
func FuzzAuthzRoutes(f *testing.F) {
	f.Add("POST", "/v1/projects/{project}/topics/{topic}:publish", "projects/{project}/topics/{topic}:publish", "POST", "/v1/projects/p1/topics/orders:publish")
	f.Add("POST", "/v1/projects/{project}/topics/{topic}:publish", "projects/{project}/topics/{topic}:publish", "POST", "/v1/projects/p1/topics/a%3Ab:publish")
	f.Add("GET", "/v1/projects/{project}/topics/{topic}", "projects/{project}/topics/{topic}:get", "GET", "/v1/projects/p1/topics/or%64ers")
	f.Add("*", "/files/{name}.json", "files:{name}:read", "GET", "/files/a%2Fb.json")
	f.Add("", "/q/{a}/{b}", "q/{a}/{b}:x", "PUT", "/q/../x")
	f.Add("GET", "/v1/{x}", "a:{x}", "GET", "/v1/%2A")
	f.Add("GET", "/v1/{x}", "a:{x}", "GET", "/v1/%zz")
	f.Add("get", "/v1/{x}{y}", "{x}", "GET", "/v1/")
	f.Fuzz(func(t *testing.T, method, pathTmpl, scopeTmpl, reqMethod, reqPath string) {
		r := Route{Method: method, Path: pathTmpl, Scope: scopeTmpl}
		table, err := compileRoutes([]Route{r})
		if err != nil {
			return
		}
		got, outcome := table.scope(nil, []byte(reqMethod), []byte(reqPath))
		want, wantOutcome := referenceRouteScope(r, reqMethod, reqPath)
		if outcome != wantOutcome || string(got) != want {
			t.Fatalf("route %+v, %s %q: scope %q (outcome %d), want %q (outcome %d)", r, reqMethod, reqPath, got, outcome, want, wantOutcome)
		}
		if outcome != routeMatched {
			if len(got) != 0 {
				t.Fatalf("no scope, yet %q was appended", got)
			}
			return
		}
		if err := rbac.ValidateScope(string(got)); err != nil {
			t.Fatalf("matched scope %q is invalid: %v", got, err)
		}
	})
}
