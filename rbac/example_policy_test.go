package rbac_test

import (
	"fmt"

	"github.com/verifyd/verifyd/rbac"
)

func ExampleParsePolicy() {
	p, err := rbac.ParsePolicy([]byte(`
mode: rbac
roles:
  viewer:    {scopes: ["tool:data:read"]}
  developer: {scopes: ["tool:code:*"], inherits: [viewer]}
  publisher: {scopes: ["projects/${project}/topics/*:publish"]}
subjects:
  alice: {roles: [developer], projects: {p2: [publisher]}}
acls:
  "projects/p2/topics/payroll": {publish: [carol]}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	// Bind once per principal (and cache the binding with it); Decide on
	// every request.
	b := p.Bind(&rbac.Principal{Subject: "alice", Profile: &rbac.Profile{Kind: "api_key"}})
	for _, scope := range []string{
		"tool:data:read",
		"projects/p2/topics/orders:publish",
		"projects/p3/topics/orders:publish",
		"projects/p2/topics/payroll:publish",
	} {
		fmt.Println(scope, "->", b.Decide(scope))
	}
	// Output:
	// tool:data:read -> allow (granted, role viewer, pattern tool:data:read)
	// projects/p2/topics/orders:publish -> allow (granted, role publisher in p2, pattern projects/p2/topics/*:publish)
	// projects/p3/topics/orders:publish -> deny (no_grant)
	// projects/p2/topics/payroll:publish -> deny (not_on_acl)
}

func ExampleParsePolicy_errors() {
	_, err := rbac.ParsePolicy([]byte(`mode: rbac
roles:
  developer: {scopes: ["tool:code:*"], inherits: [viewr]}
  agent: {scopes: ["mailbox:${user}:*"]}
`))
	fmt.Println(err)
	// Output:
	// rbac: invalid policy: 2 problems
	// 	3:51: roles.developer.inherits[0]: role "developer" inherits unknown role "viewr"
	// 	4:20: roles.agent.scopes[0]: invalid pattern "mailbox:${user}:*": unknown template variable ${user} (known: ${sub}, ${project}, ${realm})
}

func ExamplePolicy_Explain() {
	p, _ := rbac.ParsePolicy([]byte(`
mode: rbac
roles:
  agent: {scopes: ["mailbox:${sub}:*"]}
`))
	fmt.Println(p.Explain(&rbac.Principal{Subject: "agent-7", Profile: &rbac.Profile{Roles: []string{"agent"}}}, "mailbox:agent-8:read"))
	// Output:
	// mailbox:agent-8:read for subject agent-7 under mode rbac: deny (no_grant)
	//   role agent mailbox:${sub}:* -> mailbox:agent-7:*: no match
}

func ExamplePATScope() {
	for _, t := range [][4]string{
		{"d1", "clients", "create", "*"},
		{"d1", "channels", "publish", "ch-42"},
		{"d1", "dashboards", "read", "*"},
	} {
		p, _ := rbac.PATScope(t[0], t[1], t[2], t[3])
		fmt.Println(p)
	}
	// Output:
	// domains/d1/clients:create
	// domains/d1/channels/ch-42:publish
	// domains/d1/dashboards/*:read
}
