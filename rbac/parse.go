package rbac

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// MaxPolicySize is the largest policy file, in bytes, that ParsePolicy
// accepts.
const MaxPolicySize = 32 << 20

// maxNameLen bounds role, subject, project, realm and stream names.
const maxNameLen = 256

// A Problem is one thing wrong with a policy file, with where it is.
type Problem struct {
	Line, Column int    // 1-based position in the file; 0 when unknown
	Path         string // where in the document, e.g. roles.developer.inherits[0]
	Message      string
}

// String renders the problem as "line:column: path: message".
func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "%d:%d: ", p.Line, p.Column)
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// PolicyError reports every problem found in a policy file, in file order.
// ParsePolicy returns it for any file it rejects.
type PolicyError struct {
	Problems []Problem
}

// Error lists every problem, one per line after the first.
func (e *PolicyError) Error() string {
	var b strings.Builder
	b.WriteString("rbac: invalid policy: ")
	if len(e.Problems) == 1 {
		b.WriteString(e.Problems[0].String())
		return b.String()
	}
	fmt.Fprintf(&b, "%d problems", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n\t")
		b.WriteString(p.String())
	}
	return b.String()
}

// maxProblems bounds the problems reported for one file; the rest are
// counted.
const maxProblems = 1000

// parser walks a YAML node tree into a document, collecting problems.
type parser struct {
	probs   []Problem
	dropped int // problems beyond maxProblems
	// refs are the role names used by inherits and subjects, checked once
	// every role is known.
	refs []roleRef
}

// roleRef is one use of a role name.
type roleRef struct {
	name    string
	node    *yaml.Node
	path    string
	project string // the project of a subjects.*.projects assignment
	from    string // the inheriting role, for an inherits entry
}

func (ps *parser) errorf(n *yaml.Node, path, format string, args ...any) {
	if len(ps.probs) >= maxProblems {
		ps.dropped++
		return
	}
	p := Problem{Path: path, Message: fmt.Sprintf(format, args...)}
	if n != nil {
		p.Line, p.Column = n.Line, n.Column
	}
	ps.probs = append(ps.probs, p)
}

// pathKey appends a mapping key to path: .name when the key is a plain
// identifier, ["..."] otherwise.
func pathKey(path, key string) string {
	plain := key != ""
	for i := 0; i < len(key) && plain; i++ {
		c := key[i]
		plain = c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
	}
	if plain {
		if path == "" {
			return key
		}
		return path + "." + key
	}
	return path + "[" + strconv.Quote(key) + "]"
}

func pathIndex(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// kv is one key/value pair of a mapping.
type kv struct {
	key  string
	k, v *yaml.Node
	path string
}

// isNull reports whether n is an explicit or implicit null.
func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// alias reports an alias node, which policies do not support.
func (ps *parser) alias(n *yaml.Node, path string) bool {
	if n.Kind == yaml.AliasNode {
		ps.errorf(n, path, "YAML aliases are not supported in a policy")
		return true
	}
	return false
}

// mapping returns the pairs of a mapping node, reporting duplicate keys
// and keys that are not names. A null node is an empty mapping.
func (ps *parser) mapping(n *yaml.Node, path string) ([]kv, bool) {
	if ps.alias(n, path) {
		return nil, false
	}
	if isNull(n) {
		return nil, true
	}
	if n.Kind != yaml.MappingNode {
		ps.errorf(n, path, "must be a mapping")
		return nil, false
	}
	pairs := make([]kv, 0, len(n.Content)/2)
	seen := make(map[string]*yaml.Node, len(n.Content)/2)
	ok := true
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if ps.alias(k, path) {
			ok = false
			continue
		}
		if k.Kind != yaml.ScalarNode || isNull(k) {
			ps.errorf(k, path, "a key must be a string")
			ok = false
			continue
		}
		if k.ShortTag() == "!!merge" {
			ps.errorf(k, path, "YAML merge keys (<<) are not supported in a policy")
			ok = false
			continue
		}
		p := pathKey(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			ps.errorf(k, p, "duplicate key %q (first at %d:%d)", truncate(k.Value, 64), first.Line, first.Column)
			ok = false
			continue
		}
		seen[k.Value] = k
		pairs = append(pairs, kv{key: k.Value, k: k, v: v, path: p})
	}
	return pairs, ok
}

// fields returns the pairs of a mapping with a fixed set of fields,
// reporting unknown ones.
func (ps *parser) fields(n *yaml.Node, path string, known ...string) (map[string]kv, bool) {
	pairs, ok := ps.mapping(n, path)
	out := make(map[string]kv, len(pairs))
	for _, p := range pairs {
		found := false
		for _, k := range known {
			found = found || k == p.key
		}
		if !found {
			ps.errorf(p.k, p.path, "unknown field %q (known: %s)", truncate(p.key, 64), strings.Join(known, ", "))
			ok = false
			continue
		}
		out[p.key] = p
	}
	return out, ok
}

// str returns the text of a scalar node. Any scalar but null is text: a
// subject named 42 is the name "42".
func (ps *parser) str(n *yaml.Node, path string) (string, bool) {
	if ps.alias(n, path) {
		return "", false
	}
	if n.Kind != yaml.ScalarNode || isNull(n) {
		ps.errorf(n, path, "must be a string")
		return "", false
	}
	return n.Value, true
}

// strList returns the strings of a sequence node; null is an empty list.
func (ps *parser) strList(n *yaml.Node, path string) ([]string, []*yaml.Node, bool) {
	if ps.alias(n, path) {
		return nil, nil, false
	}
	if isNull(n) {
		return nil, nil, true
	}
	if n.Kind != yaml.SequenceNode {
		ps.errorf(n, path, "must be a list of strings")
		return nil, nil, false
	}
	var out []string
	var nodes []*yaml.Node
	ok := true
	for i, e := range n.Content {
		s, good := ps.str(e, pathIndex(path, i))
		if !good {
			ok = false
			continue
		}
		out = append(out, s)
		nodes = append(nodes, e)
	}
	return out, nodes, ok
}

// boolean returns the value of a YAML boolean.
func (ps *parser) boolean(n *yaml.Node, path string) (bool, bool) {
	if ps.alias(n, path) {
		return false, false
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
		ps.errorf(n, path, "must be true or false")
		return false, false
	}
	return strings.EqualFold(n.Value, "true"), true
}

// name checks a role, subject, project or realm name: non-empty, at most
// maxNameLen bytes, no control characters.
func (ps *parser) name(n *yaml.Node, path, what, s string) bool {
	switch {
	case s == "":
		ps.errorf(n, path, "empty %s name", what)
		return false
	case len(s) > maxNameLen:
		ps.errorf(n, path, "%s name longer than %d bytes", what, maxNameLen)
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			ps.errorf(n, path, "%s name %q has a control character", what, truncate(s, 64))
			return false
		}
	}
	return true
}

// yamlLine finds the line number in a yaml.v3 syntax error.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// decodeYAML parses data into one document node. The YAML parser is
// third-party code facing arbitrary input: a panic in it is reported as a
// problem, not propagated.
func decodeYAML(data []byte) (doc *yaml.Node, prob *Problem) {
	defer func() {
		if r := recover(); r != nil {
			doc, prob = nil, &Problem{Message: fmt.Sprintf("YAML parser failed: %v", r)}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var n yaml.Node
	if err := dec.Decode(&n); err != nil {
		if errors.Is(err, io.EOF) {
			return &yaml.Node{}, nil
		}
		return nil, syntaxProblem(err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxProblem(err)
	default:
		return nil, &Problem{Line: extra.Line, Column: extra.Column, Message: "more than one YAML document"}
	}
	return &n, nil
}

func syntaxProblem(err error) *Problem {
	msg := err.Error()
	p := &Problem{Message: msg}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		p.Message = strings.TrimPrefix(msg, m[0])
	}
	p.Message = "YAML: " + strings.TrimPrefix(p.Message, "yaml: ")
	return p
}

// parseDocument walks the top level of a policy file.
func (ps *parser) parseDocument(root *yaml.Node) document {
	doc := document{streamAuth: true}
	if root.Kind == 0 || root.Kind == yaml.DocumentNode && len(root.Content) == 0 {
		ps.errorf(nil, "mode", "mode is required (deny_all, rbac or none); the file is empty")
		return doc
	}
	n := root
	if n.Kind == yaml.DocumentNode {
		n = n.Content[0]
	}
	if isNull(n) {
		ps.errorf(n, "mode", "mode is required (deny_all, rbac or none); the file is empty")
		return doc
	}
	f, _ := ps.fields(n, "", "mode", "stream_auth", "roles", "subjects", "acls", "streams", "admin_roles")
	if m, ok := f["mode"]; !ok {
		ps.errorf(n, "mode", "mode is required (deny_all, rbac or none)")
	} else if s, ok := ps.str(m.v, m.path); ok {
		switch s {
		case "deny_all":
			doc.mode = DenyAll
		case "rbac":
			doc.mode = RBAC
		case "none":
			doc.mode = None
		default:
			ps.errorf(m.v, m.path, "unknown mode %q (deny_all, rbac or none)", truncate(s, 64))
		}
	}
	if sa, ok := f["stream_auth"]; ok {
		if b, ok := ps.boolean(sa.v, sa.path); ok {
			doc.streamAuth = b
		}
	}
	if r, ok := f["roles"]; ok {
		doc.roles = ps.parseRoles(r.v, r.path)
	}
	if s, ok := f["subjects"]; ok {
		doc.subjects = ps.parseSubjects(s.v, s.path)
	}
	if a, ok := f["acls"]; ok {
		doc.acls = ps.parseACLs(a.v, a.path)
	}
	if s, ok := f["streams"]; ok {
		doc.streams = ps.parseStreams(s.v, s.path, doc.streamAuth)
	}
	if a, ok := f["admin_roles"]; ok {
		doc.adminRoles = ps.realmRoleMap(a.v, a.path, false)
	}
	return doc
}

func (ps *parser) parseRoles(n *yaml.Node, path string) map[string]*roleDoc {
	pairs, _ := ps.mapping(n, path)
	if len(pairs) == 0 {
		return nil
	}
	roles := make(map[string]*roleDoc, len(pairs))
	for _, p := range pairs {
		if !ps.name(p.k, p.path, "role", p.key) {
			continue
		}
		if p.key == "*" {
			ps.errorf(p.k, p.path, `"*" is not a role name: it is the wildcard of stream and admin role lists`)
			continue
		}
		r := &roleDoc{}
		roles[p.key] = r
		f, _ := ps.fields(p.v, p.path, "scopes", "inherits", "acl_exempt")
		if s, ok := f["scopes"]; ok {
			pats, nodes, _ := ps.strList(s.v, s.path)
			for i, pat := range pats {
				pp := pathIndex(s.path, i)
				t, err := parseTemplate(pat)
				if err != nil {
					ps.errorf(nodes[i], pp, "invalid pattern %q: %v", truncate(pat, 64), err)
					continue
				}
				if err := ValidatePattern(t.placeholder(pat)); err != nil {
					var pe *PatternError
					if errors.As(err, &pe) {
						ps.errorf(nodes[i], pp, "invalid pattern %q: %s", truncate(pat, 64), pe.Reason)
					} else {
						ps.errorf(nodes[i], pp, "invalid pattern %q: %v", truncate(pat, 64), err)
					}
					continue
				}
				r.scopes = append(r.scopes, pat)
			}
		}
		if in, ok := f["inherits"]; ok {
			names, nodes, _ := ps.strList(in.v, in.path)
			for i, name := range names {
				ip := pathIndex(in.path, i)
				if ps.name(nodes[i], ip, "role", name) {
					r.inherits = append(r.inherits, name)
					ps.refs = append(ps.refs, roleRef{name: name, node: nodes[i], path: ip, from: p.key})
				}
			}
		}
		if ex, ok := f["acl_exempt"]; ok {
			r.aclExempt, _ = ps.boolean(ex.v, ex.path)
		}
	}
	return roles
}

func (ps *parser) parseSubjects(n *yaml.Node, path string) map[string]*subjectDoc {
	pairs, _ := ps.mapping(n, path)
	if len(pairs) == 0 {
		return nil
	}
	subjects := make(map[string]*subjectDoc, len(pairs))
	for _, p := range pairs {
		if !ps.name(p.k, p.path, "subject", p.key) {
			continue
		}
		s := &subjectDoc{}
		subjects[p.key] = s
		f, _ := ps.fields(p.v, p.path, "roles", "projects")
		if r, ok := f["roles"]; ok {
			s.roles = ps.roleRefs(r.v, r.path, "")
		}
		if pr, ok := f["projects"]; ok {
			projects, _ := ps.mapping(pr.v, pr.path)
			for _, pj := range projects {
				if !ps.name(pj.k, pj.path, "project", pj.key) {
					continue
				}
				if !validTemplateValue(pj.key) {
					ps.errorf(pj.k, pj.path, "project name %q cannot fill ${project}: use letters, digits and - . _ ~ ! $ & ' ( ) + , ; = @ %%, without / : *", truncate(pj.key, 64))
					continue
				}
				if s.projects == nil {
					s.projects = make(map[string][]string, len(projects))
				}
				s.projects[pj.key] = ps.roleRefs(pj.v, pj.path, pj.key)
			}
		}
	}
	return subjects
}

// roleRefs reads a list of assigned role names, to be checked against the
// roles once all are known.
func (ps *parser) roleRefs(n *yaml.Node, path, project string) []string {
	names, nodes, _ := ps.strList(n, path)
	var out []string
	for i, name := range names {
		p := pathIndex(path, i)
		if ps.name(nodes[i], p, "role", name) {
			out = append(out, name)
			ps.refs = append(ps.refs, roleRef{name: name, node: nodes[i], path: p, project: project})
		}
	}
	return out
}

func (ps *parser) parseACLs(n *yaml.Node, path string) map[string][]string {
	pairs, _ := ps.mapping(n, path)
	if len(pairs) == 0 {
		return nil
	}
	acls := make(map[string][]string)
	for _, p := range pairs {
		if err := ValidateScope(p.key); err != nil || strings.IndexByte(p.key, Wildcard) >= 0 {
			why := "it must be a literal scope prefix, without '*'"
			var pe *PatternError
			if errors.As(err, &pe) {
				why = pe.Reason
			}
			ps.errorf(p.k, p.path, "invalid ACL resource %q: %s", truncate(p.key, 64), why)
			continue
		}
		actions, ok := ps.mapping(p.v, p.path)
		if len(actions) == 0 && ok {
			ps.errorf(p.v, p.path, "an ACL lists at least one action")
		}
		for _, a := range actions {
			if a.key == "" || strings.IndexByte(a.key, Separator) >= 0 || strings.IndexByte(a.key, Wildcard) >= 0 || ValidateScope(a.key) != nil {
				ps.errorf(a.k, a.path, "invalid ACL action %q: one literal segment, without ':' or '*'", truncate(a.key, 64))
				continue
			}
			scope := p.key + string(Separator) + a.key
			if len(scope) > MaxLen {
				ps.errorf(a.k, a.path, "ACL scope %q is longer than %d bytes", truncate(scope, 64), MaxLen)
				continue
			}
			names, nodes, _ := ps.strList(a.v, a.path)
			var subjects []string
			for i, s := range names {
				if ps.name(nodes[i], pathIndex(a.path, i), "subject", s) {
					subjects = append(subjects, s)
				}
			}
			acls[scope] = subjects
		}
	}
	if len(acls) == 0 {
		return nil
	}
	return acls
}

func (ps *parser) parseStreams(n *yaml.Node, path string, streamAuth bool) map[string]*streamDoc {
	pairs, _ := ps.mapping(n, path)
	if len(pairs) == 0 {
		return nil
	}
	streams := make(map[string]*streamDoc, len(pairs))
	for _, p := range pairs {
		if !validStreamName(p.key) {
			ps.errorf(p.k, p.path, "invalid stream name %q: use letters, digits and - . _ ~ ! $ & ' ( ) + , ; = @ %%, without / : *", truncate(p.key, 64))
			continue
		}
		st := &streamDoc{}
		streams[p.key] = st
		f, _ := ps.fields(p.v, p.path, "auth")
		a, ok := f["auth"]
		if !ok {
			continue
		}
		af, _ := ps.fields(a.v, a.path, "required", "read_roles", "write_roles")
		auth := &streamAuthDoc{}
		st.auth = auth
		req, hasRequired := af["required"]
		requiredOK := false
		if !hasRequired {
			ps.errorf(a.v, pathKey(a.path, "required"), "auth.required must be set explicitly to true or false when an auth block is present")
		} else {
			auth.required, requiredOK = ps.boolean(req.v, req.path)
		}
		if r, ok := af["read_roles"]; ok {
			auth.read = ps.realmRoleMap(r.v, r.path, true)
		}
		if w, ok := af["write_roles"]; ok {
			auth.write = ps.realmRoleMap(w.v, w.path, true)
		}
		hasRoles := auth.read != nil || auth.write != nil
		if !streamAuth && (auth.required || hasRoles) {
			what := "requires authentication"
			if !auth.required {
				what = "names read or write roles"
			}
			ps.errorf(a.k, a.path, "stream %q %s, but stream_auth is false: remove its auth rules or enable stream_auth", truncate(p.key, 64), what)
		}
		if requiredOK && !auth.required && hasRoles {
			ps.errorf(a.k, a.path, "read_roles and write_roles have no effect when auth.required is false")
		}
	}
	return streams
}

// realmRoleMap reads realm -> roles, where a role is a name or "*". A
// stream's role maps must not be empty (omit them instead): an empty map
// would read as either "anyone" or "no one".
func (ps *parser) realmRoleMap(n *yaml.Node, path string, stream bool) map[string][]string {
	pairs, ok := ps.mapping(n, path)
	if len(pairs) == 0 {
		if ok && stream {
			ps.errorf(n, path, "empty role map: omit it to apply the default rule")
		}
		return nil
	}
	m := make(map[string][]string, len(pairs))
	for _, p := range pairs {
		if !ps.name(p.k, p.path, "realm", p.key) {
			continue
		}
		names, nodes, _ := ps.strList(p.v, p.path)
		if len(names) == 0 && len(nodes) == 0 {
			ps.errorf(p.v, p.path, "empty role list for realm %q", truncate(p.key, 64))
			continue
		}
		var roles []string
		for i, r := range names {
			if ps.name(nodes[i], pathIndex(p.path, i), "role", r) {
				roles = append(roles, r)
			}
		}
		m[p.key] = roles
	}
	return m
}

// validStreamName reports whether name may appear in streams/<name>:read.
func validStreamName(name string) bool {
	return validTemplateValue(name) && len(streamPrefix)+len(name)+len(":write") <= MaxLen
}

// sortProblems orders problems by position, then path.
func sortProblems(ps []Problem) {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		return a.Path < b.Path
	})
}
