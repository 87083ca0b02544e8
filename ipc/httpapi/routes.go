package httpapi

import (
	"errors"
	"fmt"
	"strings"

	"github.com/verifyd/verifyd/rbac"
)

// Route maps requests of a gateway's clients to the scope they need: a
// method (empty or "*": any) and a path template whose segments may hold
// one parameter each, written {name} with an optional literal prefix and
// suffix ("/v1/projects/{project}/topics/{topic}:publish"), and a scope
// template that names the same parameters
// ("projects/{project}/topics/{topic}:publish").
type Route struct {
	Method string `yaml:"method"`
	Path   string `yaml:"path"`
	Scope  string `yaml:"scope"`
}

// maxRouteParams bounds the parameters of one route, so that matching
// can keep their values in a fixed array.
const maxRouteParams = 8

// routeSegment is one segment of a compiled path template: a literal, or
// a parameter between a literal prefix and suffix.
type routeSegment struct {
	literal        string // the whole segment, when param < 0
	prefix, suffix string
	param          int // index of the parameter, or -1
}

// scopePart is one piece of a compiled scope template: a literal, or the
// value of a parameter.
type scopePart struct {
	literal string
	param   int // index of the parameter, or -1
}

// compiledRoute is a Route ready for matching.
type compiledRoute struct {
	method   string // "" for any
	segments []routeSegment
	scope    []scopePart
	params   int
}

// routeTable is the compiled route table: the first route that matches
// a request's method and path gives its scope. It is immutable.
type routeTable struct {
	routes []compiledRoute
}

// compileRoutes compiles routes and reports every problem at once, each
// with the index of its route.
func compileRoutes(routes []Route) (*routeTable, error) {
	t := &routeTable{}
	var errs []error
	seen := map[string]int{}
	for i, r := range routes {
		c, err := compileRoute(r)
		if err != nil {
			errs = append(errs, fmt.Errorf("forward_auth.routes[%d]: %w", i, err))
			continue
		}
		key := c.method + " " + r.Path
		if j, dup := seen[key]; dup {
			errs = append(errs, fmt.Errorf("forward_auth.routes[%d]: the same method and path as routes[%d]", i, j))
			continue
		}
		seen[key] = i
		t.routes = append(t.routes, c)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

func compileRoute(r Route) (compiledRoute, error) {
	c := compiledRoute{method: r.Method}
	if c.method == "*" {
		c.method = ""
	}
	for i := 0; i < len(c.method); i++ {
		if ch := c.method[i]; ch < 'A' || ch > 'Z' {
			return c, fmt.Errorf("method %q is not an HTTP method in upper case such as GET (or \"*\" for any)", r.Method)
		}
	}
	if !strings.HasPrefix(r.Path, "/") || strings.ContainsAny(r.Path, "?#") {
		return c, fmt.Errorf("path %q must start with / and hold no query or fragment", r.Path)
	}
	names := map[string]int{}
	for _, seg := range strings.Split(r.Path[1:], "/") {
		open := strings.IndexByte(seg, '{')
		if open < 0 {
			if strings.ContainsRune(seg, '}') {
				return c, fmt.Errorf("path %q: unbalanced } in segment %q", r.Path, seg)
			}
			if seg == "." || seg == ".." {
				return c, fmt.Errorf("path %q: dot segments never match", r.Path)
			}
			c.segments = append(c.segments, routeSegment{literal: seg, param: -1})
			continue
		}
		end := strings.IndexByte(seg[open:], '}')
		if end < 0 {
			return c, fmt.Errorf("path %q: unbalanced { in segment %q", r.Path, seg)
		}
		end += open
		name := seg[open+1 : end]
		suffix := seg[end+1:]
		if !validParamName(name) {
			return c, fmt.Errorf("path %q: parameter name %q must be letters, digits and _", r.Path, name)
		}
		if strings.ContainsAny(suffix, "{}") || strings.ContainsRune(seg[:open], '}') {
			return c, fmt.Errorf("path %q: segment %q holds more than one parameter", r.Path, seg)
		}
		if _, dup := names[name]; dup {
			return c, fmt.Errorf("path %q: parameter {%s} appears twice", r.Path, name)
		}
		if len(names) == maxRouteParams {
			return c, fmt.Errorf("path %q: more than %d parameters", r.Path, maxRouteParams)
		}
		names[name] = len(names)
		c.segments = append(c.segments, routeSegment{prefix: seg[:open], suffix: suffix, param: names[name]})
	}
	c.params = len(names)
	// The scope template: every parameter it names must be the path's, and
	// with each parameter filled by a plain value it must be a valid scope.
	rest := r.Scope
	var probe strings.Builder
	for rest != "" {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			if strings.ContainsRune(rest, '}') {
				return c, fmt.Errorf("scope %q: unbalanced }", r.Scope)
			}
			c.scope = append(c.scope, scopePart{literal: rest, param: -1})
			probe.WriteString(rest)
			break
		}
		if open > 0 {
			if strings.ContainsRune(rest[:open], '}') {
				return c, fmt.Errorf("scope %q: unbalanced }", r.Scope)
			}
			c.scope = append(c.scope, scopePart{literal: rest[:open], param: -1})
			probe.WriteString(rest[:open])
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return c, fmt.Errorf("scope %q: unbalanced {", r.Scope)
		}
		end += open
		name := rest[open+1 : end]
		idx, ok := names[name]
		if !ok {
			return c, fmt.Errorf("scope %q names {%s}, which the path %q does not hold", r.Scope, name, r.Path)
		}
		c.scope = append(c.scope, scopePart{param: idx})
		probe.WriteString("x")
		rest = rest[end+1:]
	}
	if err := rbac.ValidateScope(probe.String()); err != nil {
		return c, fmt.Errorf("scope %q is not a valid scope template: %w", r.Scope, err)
	}
	return c, nil
}

func validParamName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		ch := name[i]
		if !('a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' || ch == '_') {
			return false
		}
	}
	return true
}

// routeOutcome is what matching a request against the table gives.
type routeOutcome int

const (
	routeMatched  routeOutcome = iota // the scope was built
	routeNone                         // no route matches the method and path
	routeBadParam                     // a route matched, but a parameter value cannot be part of a scope
)

// scope returns the scope of the first route that matches method and
// path (a path without its query), appended to dst. A parameter's value
// is the segment's text between the route's prefix and suffix,
// percent-decoded; a value that is empty, "." or "..", that holds '/',
// ':', '*' or an invalid escape, or that makes the scope invalid, is
// refused (routeBadParam) rather than tried against later routes. It
// allocates nothing once dst has grown.
func (t *routeTable) scope(dst []byte, method, path []byte) ([]byte, routeOutcome) {
	if len(path) == 0 || path[0] != '/' {
		return dst, routeNone
	}
	var values [maxRouteParams][]byte
	for i := range t.routes {
		r := &t.routes[i]
		if r.method != "" && r.method != string(method) {
			continue
		}
		if !r.match(path[1:], &values) {
			continue
		}
		start := len(dst)
		for _, part := range r.scope {
			if part.param < 0 {
				dst = append(dst, part.literal...)
				continue
			}
			var ok bool
			if dst, ok = appendParam(dst, values[part.param]); !ok {
				return dst[:start], routeBadParam
			}
		}
		if rbac.ValidateScope(b2s(dst[start:])) != nil {
			return dst[:start], routeBadParam
		}
		return dst, routeMatched
	}
	return dst, routeNone
}

// match reports whether rest, a path without its leading '/', matches r's
// segments, and fills values with the raw parameter values.
func (r *compiledRoute) match(rest []byte, values *[maxRouteParams][]byte) bool {
	for i, seg := range r.segments {
		var cur []byte
		if j := indexByte(rest, '/'); j >= 0 {
			cur, rest = rest[:j], rest[j+1:]
			if i == len(r.segments)-1 {
				return false // the path has more segments
			}
		} else {
			if i != len(r.segments)-1 {
				return false // the path has fewer segments
			}
			cur, rest = rest, nil
		}
		if seg.param < 0 {
			if string(cur) != seg.literal {
				return false
			}
			continue
		}
		if len(cur) < len(seg.prefix)+len(seg.suffix) || string(cur[:len(seg.prefix)]) != seg.prefix || string(cur[len(cur)-len(seg.suffix):]) != seg.suffix {
			return false
		}
		values[seg.param] = cur[len(seg.prefix) : len(cur)-len(seg.suffix)]
	}
	return true
}

func indexByte(b []byte, c byte) int {
	for i := range b {
		if b[i] == c {
			return i
		}
	}
	return -1
}

// appendParam appends v, percent-decoded, to dst, and reports whether it
// may stand in a scope: not empty, not a dot segment, no '/', ':' or '*'
// once decoded, and no invalid escape.
func appendParam(dst, v []byte) ([]byte, bool) {
	start := len(dst)
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '%' {
			if i+2 >= len(v) {
				return dst, false
			}
			hi, ok1 := unhex(v[i+1])
			lo, ok2 := unhex(v[i+2])
			if !ok1 || !ok2 {
				return dst, false
			}
			c = hi<<4 | lo
			i += 2
		}
		if c == '/' || c == rbac.Separator || c == rbac.Wildcard {
			return dst, false
		}
		dst = append(dst, c)
	}
	if d := dst[start:]; len(d) == 0 || string(d) == "." || string(d) == ".." {
		return dst, false
	}
	return dst, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
