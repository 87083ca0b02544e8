package rabbitmq

import (
	"strings"

	"github.com/verifyd/verifyd/rbac"
)

// globMatch reports whether scope, read as a pattern in which each '*'
// stands for any run of characters other than ':', matches s.
func globMatch(scope, s string) bool {
	ps, ss := strings.Split(scope, string(rbac.Separator)), strings.Split(s, string(rbac.Separator))
	if len(ps) != len(ss) {
		return false
	}
	for i := range ps {
		if !globSegment(ps[i], ss[i]) {
			return false
		}
	}
	return true
}

// globSegment matches one segment: the classic wildcard match with
// backtracking to the last '*'.
func globSegment(p, s string) bool {
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && p[pi] == rbac.Wildcard:
			star, mark = pi, si
			pi++
		case pi < len(p) && p[pi] == s[si]:
			pi++
			si++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == rbac.Wildcard {
		pi++
	}
	return pi == len(p)
}
