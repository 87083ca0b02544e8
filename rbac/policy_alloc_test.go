//go:build !race

package rbac

import "testing"

func TestDecideAllocatesNothing(t *testing.T) {
	p := mustParse(t, `mode: rbac
roles:
  admin: {scopes: ["projects/${project}/*:*"], acl_exempt: true}
  pub: {scopes: ["projects/${project}/topics/*:publish"]}
  agent: {scopes: ["mailbox:${sub}:*"]}
  big: {scopes: ["a:1", "a:2", "a:3", "a:4", "a:5", "b:*:c", "tool:data_*:read"]}
acls:
  projects/p1/topics/locked: {publish: [someone]}
  projects/p2/topics/locked: {publish: [someone]}
streams:
  open: {}
  mars:
    auth: {required: true, read_roles: {ecmwf: ["*"]}, write_roles: {ecmwf: [producer]}}
admin_roles: {ecmwf: [admin]}
`)
	pr := &Principal{
		Subject: "u",
		Profile: &Profile{
			Realm:        "ecmwf",
			Roles:        []string{"agent", "big", "producer"},
			ProjectRoles: map[string][]string{"p1": {"pub"}, "p2": {"admin"}},
			Scopes:       []string{"own:scope"},
			Grants:       MustCompile("own:scope"),
		},
	}
	bindings := []*Binding{p.Bind(pr), p.Bind(nil), DefaultPolicy().Bind(pr), mustParse(t, "mode: none\n").Bind(pr)}
	scopes := []string{
		"own:scope", "mailbox:u:read", "mailbox:v:read", "tool:data_x:read", "a:5",
		"projects/p1/topics/t:publish", "projects/p1/topics/locked:publish", "projects/p2/topics/locked:publish",
		"projects/p3/topics/t:publish", "streams/open:write", "streams/mars:read", "streams/mars:write",
		"streams/unknown:read", "streams/mars:delete", "", "nope",
	}
	for i, b := range bindings {
		for _, s := range scopes {
			if n := testing.AllocsPerRun(100, func() { b.Decide(s) }); n != 0 {
				t.Errorf("binding %d: Decide(%q) allocates %v times", i, s, n)
			}
		}
	}
}
