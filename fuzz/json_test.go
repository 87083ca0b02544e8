package fuzz

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/verifyd/verifyd/internal/strictjson"
)

// jsonSeeds are inputs for FuzzJSONStrict covering each rule of package
// strictjson, accepted and rejected.
var jsonSeeds = []string{
	// Accepted.
	`{"alg":"ES256","kid":"es-1","typ":"JWT"}`,
	`{"iss":"https://idp.example.com","sub":"alice","aud":["verifyd","broker"],"exp":1767225600,"nbf":1767222000,` +
		`"iat":1767222000,"jti":"b1f0","scope":"openid tool:data:read","roles":["publisher"],"realm_access":{"roles":["r"]}}`,
	`{"exp":1,"Exp":2,"EXP":3}`,
	`[{"exp":1}]`,
	`null`, `true`, `false`, `0`, `-0`, `-12.340e-05`, `1E+2`, `1e400`, `1e-400`,
	`17976931348623158079372897140530341507993413271003782693617377898044496829276475094664901797758720709633028641669288791094655554785194040263065748867150582068190890200070838367627385484581771153176447573027006985099187647915283910483734208025932751936e0`,
	`""`, `"\" \\ \/ \b \f \n \r \t"`, `"\u00e9\u00E9\u0000\uffff"`, `"\ud83d\ude00"`, `"\udbff\udfff"`,
	"\"\u00e9\u20ac\U0001F600\U0010FFFF\uFFFD\x7f\"",
	" \t\r\n{ \"a\" : [ 1 , 2 ] } \t\r\n",
	`{"a":{"a":1},"b":{"a":2}}`,
	`{"a":1,"\u0062":2}`,
	`{"typ":"J\u0057T"}`,
	strings.Repeat("[", 16) + strings.Repeat("]", 16),
	// Rejected.
	``, ` `, `{}{}`, `{} x`, `{"sub":"a"}{"admin":true}`, `1 2`,
	"\xef\xbb\xbf{}", "\xff\xfe{}", "{\"a\":\"\xff\xfe\"}", "\f{}", "{}\v",
	`True`, `tru`, `NaN`, `Infinity`, `-Infinity`,
	`01`, `-01`, `+1`, `.5`, `5.`, `5.e3`, `-`, `0x10`, `1e`, `1e+`, `1e5e5`, `1.2.3`,
	`"abc`, `"\`, "\"a\nb\"", "\"\x00\"", `"\x41"`, `"\'"`, `"\u00e"`, `"\u00g0"`,
	`"\ud83d"`, `"\ude00"`, `"\ude00\ud83d"`, `"\ud83d\ud83d"`, `"\ud83d\u0041"`, `"\ud83d\uzzzz"`,
	"\"\xc0\xaf\"", "\"\xe0\x80\xaf\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "\"\xf5\x80\x80\x80\"", "\"\x80\"", "\"\xe2\x82\"",
	`{`, `{a:1}`, `{"a" 1}`, `{"a":}`, `{"a":1,}`, `{,"a":1}`, `{"a":1 "b":2}`, `{"a":1]`,
	`{"exp":1,"exp":2}`, `{"alg":"none","alg":"ES256"}`, `{"a":1,"\u0061":2}`, `{"\u00e9":1,"\u00E9":2}`,
	`{"a/b":1,"a\/b":2}`, `{"x":{"a":1,"a":2}}`, `{"a":{"a":1},"a":2}`,
	`[1,]`, `[,1]`, `[1 2]`, `[1}`, `]`,
	strings.Repeat("[", 17) + strings.Repeat("]", 17),
	`{"c":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`,
}

// jsonTree converts v to the values encoding/json decodes with UseNumber.
func jsonTree(v strictjson.Value) any {
	switch v.Kind() {
	case strictjson.Null:
		return nil
	case strictjson.True:
		return true
	case strictjson.False:
		return false
	case strictjson.Number:
		return json.Number(v.Raw())
	case strictjson.String:
		s, _ := v.Str()
		return s
	case strictjson.Array:
		a := make([]any, 0, v.Len())
		for e := range v.Elems() {
			a = append(a, jsonTree(e))
		}
		return a
	case strictjson.Object:
		m := make(map[string]any, v.Len())
		for name, val := range v.Members() {
			s, _ := name.Str()
			m[s] = jsonTree(val)
		}
		return m
	}
	panic("invalid value")
}

// jsonFacts reads valid JSON b with encoding/json's token stream and
// reports its maximum nesting depth and whether some object repeats a
// member name (names compared as encoding/json unescapes them).
func jsonFacts(b []byte) (depth int, dup bool, err error) {
	type frame struct {
		obj       bool
		names     map[string]bool
		expectKey bool
	}
	var stack []frame
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return depth, dup, nil
		}
		if err != nil {
			return 0, false, err
		}
		var top *frame
		if len(stack) > 0 {
			top = &stack[len(stack)-1]
		}
		if top != nil && top.obj && top.expectKey {
			if d, ok := tok.(json.Delim); !ok || d != '}' {
				name := tok.(string)
				dup = dup || top.names[name]
				top.names[name] = true
				top.expectKey = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			stack = append(stack, frame{obj: tok == json.Delim('{'), names: map[string]bool{}, expectKey: true})
			depth = max(depth, len(stack))
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		// A value ended: an enclosing object expects a name next.
		if len(stack) > 0 && stack[len(stack)-1].obj {
			stack[len(stack)-1].expectKey = true
		}
	}
}

// loneSurrogateEscape reports whether valid JSON b contains a \u escape of
// a surrogate that is not a high surrogate directly followed by an escaped
// low one.
func loneSurrogateEscape(b []byte) bool {
	hex := func(i int) rune {
		r, err := strconv.ParseUint(string(b[i:i+4]), 16, 16)
		if err != nil {
			panic(err) // b is valid JSON
		}
		return rune(r)
	}
	inString := false
	for i := 0; i < len(b); i++ {
		switch {
		case !inString:
			inString = b[i] == '"'
		case b[i] == '"':
			inString = false
		case b[i] == '\\':
			if b[i+1] != 'u' {
				i++
				continue
			}
			r := hex(i + 2)
			switch {
			case r >= 0xDC00 && r <= 0xDFFF:
				return true
			case r >= 0xD800 && r <= 0xDBFF:
				if i+12 > len(b) || b[i+6] != '\\' || b[i+7] != 'u' {
					return true
				}
				if lo := hex(i + 8); lo < 0xDC00 || lo > 0xDFFF {
					return true
				}
				i += 6
			}
			i += 5
		}
	}
	return false
}

// asciiCase returns s with the letters lo..hi moved to the range starting
// at to: ASCII upper or lower case, leaving every other byte alone.
func asciiCase(s string, lo, hi, to byte) string {
	b := []byte(s)
	for i, c := range b {
		if lo <= c && c <= hi {
			b[i] = c - lo + to
		}
	}
	return string(b)
}

// checkValue checks the accessors of v against each other and against the
// reference readings of strconv.
func checkValue(t *testing.T, v strictjson.Value) {
	t.Helper()
	switch v.Kind() {
	case strictjson.String:
		s, ok := v.Str()
		if !ok || !v.StrEqual(s) || !v.StrEqualFold(s) || !v.StrEqualFold(asciiCase(s, 'a', 'z', 'A')) || !v.StrEqualFold(asciiCase(s, 'A', 'Z', 'a')) {
			t.Fatalf("string %q: Str, StrEqual and StrEqualFold disagree", v.Raw())
		}
		if v.StrEqual(s+"x") || (len(s) > 0 && v.StrEqual(s[:len(s)-1])) {
			t.Fatalf("string %q: StrEqual matches a different string", v.Raw())
		}
		if got := string(v.AppendStr([]byte("p"))); got != "p"+s {
			t.Fatalf("string %q: AppendStr = %q, Str = %q", v.Raw(), got, s)
		}
		if !utf8.ValidString(s) {
			t.Fatalf("string %q unescapes to invalid UTF-8", v.Raw())
		}
	case strictjson.Number:
		raw := string(v.Raw())
		want, err := strconv.ParseFloat(raw, 64)
		wantOK := err == nil && !math.IsInf(want, 0)
		if !wantOK {
			want = 0
		}
		got, ok := v.Float()
		if ok != wantOK || got != want || math.Signbit(got) != math.Signbit(want) {
			t.Fatalf("Float(%.60s) = %v, %v; strconv.ParseFloat gives %v, %v", raw, got, ok, want, err)
		}
	case strictjson.Array:
		n := 0
		for e := range v.Elems() {
			checkValue(t, e)
			n++
		}
		if n != v.Len() {
			t.Fatalf("array: %d elements, Len %d", n, v.Len())
		}
	case strictjson.Object:
		n := 0
		for name, val := range v.Members() {
			s, _ := name.Str()
			got, ok := v.Get(s)
			if !ok || &got.Raw()[0] != &val.Raw()[0] {
				t.Fatalf("object: Get(%q) does not find the member Members yields", s)
			}
			checkValue(t, name)
			checkValue(t, val)
			n++
		}
		if n != v.Len() {
			t.Fatalf("object: %d members, Len %d", n, v.Len())
		}
	}
}

// FuzzJSONStrict checks strictjson.Doc.Parse against encoding/json. Parse
// accepts exactly the inputs that encoding/json accepts and that are also
// valid UTF-8, free of duplicate member names and lone surrogate escapes,
// and nested at most MaxDepth deep; what it accepts decodes to the same
// tree as encoding/json's; a failed Parse leaves no value; and the
// accessors agree with each other and with strconv.
func FuzzJSONStrict(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	var d strictjson.Doc
	f.Fuzz(func(t *testing.T, b []byte) {
		// Parse into a Doc that holds a document, as a pooled Doc would.
		if err := d.Parse([]byte(`{"prev":[1,"two"]}`)); err != nil {
			t.Fatal(err)
		}
		prev := d.Root()
		err := d.Parse(b)
		if prev.Kind() != strictjson.Invalid {
			t.Fatalf("a Value from the previous Parse reads as %v", prev.Kind())
		}

		valid := json.Valid(b)
		want := valid && utf8.Valid(b) && !loneSurrogateEscape(b)
		var depth int
		var dup bool
		if valid {
			var ferr error
			if depth, dup, ferr = jsonFacts(b); ferr != nil {
				t.Fatalf("encoding/json: Valid but Token fails: %v", ferr)
			}
			want = want && !dup && depth <= strictjson.MaxDepth
		}

		if err != nil {
			var se *strictjson.SyntaxError
			if !errors.As(err, &se) || se.Offset < 0 || se.Offset > len(b) || se.Msg == "" {
				t.Fatalf("Parse(%q) = %v: want a *SyntaxError within the input", b, err)
			}
			if k := d.Root().Kind(); k != strictjson.Invalid {
				t.Fatalf("failed Parse(%q) (%v) left a root of kind %v", b, err, k)
			}
			if want {
				t.Fatalf("Parse(%q) = %v; encoding/json accepts it, with valid UTF-8, no duplicates, no lone surrogates, depth %d", b, err, depth)
			}
			return
		}

		if !want {
			t.Fatalf("Parse(%q) accepted: json.Valid %v, UTF-8 %v, lone surrogate %v, duplicate %v, depth %d",
				b, valid, utf8.Valid(b), valid && loneSurrogateEscape(b), dup, depth)
		}
		root := d.Root()
		if got := string(root.Raw()); got != strings.Trim(string(b), " \t\r\n") {
			t.Fatalf("Root().Raw() = %q for input %q", got, b)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var ref any
		if err := dec.Decode(&ref); err != nil {
			t.Fatalf("encoding/json: Valid but Decode fails: %v", err)
		}
		if got := jsonTree(root); !reflect.DeepEqual(got, ref) {
			t.Fatalf("Parse(%q) tree = %#v, encoding/json = %#v", b, got, ref)
		}
		checkValue(t, root)
	})
}
