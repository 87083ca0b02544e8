package httpapi

import (
	"strings"
	"testing"

	"github.com/verifyd/verifyd/rbac"
	"github.com/verifyd/verifyd/verify"
)

// adminRoutes are the admin API's routes, with ids and queries filled in.
var adminRoutes = []string{
	"/v1/admin/keys",
	"/v1/admin/keys?subject=alice",
	"/v1/admin/keys/import",
	"/v1/admin/keys/ID",
	"/v1/admin/keys/ID/rotate",
	"/v1/admin/keys/ID/unknown",
	"/v1/admin/revocations",
	"/v1/admin/trust",
	"/v1/admin/policy",
	"/v1/admin/policy/reload",
	"/v1/admin/policy/explain?subject=alice&scope=tool:data:read",
	"/v1/admin/policy/explain?key_id=ID&scope=tool:data:read",
	"/v1/admin/policy/unknown",
	"/v1/admin/requests",
	"/v1/admin/requests?status=pending",
	"/v1/admin/requests/ID/approve",
	"/v1/admin/requests/ID/deny",
	"/v1/admin/agents/agent-1",
	"/v1/admin/audit",
	"/v1/admin/audit?actor=system",
}

// TestNothingAdminWithoutTheAdminKey walks every admin route with every
// method, under every configuration that changes what the server answers
// (CORS, a policy file, introspection clients, forward-auth routes), with
// every way of presenting something other than the admin key in
// X-Admin-Key: each answer is 401, and nothing changes. There is no open
// mode: the daemon always has an admin key (it generates one on first
// start).
func TestNothingAdminWithoutTheAdminKey(t *testing.T) {
	configs := map[string]func(*Options){
		"default": nil,
		"cors":    func(o *Options) { o.CORS = CORS{AllowedOrigins: []string{console}} },
		"introspection and forward auth": func(o *Options) {
			o.Introspection = []IntrospectionClient{rsClient}
			o.ForwardAuth = ForwardAuth{Routes: []Route{{Method: "GET", Path: "/v1/admin/keys", Scope: "tool:data:read"}}}
		},
	}
	for name, configure := range configs {
		t.Run(name, func(t *testing.T) {
			s := newTestServerConfig(t, nil, func(v *verify.Verifier) PolicyAdmin { return &fakePolicyAdmin{v: v, file: "mode: none\n"} }, configure)
			k := s.create(`{"subject":"alice","scopes":["*"],"roles":["admin"]}`)
			p := s.pat("POST", "/v1/pats", `{"name":"p"}`, 201, withBearer(k.Secret))
			bodies := map[string]string{"": "", "json": `{"subject":"mallory","kind":"api_key","jti":"j","token":"` + k.Secret + `","scope":"tool:data:read"}`}
			creds := [][]string{
				nil,
				{"X-Admin-Key", ""},
				{"X-Admin-Key", "wrong-admin-key-0123456789"},
				{"X-Admin-Key", strings.ToUpper(adminKey)},
				{"X-Admin-Key", k.Secret},
				{"X-Admin-Key", p.Secret},
				{"Authorization", "Bearer " + adminKey},
				{"Authorization", "Bearer " + k.Secret},
				{"X-Api-Key", adminKey},
				{"Origin", console},
			}
			n := 0
			for _, route := range adminRoutes {
				route = strings.ReplaceAll(route, "ID", k.ID)
				for _, method := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
					for _, body := range bodies {
						for _, c := range creds {
							var a answer
							var out any = &a
							if method == "HEAD" {
								out = nil // no body
							}
							code, h := s.call(method, route, body, out, c...)
							n++
							if code != 401 || method != "HEAD" && a.Code != "UNAUTHORIZED" || !strings.HasPrefix(h.Get("WWW-Authenticate"), "AdminKey") {
								t.Errorf("%s %s with %q: %d %+v", method, route, c, code, a)
							}
						}
					}
				}
			}
			// The admin-key form of the PAT API too.
			for _, method := range []string{"GET", "POST", "DELETE", "PATCH"} {
				for _, path := range []string{"/v1/pats", "/v1/pats/" + p.ID, "/v1/pats/" + p.ID + "/reset", "/v1/pats/" + p.ID + "/scope/add"} {
					if code, _ := s.call(method, path, bodies["json"], nil, "X-Admin-Key", "wrong-admin-key-0123456789"); code != 401 {
						t.Errorf("%s %s with a wrong admin key: %d", method, path, code)
					}
				}
			}
			if n < 1000 {
				t.Fatalf("only %d requests walked", n)
			}
			// Nothing changed: one key, not revoked, not rotated; one PAT.
			var l answer
			if s.do("GET", "/v1/admin/keys", adminKey, "", &l); len(l.Keys) != 2 {
				t.Errorf("keys after the walk: %+v", l.Keys)
			}
			if code, _ := s.call("POST", "/v1/verify", `{"token":"`+k.Secret+`"}`, nil); code != 200 {
				t.Errorf("the key verifies %d after the walk", code)
			}
			if got := s.pat("GET", "/v1/pats/"+p.ID, "", 200, withAdmin()); got.Version != p.Version {
				t.Errorf("the PAT changed: %+v", got)
			}
			if m := s.v.Policy().Mode(); m != rbac.DenyAll {
				t.Errorf("the policy in force has mode %v: a reload went through", m)
			}
		})
	}
}
