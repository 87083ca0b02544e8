// Package strictjson is verifyd's JSON parser for JWT headers and claims: a
// strict, validating parser that builds a flat, read-only tree over the
// input bytes and allocates nothing once its buffers have grown.
//
// It owns parsing and reading one JSON document. It does not decode into Go
// structs, does not encode, and knows nothing about JWTs: the caller checks
// the kind of the top-level value (a JWT header or claims set must be an
// [Object]) and the names and types of members.
//
// # Why not encoding/json
//
// encoding/json (v1) is lenient in ways that matter for tokens. It accepts
// duplicate member names and keeps the last one, so `{"exp":1,"exp":2}`
// means different things to different parsers. It matches struct fields
// case-insensitively (golang/go#14750), so "EXP" fills an Exp field. It
// replaces invalid UTF-8 with U+FFFD instead of rejecting it, so one token
// has many accepted spellings. And it allocates per value. This package
// enforces the project's security requirements S6 to S9 for header and
// claims JSON: UTF-8 only, no BOM, no trailing data, no duplicate members,
// case-sensitive names and bounded nesting.
//
// # Rules
//
// [Doc.Parse] accepts exactly one JSON value as specified by RFC 8259, with
// the I-JSON (RFC 7493) restrictions that matter for tokens:
//
//   - The grammar is RFC 8259's, exactly: the literals true, false and null;
//     numbers -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? (no leading
//     zeros, no '+', no ".5" or "5.", no hex, NaN or Infinity); whitespace is
//     only space, tab, line feed and carriage return. After the value only
//     whitespace may follow: `{}{}` and `{} x` are trailing data. A byte
//     order mark is not whitespace, so input starting with one is rejected.
//   - Strings are valid UTF-8 (no overlong forms, no UTF-8-encoded surrogates,
//     nothing above U+10FFFF) with no raw control characters below U+0020.
//     The only escapes are \" \\ \/ \b \f \n \r \t and \uXXXX (hex digits in
//     either case). A \u escape of a surrogate must be a high surrogate
//     immediately followed by a \u escape of a low surrogate; a lone or
//     reversed surrogate is an error (RFC 7493 §2.1). \u0000 is allowed.
//   - Arrays and objects nest at most [MaxDepth] deep, the top-level
//     container counting as depth 1. The error is raised at the opening
//     bracket that exceeds the limit, before anything inside it is scanned.
//   - Member names in one object are unique, compared after unescaping
//     (`{"a":1,"\u0061":2}` is a duplicate) and case-sensitively (`exp` and
//     `EXP` are different members).
//
// The parser works on inputs of any size up to 2 GiB - 1 (offsets are held
// in 32 bits); larger inputs are rejected. Callers bound the size first
// (8 KiB for tokens).
//
// # Errors
//
// Every parse error is a [*SyntaxError] with the byte offset and a short
// description. The description never quotes the input, which may be part of
// a secret-bearing token. A failed parse leaves no partial value: the
// document's root is the zero [Value].
//
// # Memory and concurrency
//
// A [Doc] is a slice of nodes over the parsed bytes. Parse reuses the Doc's
// memory, so a Doc kept in a sync.Pool parses without allocating once its
// node slice has grown to the size the inputs need. Objects of more than 32
// members are checked for duplicates by sorting, which may allocate the
// first time the Doc sees such an object. Reading values ([Value.Get],
// [Value.StrEqual], [Value.Float], iteration, ...) allocates nothing; only
// [Value.Str] (a new string) and [Value.AppendStr] into a buffer without room
// do.
//
// The parsed bytes must not change while the Doc, or any Value from it, is in
// use: values refer to them rather than copying. A Doc is not safe for
// concurrent use; Values from one Doc may be read concurrently as long as
// nothing parses into that Doc meanwhile.
package strictjson
