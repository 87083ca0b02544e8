package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// nest returns n nested arrays around inner.
func nest(n int, inner string) string {
	return strings.Repeat("[", n) + inner + strings.Repeat("]", n)
}

// members returns an object of n members "m0".."m<n-1>" with extra appended
// before the closing brace.
func members(n int, extra string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"m%d":%d`, i, i)
	}
	b.WriteString(extra)
	b.WriteByte('}')
	return b.String()
}

var acceptCases = []struct {
	name string
	in   string
	kind Kind
}{
	// Literals and scalars at top level.
	{"null", `null`, Null},
	{"true", `true`, True},
	{"false", `false`, False},
	{"zero", `0`, Number},
	{"negative zero", `-0`, Number},
	{"integer", `123`, Number},
	{"negative", `-42`, Number},
	{"fraction", `0.5`, Number},
	{"exponent", `1e10`, Number},
	{"exponent upper", `1E10`, Number},
	{"exponent plus", `1e+10`, Number},
	{"exponent minus", `1e-10`, Number},
	{"exponent leading zeros", `1e007`, Number},
	{"full number", `-12.340e-05`, Number},
	{"huge exponent", `1e400`, Number},
	{"long mantissa", strings.Repeat("9", 400), Number},
	{"string", `"abc"`, String},
	{"empty string", `""`, String},
	// Whitespace.
	{"whitespace around", " \t\r\n{} \t\r\n", Object},
	{"whitespace inside", "{ \"a\" : [ 1 , 2 ] , \"b\"\t:\n{ } }", Object},
	// Containers.
	{"empty object", `{}`, Object},
	{"empty array", `[]`, Array},
	{"top-level array", `[{"exp":1}]`, Array},
	{"nested", `{"a":{"b":[1,{"c":null}]}}`, Object},
	{"depth 16 arrays", nest(MaxDepth, "1"), Array},
	{"depth 16 mixed", `{"a":` + nest(MaxDepth-1, "") + `}`, Object},
	{"empty containers at depth 16", nest(MaxDepth-1, "[]"), Array},
	// Names.
	{"case-distinct names", `{"exp":1,"Exp":2,"EXP":3}`, Object},
	{"same name in different objects", `{"a":{"a":1},"b":{"a":2}}`, Object},
	{"same name at different depths", `{"a":{"a":{"a":1}}}`, Object},
	{"names differing after escape", `{"a":1,"\u0062":2}`, Object},
	{"names that are prefixes", `{"a":1,"ab":2,"abc":3}`, Object},
	{"33 members", members(33, ""), Object},
	{"200 members", members(200, ""), Object},
	{"empty name", `{"":1}`, Object},
	// Strings.
	{"all simple escapes", `"\" \\ \/ \b \f \n \r \t"`, String},
	{"unicode escape lower", `"\u00e9"`, String},
	{"unicode escape upper", `"\u00E9"`, String},
	{"escaped NUL", `"\u0000"`, String},
	{"surrogate pair", `"\ud83d\ude00"`, String},
	{"surrogate pair upper", `"\uD83D\uDE00"`, String},
	{"max code point pair", `"\udbff\udfff"`, String},
	{"escaped U+FFFF", `"\uffff"`, String},
	{"two-byte UTF-8", "\"\u00e9\"", String},
	{"three-byte UTF-8", "\"\u20ac\"", String},
	{"four-byte UTF-8", "\"\U0001F600\"", String},
	{"U+FFFD literal", "\"\uFFFD\"", String},
	{"max code point", "\"\U0010FFFF\"", String},
	{"DEL is not a control character", "\"\x7f\"", String},
}

var rejectCases = []struct {
	name string
	in   string
	msg  string
	off  int
}{
	// Top-level structure.
	{"empty", ``, "unexpected end of input", 0},
	{"only whitespace", " \n", "unexpected end of input", 2},
	{"two objects", `{}{}`, "trailing data", 2},
	{"object then garbage", `{} x`, "trailing data", 3},
	{"claims then admin", `{"sub":"a"}{"admin":true}`, "trailing data", 11},
	{"two scalars", `1 2`, "trailing data", 2},
	{"NUL after value", "{}\x00", "trailing data", 2},
	{"BOM", "\xef\xbb\xbf{}", "invalid character at start of value", 0},
	{"UTF-16 BOM", "\xff\xfe{}", "invalid character at start of value", 0},
	{"raw 0xff 0xfe in string", "{\"a\":\"\xff\xfe\"}", "invalid UTF-8 in string", 6},
	{"form feed is not whitespace", "\f{}", "invalid character at start of value", 0},
	{"vertical tab is not whitespace", "{}\v", "trailing data", 2},
	{"NBSP is not whitespace", "\u00a0{}", "invalid character at start of value", 0},
	// Literals.
	{"True", `True`, "invalid character at start of value", 0},
	{"truncated true", `tru`, "invalid literal", 0},
	{"nul", `nul`, "invalid literal", 0},
	{"falsey", `falsey`, "trailing data", 5},
	{"NaN", `NaN`, "invalid character at start of value", 0},
	{"Infinity", `Infinity`, "invalid character at start of value", 0},
	{"undefined", `undefined`, "invalid character at start of value", 0},
	// Numbers.
	{"leading zero", `01`, "invalid number", 1},
	{"negative leading zero", `-01`, "invalid number", 2},
	{"leading plus", `+1`, "invalid character at start of value", 0},
	{"leading dot", `.5`, "invalid character at start of value", 0},
	{"trailing dot", `5.`, "invalid number", 2},
	{"dot exponent", `5.e3`, "invalid number", 2},
	{"bare minus", `-`, "unexpected end of input", 1},
	{"minus space", `- 1`, "invalid number", 1},
	{"minus letter", `-x`, "invalid number", 1},
	{"hex", `0x10`, "trailing data", 1},
	{"empty exponent", `1e`, "invalid number", 2},
	{"exponent sign only", `1e+`, "invalid number", 3},
	{"double exponent", `1e5e5`, "invalid number", 3},
	{"two dots", `1.2.3`, "invalid number", 3},
	{"minus infinity", `-Infinity`, "invalid number", 1},
	{"number in array leading zero", `[00]`, "invalid number", 2},
	{"trailing minus", `1-`, "invalid number", 1},
	// Strings.
	{"unterminated", `"abc`, "unterminated string", 4},
	{"unterminated escape", `"\`, "unterminated string", 2},
	{"raw newline", "\"a\nb\"", "control character in string", 2},
	{"raw tab", "\"\t\"", "control character in string", 1},
	{"raw NUL", "\"\x00\"", "control character in string", 1},
	{"raw 0x1f", "\"\x1f\"", "control character in string", 1},
	{"invalid escape", `"\x41"`, "invalid escape in string", 1},
	{"escaped apostrophe", `"\'"`, "invalid escape in string", 1},
	{"escaped zero", `"\0"`, "invalid escape in string", 1},
	{"escaped U", `"\U0041"`, "invalid escape in string", 1},
	{"short unicode escape", `"\u00e"`, "invalid \\u escape in string", 1},
	{"non-hex unicode escape", `"\u00g0"`, "invalid \\u escape in string", 1},
	{"unicode escape at end", `"\u00`, "invalid \\u escape in string", 1},
	{"lone high surrogate", `"\ud83d"`, "unpaired surrogate escape in string", 1},
	{"lone high surrogate then text", `"\ud83dxxxxxx"`, "unpaired surrogate escape in string", 1},
	{"lone low surrogate", `"\ude00"`, "unpaired surrogate escape in string", 1},
	{"reversed surrogates", `"\ude00\ud83d"`, "unpaired surrogate escape in string", 1},
	{"two high surrogates", `"\ud83d\ud83d"`, "unpaired surrogate escape in string", 1},
	{"high surrogate then BMP escape", `"\ud83d\u0041"`, "unpaired surrogate escape in string", 1},
	{"high surrogate then other escape", `"\ud83d\n"`, "unpaired surrogate escape in string", 1},
	{"high surrogate then bad hex", `"\ud83d\uzzzz"`, "invalid \\u escape in string", 7},
	{"lone surrogate in name", `{"\udc00":1}`, "unpaired surrogate escape in string", 2},
	// UTF-8.
	{"overlong slash", "\"\xc0\xaf\"", "invalid UTF-8 in string", 1},
	{"overlong C1", "\"\xc1\xbf\"", "invalid UTF-8 in string", 1},
	{"overlong three-byte", "\"\xe0\x80\xaf\"", "invalid UTF-8 in string", 1},
	{"overlong four-byte", "\"\xf0\x80\x80\xaf\"", "invalid UTF-8 in string", 1},
	{"encoded surrogate", "\"\xed\xa0\x80\"", "invalid UTF-8 in string", 1},
	{"encoded low surrogate", "\"\xed\xbf\xbf\"", "invalid UTF-8 in string", 1},
	{"above U+10FFFF", "\"\xf4\x90\x80\x80\"", "invalid UTF-8 in string", 1},
	{"byte F5", "\"\xf5\x80\x80\x80\"", "invalid UTF-8 in string", 1},
	{"byte FF", "\"\xff\"", "invalid UTF-8 in string", 1},
	{"lone continuation", "\"\x80\"", "invalid UTF-8 in string", 1},
	{"truncated sequence", "\"\xe2\x82\"", "invalid UTF-8 in string", 1},
	{"truncated at end", "\"\xe2\x82", "invalid UTF-8 in string", 1},
	{"invalid UTF-8 in name", "{\"\xc3\":1}", "invalid UTF-8 in string", 2},
	{"invalid UTF-8 after valid", "\"\u00e9\xff\"", "invalid UTF-8 in string", 3},
	// Objects.
	{"unclosed object", `{`, "unexpected end of input", 1},
	{"unquoted name", `{a:1}`, "expected string for object member name", 1},
	{"single-quoted name", `{'a':1}`, "expected string for object member name", 1},
	{"number name", `{1:1}`, "expected string for object member name", 1},
	{"missing colon", `{"a" 1}`, "expected ':' after object member name", 5},
	{"equals for colon", `{"a"=1}`, "expected ':' after object member name", 4},
	{"missing value", `{"a":}`, "invalid character at start of value", 5},
	{"missing value at end", `{"a":`, "unexpected end of input", 5},
	{"name at end", `{"a"`, "unexpected end of input", 4},
	{"trailing comma", `{"a":1,}`, "expected string for object member name", 7},
	{"leading comma", `{,"a":1}`, "expected string for object member name", 1},
	{"missing comma", `{"a":1 "b":2}`, "expected ',' or '}' after object member", 7},
	{"object closed by bracket", `{"a":1]`, "expected ',' or '}' after object member", 6},
	{"comma at end", `{"a":1,`, "unexpected end of input", 7},
	// Duplicates.
	{"duplicate exp", `{"exp":1,"exp":2}`, "duplicate member name", 9},
	{"duplicate alg", `{"alg":"none","alg":"ES256"}`, "duplicate member name", 14},
	{"duplicate via escape", `{"a":1,"\u0061":2}`, "duplicate member name", 7},
	{"duplicate both escaped", `{"\u0061":1,"\u0061":2}`, "duplicate member name", 12},
	{"duplicate escape spellings", `{"\u00e9":1,"\u00E9":2}`, "duplicate member name", 12},
	{"duplicate escape and raw UTF-8", "{\"\\u00e9\":1,\"\u00e9\":2}", "duplicate member name", 12},
	{"duplicate solidus escape", `{"a/b":1,"a\/b":2}`, "duplicate member name", 9},
	{"duplicate surrogate pair", "{\"\\ud83d\\ude00\":1,\"\U0001F600\":2}", "duplicate member name", 18},
	{"duplicate not adjacent", `{"a":1,"b":2,"c":3,"a":4}`, "duplicate member name", 19},
	{"duplicate empty name", `{"":1,"":2}`, "duplicate member name", 6},
	{"duplicate nested", `{"x":{"a":1,"a":2}}`, "duplicate member name", 12},
	{"duplicate after nested value", `{"a":{"a":1},"a":2}`, "duplicate member name", 13},
	{"triplicate", `{"a":1,"a":2,"a":3}`, "duplicate member name", 7},
	{"duplicate in 40 members", members(40, `,"m7":0`), "duplicate member name", len(members(40, "")) - 1 + 1},
	{"duplicate in 40 members via escape", members(40, `,"m\u0037":0`), "duplicate member name", len(members(40, "")) - 1 + 1},
	{"duplicate in 200 members", members(200, `,"m199":0`), "duplicate member name", len(members(200, "")) - 1 + 1},
	// Arrays.
	{"unclosed array", `[`, "unexpected end of input", 1},
	{"unclosed array after element", `[1`, "unexpected end of input", 2},
	{"array trailing comma", `[1,]`, "invalid character at start of value", 3},
	{"array leading comma", `[,1]`, "invalid character at start of value", 1},
	{"array missing comma", `[1 2]`, "expected ',' or ']' after array element", 3},
	{"array closed by brace", `[1}`, "expected ',' or ']' after array element", 2},
	{"stray closer", `]`, "invalid character at start of value", 0},
	// Depth.
	{"depth 17 arrays", nest(MaxDepth+1, ""), "nesting too deep", MaxDepth},
	{"depth 17 objects", strings.Repeat(`{"a":`, MaxDepth) + "{}" + strings.Repeat("}", MaxDepth), "nesting too deep", 5 * MaxDepth},
	{"100 nested arrays in a claim", `{"c":` + nest(100, "") + `}`, "nesting too deep", 5 + MaxDepth - 1},
	{"depth exceeded before invalid bytes", nest(MaxDepth+1, "\"\xff"), "nesting too deep", MaxDepth},
	{"depth exceeded before end of input", strings.Repeat("[", MaxDepth+1), "nesting too deep", MaxDepth},
}

// knownMsgs are all the messages Parse produces: none quotes input.
var knownMsgs = map[string]bool{
	"input too large":                         true,
	"unexpected end of input":                 true,
	"invalid character at start of value":     true,
	"invalid literal":                         true,
	"invalid number":                          true,
	"unterminated string":                     true,
	"control character in string":             true,
	"invalid UTF-8 in string":                 true,
	"invalid escape in string":                true,
	"invalid \\u escape in string":            true,
	"unpaired surrogate escape in string":     true,
	"expected string for object member name":  true,
	"expected ':' after object member name":   true,
	"expected ',' or '}' after object member": true,
	"expected ',' or ']' after array element": true,
	"nesting too deep":                        true,
	"duplicate member name":                   true,
	"trailing data":                           true,
}

func TestParseAccepts(t *testing.T) {
	t.Parallel()
	for _, tc := range acceptCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var d Doc
			if err := d.Parse([]byte(tc.in)); err != nil {
				t.Fatalf("Parse(%q) = %v", tc.in, err)
			}
			root := d.Root()
			if root.Kind() != tc.kind {
				t.Errorf("Root().Kind() = %v, want %v", root.Kind(), tc.kind)
			}
			if got, want := string(root.Raw()), strings.Trim(tc.in, " \t\r\n"); got != want {
				t.Errorf("Root().Raw() = %q, want %q", got, want)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range rejectCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var d Doc
			// A Doc holding a document must drop it on a failed Parse.
			if err := d.Parse([]byte(`{"sub":"x"}`)); err != nil {
				t.Fatal(err)
			}
			old := d.Root()
			err := d.Parse([]byte(tc.in))
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) = %v, want a *SyntaxError", tc.in, err)
			}
			if se.Msg != tc.msg || se.Offset != tc.off {
				t.Errorf("Parse(%q) = %q at %d, want %q at %d", tc.in, se.Msg, se.Offset, tc.msg, tc.off)
			}
			if want := "strictjson: " + se.Msg + " at offset " + strconv.Itoa(se.Offset); err.Error() != want {
				t.Errorf("Error() = %q, want %q", err.Error(), want)
			}
			if !knownMsgs[se.Msg] {
				t.Errorf("message %q is not one of the known messages", se.Msg)
			}
			if k := d.Root().Kind(); k != Invalid {
				t.Errorf("after a failed Parse, Root().Kind() = %v", k)
			}
			if k := old.Kind(); k != Invalid {
				t.Errorf("a Value from before the failed Parse has kind %v", k)
			}
		})
	}
}

// TestParseRejectsS6toS9 covers the constructions of the project's security
// requirements S6 to S9 as a verifier sees them: the payload parses or not,
// and the caller checks the kind.
func TestParseRejectsS6toS9(t *testing.T) {
	t.Parallel()
	var d Doc
	if err := d.Parse([]byte(`[{"sub":"admin","exp":9999999999}]`)); err != nil {
		t.Fatal(err)
	}
	if k := d.Root().Kind(); k != Array {
		t.Errorf("a top-level array parses with kind %v, want array (the caller refuses it)", k)
	}
	if err := d.Parse([]byte(`{"exp":1,"Exp":2,"EXP":3}`)); err != nil {
		t.Fatal(err)
	}
	root := d.Root()
	if root.Len() != 3 {
		t.Errorf("Len() = %d, want 3 distinct members", root.Len())
	}
	for name, want := range map[string]string{"exp": "1", "Exp": "2", "EXP": "3"} {
		v, ok := root.Get(name)
		if !ok || string(v.Raw()) != want {
			t.Errorf("Get(%q) = %q, %v; want %s", name, v.Raw(), ok, want)
		}
	}
	if _, ok := root.Get("eXp"); ok {
		t.Error(`Get("eXp") found a member`)
	}
	for _, in := range []string{
		`{"exp":9999999999,"exp":1}`,
		`{"exp":1,"exp":9999999999}`,
		`{"alg":"none","alg":"ES256"}`,
		"{\"typ\":\"JWT\",\"x\":\"\xff\xfe\"}",
		"\xef\xbb\xbf{\"alg\":\"ES256\"}",
		`{"sub":"bob"}{"admin":true}`,
		`{"c":` + nest(100, "") + `}`,
	} {
		if err := d.Parse([]byte(in)); err == nil {
			t.Errorf("Parse(%q) accepted", in)
		}
	}
}

func TestKindString(t *testing.T) {
	t.Parallel()
	want := []string{"invalid", "null", "false", "true", "number", "string", "array", "object"}
	for k, w := range want {
		if got := Kind(k).String(); got != w {
			t.Errorf("Kind(%d).String() = %q, want %q", k, got, w)
		}
	}
	if got := Kind(200).String(); got != "Kind(200)" {
		t.Errorf("Kind(200).String() = %q", got)
	}
}

func mustParse(t *testing.T, in string) Value {
	t.Helper()
	d := new(Doc)
	if err := d.Parse([]byte(in)); err != nil {
		t.Fatalf("Parse(%q) = %v", in, err)
	}
	return d.Root()
}

func TestZeroValue(t *testing.T) {
	t.Parallel()
	for name, v := range map[string]Value{"zero": {}, "root of zero Doc": new(Doc).Root()} {
		if v.Kind() != Invalid || v.Len() != 0 || v.Raw() != nil {
			t.Errorf("%s: Kind %v, Len %d, Raw %q", name, v.Kind(), v.Len(), v.Raw())
		}
		if _, ok := v.Get(""); ok {
			t.Errorf("%s: Get found a member", name)
		}
		for range v.Elems() {
			t.Errorf("%s: Elems yielded", name)
		}
		for range v.Members() {
			t.Errorf("%s: Members yielded", name)
		}
		if s, ok := v.Str(); ok || s != "" {
			t.Errorf("%s: Str = %q, %v", name, s, ok)
		}
		if b := v.AppendStr([]byte("x")); string(b) != "x" {
			t.Errorf("%s: AppendStr = %q", name, b)
		}
		if v.StrEqual("") || v.StrEqualFold("") {
			t.Errorf("%s: StrEqual(\"\") is true", name)
		}
		if f, ok := v.Float(); ok || f != 0 {
			t.Errorf("%s: Float = %v, %v", name, f, ok)
		}
	}
}

func TestStaleValue(t *testing.T) {
	t.Parallel()
	var d Doc
	if err := d.Parse([]byte(`{"a":"one","b":[1,2]}`)); err != nil {
		t.Fatal(err)
	}
	a, _ := d.Root().Get("a")
	b, _ := d.Root().Get("b")
	if err := d.Parse([]byte(`["two","three","four","five"]`)); err != nil {
		t.Fatal(err)
	}
	if a.Kind() != Invalid || a.StrEqual("one") || a.StrEqual("three") || a.Raw() != nil {
		t.Errorf("a Value from the previous Parse still reads: kind %v, raw %q", a.Kind(), a.Raw())
	}
	if b.Len() != 0 {
		t.Errorf("stale array Len() = %d", b.Len())
	}
	// Parsing into the Doc while iterating over it ends the iteration.
	if err := d.Parse([]byte(`[1,2,3]`)); err != nil {
		t.Fatal(err)
	}
	n := 0
	for range d.Root().Elems() {
		n++
		if err := d.Parse([]byte(`[4,5,6,7,8]`)); err != nil {
			t.Fatal(err)
		}
	}
	if n != 1 {
		t.Errorf("iteration went on for %d elements after a Parse into its Doc", n)
	}
}

func TestGet(t *testing.T) {
	t.Parallel()
	root := mustParse(t, `{"iss":"a","\u0073ub":"b","na\u006De":"c","nested":{"iss":"inner"},"":"empty","x\\y":1,"é":2}`)
	for _, tc := range []struct {
		name, raw string
		ok        bool
	}{
		{"iss", `"a"`, true},
		{"sub", `"b"`, true},
		{"name", `"c"`, true},
		{"nested", `{"iss":"inner"}`, true},
		{"", `"empty"`, true},
		{`x\y`, "1", true},
		{"é", "2", true},
		{"ISS", "", false},
		{"is", "", false},
		{"isss", "", false},
		{"su", "", false},
		{"subb", "", false},
		{`\u0073ub`, "", false},
		{"inner", "", false},
	} {
		v, ok := root.Get(tc.name)
		if ok != tc.ok || string(v.Raw()) != tc.raw {
			t.Errorf("Get(%q) = %q, %v; want %q, %v", tc.name, v.Raw(), ok, tc.raw, tc.ok)
		}
	}
	inner, _ := root.Get("nested")
	if v, ok := inner.Get("iss"); !ok || !v.StrEqual("inner") {
		t.Errorf("nested Get(iss) = %q, %v", v.Raw(), ok)
	}
	for _, in := range []string{`[1]`, `"iss"`, `1`, `null`} {
		if _, ok := mustParse(t, in).Get("iss"); ok {
			t.Errorf("Get on %s found a member", in)
		}
	}
	// A member of a large object, found past other large values.
	big := mustParse(t, members(100, `,"last":`+nest(10, `{"a":[1,2,3]}`)+`,"end":true`))
	if v, ok := big.Get("end"); !ok || v.Kind() != True {
		t.Errorf("Get(end) in a large object = %v, %v", v.Kind(), ok)
	}
	if v, ok := big.Get("m57"); !ok || string(v.Raw()) != "57" {
		t.Errorf("Get(m57) = %q, %v", v.Raw(), ok)
	}
}

func TestIteration(t *testing.T) {
	t.Parallel()
	root := mustParse(t, `{"z":1,"a":[true,{"k":[]},"s",null,-1.5],"m":{},"\u0062":"x"}`)
	if root.Len() != 4 {
		t.Errorf("Len() = %d", root.Len())
	}
	var names []string
	var raws []string
	for name, val := range root.Members() {
		if name.Kind() != String {
			t.Errorf("member name has kind %v", name.Kind())
		}
		s, _ := name.Str()
		names = append(names, s)
		raws = append(raws, string(val.Raw()))
	}
	if want := []string{"z", "a", "m", "b"}; !reflect.DeepEqual(names, want) {
		t.Errorf("member names = %q, want %q (document order)", names, want)
	}
	if want := []string{`1`, `[true,{"k":[]},"s",null,-1.5]`, `{}`, `"x"`}; !reflect.DeepEqual(raws, want) {
		t.Errorf("member values = %q, want %q", raws, want)
	}
	arr, _ := root.Get("a")
	if arr.Len() != 5 {
		t.Errorf("array Len() = %d", arr.Len())
	}
	var kinds []Kind
	for e := range arr.Elems() {
		kinds = append(kinds, e.Kind())
	}
	if want := []Kind{True, Object, String, Null, Number}; !reflect.DeepEqual(kinds, want) {
		t.Errorf("element kinds = %v, want %v", kinds, want)
	}
	// Early exit.
	n := 0
	for range arr.Elems() {
		n++
		if n == 2 {
			break
		}
	}
	for range root.Members() {
		n++
		break
	}
	if n != 3 {
		t.Errorf("early break: %d iterations, want 3", n)
	}
	// Wrong kinds yield nothing.
	for range root.Elems() {
		t.Error("Elems on an object yielded")
	}
	for range arr.Members() {
		t.Error("Members on an array yielded")
	}
	m, _ := root.Get("m")
	if m.Len() != 0 {
		t.Errorf("empty object Len() = %d", m.Len())
	}
	for range m.Members() {
		t.Error("Members on an empty object yielded")
	}
	if s := mustParse(t, `"abc"`); s.Len() != 0 {
		t.Errorf("string Len() = %d", s.Len())
	}
}

func TestStrings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want string
	}{
		{`""`, ""},
		{`"plain"`, "plain"},
		{`"\" \\ \/ \b \f \n \r \t"`, "\" \\ / \b \f \n \r \t"},
		{`"\u0041\u00e9\u20AC"`, "A\u00e9\u20ac"},
		{`"\u0000"`, "\x00"},
		{`"a\ud83d\ude00b"`, "a\U0001F600b"},
		{`"\udbff\udfff"`, "\U0010FFFF"},
		{"\"\u00e9\\n\U0001F600\"", "\u00e9\n\U0001F600"},
		{`"\\u0041"`, `\u0041`},
		{`"\uFFFD"`, "\uFFFD"},
	} {
		v := mustParse(t, tc.in)
		if s, ok := v.Str(); !ok || s != tc.want {
			t.Errorf("%s: Str() = %q, %v; want %q", tc.in, s, ok, tc.want)
		}
		buf := make([]byte, 2, 64)
		buf[0], buf[1] = 'x', 'y'
		if b := v.AppendStr(buf); string(b) != "xy"+tc.want {
			t.Errorf("%s: AppendStr = %q", tc.in, b)
		}
		if !v.StrEqual(tc.want) || !v.StrEqualFold(tc.want) {
			t.Errorf("%s: StrEqual(%q) is false", tc.in, tc.want)
		}
		for _, other := range []string{tc.want + "x", "x" + tc.want, tc.want + "\x00"} {
			if v.StrEqual(other) || v.StrEqualFold(other) {
				t.Errorf("%s: StrEqual(%q) is true", tc.in, other)
			}
		}
		if n := len(tc.want); n > 0 {
			if v.StrEqual(tc.want[:n-1]) || v.StrEqualFold(tc.want[:n-1]) {
				t.Errorf("%s: StrEqual of a prefix is true", tc.in)
			}
		}
		if got, want := string(v.Raw()), tc.in; got != want {
			t.Errorf("Raw() = %q, want %q", got, want)
		}
	}
	// U+FFFD in the document never equals invalid UTF-8 in the argument.
	for _, in := range []string{`"\uFFFD"`, "\"\uFFFD\""} {
		if v := mustParse(t, in); v.StrEqual("\xff") || v.StrEqual("\xef\xbf") || v.StrEqualFold("\xff") {
			t.Errorf("%s equals invalid UTF-8", in)
		}
	}
	// Non-strings.
	for _, in := range []string{`1`, `null`, `["a"]`, `{"a":"a"}`, `true`} {
		v := mustParse(t, in)
		if s, ok := v.Str(); ok || s != "" || v.StrEqual("a") || v.StrEqual("") || v.StrEqualFold("a") {
			t.Errorf("%s: string methods succeeded on a %v", in, v.Kind())
		}
		if b := v.AppendStr(nil); b != nil {
			t.Errorf("%s: AppendStr appended %q", in, b)
		}
	}
}

func TestStrEqualFold(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, s string
		want  bool
	}{
		{`"JWT"`, "jwt", true},
		{`"jwt"`, "JWT", true},
		{`"JwT"`, "jWt", true},
		{`"J\u0057T"`, "jwt", true},
		{`"j\u0077t"`, "JWT", true},
		{`"at+jwt"`, "AT+JWT", true},
		{`"application/at+JWT"`, "application/at+jwt", true},
		{`"application\/at+JWT"`, "application/AT+jwt", true},
		{`"JWT"`, "jwt ", false},
		{`"JWT"`, "jw", false},
		{`"JWS"`, "jwt", false},
		{"\"\u00c9\"", "\u00e9", false}, // only ASCII folds
		{`"\u00c9"`, "\u00e9", false},
		{`"@"`, "`", false}, // 0x40 and 0x60 differ by the case bit but are not letters
		{`"["`, "{", false},
		{`"\u212a"`, "k", false}, // KELVIN SIGN folds to k under Unicode rules, not here
	} {
		if got := mustParse(t, tc.in).StrEqualFold(tc.s); got != tc.want {
			t.Errorf("%s.StrEqualFold(%q) = %v, want %v", tc.in, tc.s, got, tc.want)
		}
	}
	if mustParse(t, `"JWT"`).StrEqual("jwt") {
		t.Error(`StrEqual is case-insensitive`)
	}
}

func TestFloat(t *testing.T) {
	t.Parallel()
	maxf := strconv.FormatFloat(math.MaxFloat64, 'g', -1, 64)
	for _, tc := range []struct {
		in   string
		want float64
		ok   bool
	}{
		{"0", 0, true},
		{"1", 1, true},
		{"-1.5", -1.5, true},
		{"1e3", 1000, true},
		{"1700000000", 1700000000, true},
		{"1.7e9", 1.7e9, true},
		{"9007199254740993", 9007199254740992, true},
		{"1e-400", 0, true},
		{"-1e-400", 0, true},
		{"0e999999999999999999999", 0, true},
		{"0.000e-5", 0, true},
		{maxf, math.MaxFloat64, true},
		{"-" + maxf, -math.MaxFloat64, true},
		{"1e308", 1e308, true},
		{"0.0001e312", 1e308, true},
		{"100000e303", 1e308, true},
		{"1e309", 0, false},
		{"1e400", 0, false},
		{"-1e400", 0, false},
		{"1e99999999999999999999", 0, false},
		{"0.1e310", 0, false},
		{"1.8e308", 0, false},
		{"1.7976931348623159e308", 0, false},
		{"1.7976931348623158e308", math.MaxFloat64, true},
		{"4.9e-324", 5e-324, true},
		{"2e-324", 0, true},
	} {
		f, ok := mustParse(t, tc.in).Float()
		if ok != tc.ok || f != tc.want {
			t.Errorf("Float(%s) = %v, %v; want %v, %v", tc.in, f, ok, tc.want, tc.ok)
		}
	}
	if f, ok := mustParse(t, "-0").Float(); !ok || f != 0 || !math.Signbit(f) {
		t.Errorf("Float(-0) = %v, %v; want negative zero", f, ok)
	}
	for _, in := range []string{`"1"`, `null`, `true`, `[1]`, `{"a":1}`} {
		if f, ok := mustParse(t, in).Float(); ok || f != 0 {
			t.Errorf("Float(%s) = %v, %v", in, f, ok)
		}
	}
}

// TestFloatOverflowBoundary checks Float's range test against
// strconv.ParseFloat around the exact overflow threshold 2^1024 - 2^970,
// in many spellings.
func TestFloatOverflowBoundary(t *testing.T) {
	t.Parallel()
	thr := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 1024), new(big.Int).Lsh(big.NewInt(1), 970))
	if thr.String() != overflow {
		t.Fatalf("overflow constant is not 2^1024 - 2^970")
	}
	below := new(big.Int).Sub(thr, big.NewInt(1)).String()
	above := new(big.Int).Add(thr, big.NewInt(1)).String()
	var ins []string
	for _, digits := range []string{overflow, below, above, "1" + strings.Repeat("0", 308), "17976931348623157", "17976931348623158", "17976931348623159", "2"} {
		for _, spell := range []func(string) string{
			func(d string) string { return d + "e" + strconv.Itoa(309-len(d)) },
			func(d string) string { return d[:1] + "." + d[1:] + "0e308" },
			func(d string) string { return "0." + d + "e309" },
			func(d string) string { return "0.000" + d + "e312" },
			func(d string) string { return d + "000e" + strconv.Itoa(306-len(d)) },
			func(d string) string { return d + ".000e" + strconv.Itoa(309-len(d)) },
			func(d string) string { return d + "e" + strconv.Itoa(310-len(d)) },
			func(d string) string { return d + "e" + strconv.Itoa(308-len(d)) },
			func(d string) string { return d + "1e" + strconv.Itoa(308-len(d)) },
		} {
			ins = append(ins, spell(digits), "-"+spell(digits))
		}
	}
	ins = append(ins, overflow+"."+strings.Repeat("0", 900)+"1", below+"."+strings.Repeat("9", 900))
	for _, in := range ins {
		want, err := strconv.ParseFloat(in, 64)
		wantOK := err == nil && !math.IsInf(want, 0)
		if !wantOK {
			want = 0
		}
		v := mustParse(t, in)
		got, ok := v.Float()
		if ok != wantOK || got != want {
			t.Errorf("Float(%.40s...) = %v, %v; strconv says %v, %v", in, got, ok, want, wantOK)
		}
	}
}

func TestRaw(t *testing.T) {
	t.Parallel()
	in := ` {"s" : "a\nb" , "n":-1.5e3,"o":{ "x" : [ 1 ,2 ] }} `
	root := mustParse(t, in)
	for name, want := range map[string]string{"s": `"a\nb"`, "n": `-1.5e3`, "o": `{ "x" : [ 1 ,2 ] }`} {
		v, _ := root.Get(name)
		if got := string(v.Raw()); got != want {
			t.Errorf("Raw of %s = %q, want %q", name, got, want)
		}
	}
	for name := range root.Members() {
		if raw := name.Raw(); raw[0] != '"' || raw[len(raw)-1] != '"' {
			t.Errorf("name Raw() = %q lacks its quotes", raw)
		}
	}
	s, _ := root.Get("s")
	if raw := s.Raw(); cap(raw) != len(raw) {
		t.Errorf("Raw() has capacity %d past its length %d: appending would overwrite the input", cap(raw), len(raw))
	}
}

func TestDocReuse(t *testing.T) {
	t.Parallel()
	var d Doc
	for i, in := range []string{members(100, ""), `[1,2,3]`, `"x"`, `{"a":{"b":{"c":1}}}`, members(5, ""), `{"m1":"y"}`} {
		if err := d.Parse([]byte(in)); err != nil {
			t.Fatalf("parse %d: %v", i, err)
		}
		if got := string(d.Root().Raw()); got != in {
			t.Errorf("parse %d: Raw() = %q", i, got)
		}
		if got, want := toAny(d.Root()), stdlibDecode(t, []byte(in)); !reflect.DeepEqual(got, want) {
			t.Errorf("parse %d: tree %v, want %v", i, got, want)
		}
	}
}

// toAny converts v to the values encoding/json produces with UseNumber.
func toAny(v Value) any {
	switch v.Kind() {
	case Null:
		return nil
	case True:
		return true
	case False:
		return false
	case Number:
		return json.Number(v.Raw())
	case String:
		s, _ := v.Str()
		return s
	case Array:
		a := make([]any, 0, v.Len())
		for e := range v.Elems() {
			a = append(a, toAny(e))
		}
		return a
	case Object:
		m := make(map[string]any, v.Len())
		for name, val := range v.Members() {
			s, _ := name.Str()
			m[s] = toAny(val)
		}
		return m
	}
	panic("invalid value")
}

func stdlibDecode(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		t.Fatalf("encoding/json rejects %q: %v", b, err)
	}
	return x
}

// randomJSON writes a random valid JSON value within MaxDepth with unique
// member names, exercising escapes, non-ASCII text and number spellings.
func randomJSON(r *rand.Rand, b *strings.Builder, depth int) {
	k := r.IntN(8)
	if depth >= MaxDepth {
		k = r.IntN(4)
	}
	ws := func() {
		if r.IntN(4) == 0 {
			b.WriteString([]string{" ", "\t", "\n", "\r\n ", "  "}[r.IntN(5)])
		}
	}
	switch k {
	case 0:
		b.WriteString([]string{"null", "true", "false"}[r.IntN(3)])
	case 1:
		b.WriteString([]string{"0", "-0", "1", "-12", "3.25", "1e5", "-2.5E-3", "1e+2", "123456789012345678901234567890", "0.000001", "1e400", "-1e-400", "17e0"}[r.IntN(13)])
	case 2, 3:
		randomString(r, b, "")
	case 4, 5:
		b.WriteByte('[')
		n := r.IntN(5)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			ws()
			randomJSON(r, b, depth+1)
			ws()
		}
		b.WriteByte(']')
	default:
		b.WriteByte('{')
		n := r.IntN(6)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			ws()
			// A unique prefix keeps names distinct whatever follows.
			randomString(r, b, strconv.Itoa(i)+"_")
			ws()
			b.WriteByte(':')
			ws()
			randomJSON(r, b, depth+1)
		}
		b.WriteByte('}')
	}
}

func randomString(r *rand.Rand, b *strings.Builder, prefix string) {
	b.WriteByte('"')
	b.WriteString(prefix)
	for range r.IntN(8) {
		switch r.IntN(10) {
		case 0:
			b.WriteString([]string{`\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t`}[r.IntN(8)])
		case 1:
			fmt.Fprintf(b, `\u%04x`, []rune{0, 0x1f, 'A', 0xe9, 0x20ac, 0xfffd, 0xffff, 0x7ff, 0x800}[r.IntN(9)])
		case 2:
			fmt.Fprintf(b, `\u%04X\u%04x`, 0xD800+r.IntN(0x400), 0xDC00+r.IntN(0x400))
		case 3:
			b.WriteString([]string{"\u00e9", "\u20ac", "\U0001F600", "\U0010FFFF", "\uFFFD", "\u0800", "\x7f"}[r.IntN(7)])
		default:
			b.WriteByte(byte('a' + r.IntN(26)))
		}
	}
	b.WriteByte('"')
}

// TestDifferential checks that, for valid documents, the tree Parse builds
// is the one encoding/json decodes.
func TestDifferential(t *testing.T) {
	t.Parallel()
	corpus := []string{
		`{"alg":"ES256","kid":"es-1","typ":"JWT"}`,
		claimsJSON,
		`{"a":[1,2,{"b":null}],"c":"\u00e9\ud83d\ude00\n","d":-0.5e-3,"e":true,"f":false,"g":{}}`,
		`[]`, `[[]]`, `{}`, `""`, `"\u0000"`, `0`, `-0`, `1e400`, `123456789012345678901234567890`,
		`{"exp":1,"Exp":2,"EXP":3}`,
		members(40, ""),
		nest(MaxDepth, `"deep"`),
	}
	for _, tc := range acceptCases {
		corpus = append(corpus, tc.in)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		var b strings.Builder
		randomJSON(r, &b, 0)
		corpus = append(corpus, b.String())
	}
	var d Doc
	for _, in := range corpus {
		if err := d.Parse([]byte(in)); err != nil {
			t.Errorf("Parse(%q) = %v", in, err)
			continue
		}
		if !json.Valid([]byte(in)) {
			t.Errorf("encoding/json rejects %q", in)
			continue
		}
		got, want := toAny(d.Root()), stdlibDecode(t, []byte(in))
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Parse(%q) tree = %#v, encoding/json = %#v", in, got, want)
		}
	}
}

// TestRejectsAreInvalidOrStricter checks the reject table against
// encoding/json: each input is invalid JSON, or is valid JSON that breaks
// one of the rules this package adds.
func TestRejectsAreInvalidOrStricter(t *testing.T) {
	t.Parallel()
	stricter := map[string]bool{
		"duplicate member name":               true,
		"nesting too deep":                    true,
		"unpaired surrogate escape in string": true,
		"invalid UTF-8 in string":             true,
	}
	for _, tc := range rejectCases {
		if json.Valid([]byte(tc.in)) && !stricter[tc.msg] {
			t.Errorf("%s: encoding/json accepts %q, rejected with %q", tc.name, tc.in, tc.msg)
		}
		if !utf8.ValidString(tc.in) && tc.msg != "invalid UTF-8 in string" && tc.msg != "invalid character at start of value" && tc.msg != "nesting too deep" {
			t.Errorf("%s: invalid UTF-8 rejected for another reason: %q", tc.name, tc.msg)
		}
	}
}
