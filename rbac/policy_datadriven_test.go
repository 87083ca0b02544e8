package rbac

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"gopkg.in/yaml.v3"
)

// TestPolicyDataDriven runs the platform acceptance vectors in
// testdata/policy, one file per platform. Commands:
//
//	policy [file=NAME]     load the YAML input (or testdata/NAME); prints ok or every problem
//	default-policy         the policy in force when none is configured
//	principal name=N       define a principal from "key: value" lines: subject, kind,
//	                       realm, roles (space-separated), scopes (space-separated),
//	                       "project P: roles...", and "pat: domain type operation id"
//	                       (a SuperMQ PAT scope, added to the scopes through PATScope)
//	decide principal=N     one scope per line; N "anonymous" binds no credential
//	explain principal=N    the explanation of one scope
//	pat-scope              "domain type operation id" per line, mapped by PATScope
//	canonical              the policy written back by MarshalYAML
//
// Every decision is checked against Explain, which must agree.
func TestPolicyDataDriven(t *testing.T) {
	datadriven.Walk(t, filepath.Join("testdata", "policy"), func(t *testing.T, path string) {
		var pol *Policy
		principals := map[string]*Principal{}
		bindings := map[string]*Binding{}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "policy":
				data := []byte(d.Input)
				if d.HasArg("file") {
					var name string
					d.ScanArgs(t, "file", &name)
					var err error
					if data, err = os.ReadFile(filepath.Join("testdata", name)); err != nil {
						d.Fatalf(t, "%v", err)
					}
				}
				p, err := ParsePolicy(data)
				if err != nil {
					if p != nil {
						d.Fatalf(t, "ParsePolicy returned a policy with an error")
					}
					return err.Error() + "\n"
				}
				pol, bindings = p, map[string]*Binding{}
				checkRoundTrip(t, p)
				return "ok\n"
			case "default-policy":
				pol, bindings = DefaultPolicy(), map[string]*Binding{}
				return "ok\n"
			case "principal":
				var name string
				d.ScanArgs(t, "name", &name)
				pr, err := parsePrincipal(d.Input)
				if err != nil {
					return err.Error() + "\n"
				}
				principals[name] = pr
				delete(bindings, name)
				return "ok\n"
			case "decide":
				name, pr := lookupPrincipal(t, d, principals)
				b := bindings[name]
				if b == nil {
					b = pol.Bind(pr)
					bindings[name] = b
				}
				var out strings.Builder
				for _, scope := range lines(d.Input) {
					dec := b.Decide(scope)
					if dec.Allowed != dec.Reason.Allowed() {
						t.Errorf("%s: Allowed %v disagrees with reason %s", scope, dec.Allowed, dec.Reason)
					}
					if e := pol.Explain(pr, scope); e.Decision != dec {
						t.Errorf("%s: Explain decides %v, Decide %v", scope, e.Decision, dec)
					}
					fmt.Fprintf(&out, "%s: %s\n", scope, dec)
				}
				return out.String()
			case "explain":
				_, pr := lookupPrincipal(t, d, principals)
				return pol.Explain(pr, strings.TrimSpace(d.Input)).String() + "\n"
			case "pat-scope":
				var out strings.Builder
				for _, l := range lines(d.Input) {
					f := strings.Fields(l)
					if len(f) != 4 {
						d.Fatalf(t, "pat-scope wants 4 fields: %q", l)
					}
					p, err := PATScope(f[0], f[1], f[2], f[3])
					if err != nil {
						fmt.Fprintf(&out, "%s: %v\n", l, err)
					} else {
						fmt.Fprintf(&out, "%s: %s\n", l, p)
					}
				}
				return out.String()
			case "canonical":
				out, err := yaml.Marshal(pol)
				if err != nil {
					d.Fatalf(t, "%v", err)
				}
				return string(out)
			default:
				d.Fatalf(t, "unknown command %q", d.Cmd)
				return ""
			}
		})
	})
}

func lookupPrincipal(t *testing.T, d *datadriven.TestData, principals map[string]*Principal) (string, *Principal) {
	var name string
	d.ScanArgs(t, "principal", &name)
	if name == "anonymous" {
		return name, nil
	}
	pr := principals[name]
	if pr == nil {
		d.Fatalf(t, "unknown principal %q", name)
	}
	return name, pr
}

// parsePrincipal builds a principal from "key: value" lines, compiling its
// scopes the way the keystore does.
func parsePrincipal(input string) (*Principal, error) {
	pr := &Principal{Profile: &Profile{}}
	for _, l := range lines(input) {
		key, val, ok := strings.Cut(l, ":")
		if !ok {
			return nil, fmt.Errorf("bad line %q", l)
		}
		val = strings.TrimSpace(val)
		switch {
		case key == "subject":
			pr.Subject = val
		case key == "kind":
			pr.Kind = val
		case key == "realm":
			pr.Realm = val
		case key == "roles":
			pr.Roles = append(pr.Roles, strings.Fields(val)...)
		case key == "scopes":
			pr.Scopes = append(pr.Scopes, strings.Fields(val)...)
		case strings.HasPrefix(key, "project "):
			if pr.ProjectRoles == nil {
				pr.ProjectRoles = map[string][]string{}
			}
			proj := strings.TrimPrefix(key, "project ")
			pr.ProjectRoles[proj] = append(pr.ProjectRoles[proj], strings.Fields(val)...)
		case key == "pat":
			f := strings.Fields(val)
			if len(f) != 4 {
				return nil, fmt.Errorf("pat wants 4 fields: %q", val)
			}
			p, err := PATScope(f[0], f[1], f[2], f[3])
			if err != nil {
				return nil, err
			}
			pr.Scopes = append(pr.Scopes, p)
		default:
			return nil, fmt.Errorf("unknown key %q", key)
		}
	}
	if len(pr.Scopes) > 0 {
		g, err := Compile(pr.Scopes)
		if err != nil {
			return nil, err
		}
		pr.Grants = g
	}
	return pr, nil
}

// checkRoundTrip checks that p written back and parsed again is Equal to
// p, and that writing is a fixed point.
func checkRoundTrip(t *testing.T, p *Policy) {
	t.Helper()
	out, err := yaml.Marshal(p)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	q, err := ParsePolicy(out)
	if err != nil {
		t.Fatalf("the canonical form does not load: %v\n%s", err, out)
	}
	if !p.Equal(q) {
		t.Fatalf("the canonical form loads to another policy:\n%s", out)
	}
	again, err := yaml.Marshal(q)
	if err != nil || string(again) != string(out) {
		t.Fatalf("the canonical form is not a fixed point:\n%s\n---\n%s", out, again)
	}
}
