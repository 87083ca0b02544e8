package rbac

import (
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// MarshalYAML returns the canonical form of p as a YAML node tree, so that
// yaml.Marshal(p) writes a policy file: fields in a fixed order (mode,
// stream_auth, roles, subjects, acls, streams, admin_roles), keys sorted,
// defaults left out, no comments. Parsing it gives a policy Equal to p.
func (p *Policy) MarshalYAML() (any, error) {
	d := p.doc
	root := mapNode()
	addField(root, "mode", strNode(d.mode.String()))
	if !d.streamAuth {
		addField(root, "stream_auth", boolNode(false))
	}
	if len(d.roles) > 0 {
		roles := mapNode()
		for _, name := range sortedKeys(d.roles) {
			r := d.roles[name]
			rn := mapNode()
			if len(r.scopes) > 0 {
				addField(rn, "scopes", listNode(r.scopes))
			}
			if len(r.inherits) > 0 {
				addField(rn, "inherits", listNode(r.inherits))
			}
			if r.aclExempt {
				addField(rn, "acl_exempt", boolNode(true))
			}
			addField(roles, name, rn)
		}
		addField(root, "roles", roles)
	}
	if len(d.subjects) > 0 {
		subjects := mapNode()
		for _, name := range sortedKeys(d.subjects) {
			s := d.subjects[name]
			sn := mapNode()
			if len(s.roles) > 0 {
				addField(sn, "roles", listNode(s.roles))
			}
			if len(s.projects) > 0 {
				addField(sn, "projects", listMapNode(s.projects))
			}
			addField(subjects, name, sn)
		}
		addField(root, "subjects", subjects)
	}
	if len(d.acls) > 0 {
		byResource := map[string]map[string][]string{}
		for scope, subjects := range d.acls {
			i := strings.LastIndexByte(scope, Separator)
			resource, action := scope[:i], scope[i+1:]
			if byResource[resource] == nil {
				byResource[resource] = map[string][]string{}
			}
			byResource[resource][action] = subjects
		}
		acls := mapNode()
		for _, resource := range sortedKeys(byResource) {
			addField(acls, resource, listMapNode(byResource[resource]))
		}
		addField(root, "acls", acls)
	}
	if len(d.streams) > 0 {
		streams := mapNode()
		for _, name := range sortedKeys(d.streams) {
			sn := mapNode()
			if a := d.streams[name].auth; a != nil {
				an := mapNode()
				addField(an, "required", boolNode(a.required))
				if a.read != nil {
					addField(an, "read_roles", listMapNode(a.read))
				}
				if a.write != nil {
					addField(an, "write_roles", listMapNode(a.write))
				}
				addField(sn, "auth", an)
			}
			addField(streams, name, sn)
		}
		addField(root, "streams", streams)
	}
	if len(d.adminRoles) > 0 {
		addField(root, "admin_roles", listMapNode(d.adminRoles))
	}
	return root, nil
}

func mapNode() *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"} }

// strNode is a string scalar. The emitter quotes it whenever plain text
// would read back as another type ("true", "42", "~"), but not "<<", which
// read back plain is a merge key: that one is quoted here.
func strNode(s string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	if s == "<<" {
		n.Style = yaml.DoubleQuotedStyle
	}
	return n
}

func boolNode(b bool) *yaml.Node {
	v := "false"
	if b {
		v = "true"
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: v}
}

func listNode(items []string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for _, s := range items {
		n.Content = append(n.Content, strNode(s))
	}
	return n
}

// listMapNode writes a map of lists, keys sorted; an empty list is [].
func listMapNode(m map[string][]string) *yaml.Node {
	n := mapNode()
	for _, k := range sortedKeys(m) {
		addField(n, k, listNode(m[k]))
	}
	return n
}

func addField(m *yaml.Node, key string, v *yaml.Node) {
	m.Content = append(m.Content, strNode(key), v)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
