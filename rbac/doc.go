// Package rbac owns verifyd's scope grammar and the compiled structures that
// answer "does this principal hold a grant for this scope?".
//
// # Scopes and patterns
//
// A scope is a string of ':'-separated segments, for example tool:data:read or
// projects/p1/topics/orders:publish. A granted pattern has the same shape and
// may use one '*' inside any segment: it matches any run of characters other
// than ':' (possibly empty), so agent:data_*:delegate matches
// agent:data_sales:delegate but not agent:data_x:y:delegate. The whole pattern
// "*" is the super-scope and matches every scope. Otherwise a pattern matches
// only scopes with the same number of segments. Matching is case-sensitive and
// byte-exact: no percent-decoding, no normalization.
//
// Segments use the path characters of RFC 3986 §3.3 other than ':':
//
//	A-Z a-z 0-9 - . _ ~ ! $ & ' ( ) + , ; = @ / %
//
// In a pattern, '*' may appear at most once per segment. A requested scope may
// contain '*' too; it is then an ordinary character, and since a pattern's
// literal parts never contain '*', a pattern matches such a scope only when it
// covers every scope the wildcard could stand for.
//
// Invalid patterns (empty, an empty segment, two '*' in a segment, a character
// outside the alphabet, longer than [MaxLen]) are rejected by [Compile] with a
// [PatternError] naming the pattern and the reason.
//
// # Concurrency and allocation
//
// A [Matcher] is immutable once compiled and safe for concurrent use.
// [Matcher.Match] allocates nothing. Policies are swapped by replacing the
// pointer to a Matcher, never by mutating one.
//
// rbac is pure: it performs no I/O and imports no other verifyd package.
package rbac
