//go:build !race

package strictjson

import (
	"testing"
)

// TestParseAllocatesNothing guards the steady state of a pooled Doc: once
// its buffers have grown, Parse allocates nothing, whatever the input.
func TestParseAllocatesNothing(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"header", headerJSON},
		{"claims", claimsJSON},
		{"escapes", `{"\u0061":"\ud83d\ude00","b\n":["\u00e9",1e400,-0.5],"\u0062\t":null}`},
		{"40 members", members(40, "")},
		{"40 members escaped", members(40, `,"\u0078":1`)},
		{"depth 16", nest(MaxDepth-1, `{}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := []byte(tc.in)
			var d Doc
			if err := d.Parse(src); err != nil {
				t.Fatal(err)
			}
			if n := testing.AllocsPerRun(100, func() { _ = d.Parse(src) }); n != 0 {
				t.Errorf("Parse allocates %v times", n)
			}
		})
	}
}

// TestReadAllocatesNothing guards the accessors the verifier calls per token.
func TestReadAllocatesNothing(t *testing.T) {
	var d Doc
	src := []byte(`{"iss":"issuer","t\u0079p":"J\u0057T","aud":["a","b"],"exp":1767225600,"big":1e400,"o":{"k":"v"}}`)
	if err := d.Parse(src); err != nil {
		t.Fatal(err)
	}
	root := d.Root()
	buf := make([]byte, 0, 64)
	var sink int
	for name, f := range map[string]func(){
		"Kind": func() { sink += int(root.Kind()) },
		"Len":  func() { sink += root.Len() },
		"Raw":  func() { sink += len(root.Raw()) },
		"Get":  func() { v, _ := root.Get("o"); sink += v.Len() },
		"Get escaped name": func() {
			v, _ := root.Get("typ")
			sink += int(v.Kind())
		},
		"Get missing": func() { _, ok := root.Get("nope"); sink += len("x") * btoi(ok) },
		"StrEqual": func() {
			v, _ := root.Get("iss")
			sink += btoi(v.StrEqual("issuer"))
		},
		"StrEqual escaped": func() {
			v, _ := root.Get("typ")
			sink += btoi(v.StrEqual("JWT"))
		},
		"StrEqualFold escaped": func() {
			v, _ := root.Get("typ")
			sink += btoi(v.StrEqualFold("jwt"))
		},
		"AppendStr escaped": func() {
			v, _ := root.Get("typ")
			buf = v.AppendStr(buf[:0])
		},
		"Float": func() {
			v, _ := root.Get("exp")
			f, _ := v.Float()
			sink += int(f)
		},
		"Float out of range": func() {
			v, _ := root.Get("big")
			_, ok := v.Float()
			sink += btoi(ok)
		},
		"Elems": func() {
			v, _ := root.Get("aud")
			for e := range v.Elems() {
				sink += btoi(e.StrEqual("b"))
			}
		},
		"Members": func() {
			for name, val := range root.Members() {
				sink += btoi(name.StrEqual("exp")) + val.Len()
			}
		},
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s allocates %v times", name, n)
		}
	}
	_ = sink
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestStrAllocatesOnce checks that Str allocates only its result for short
// strings, escaped or not.
func TestStrAllocatesOnce(t *testing.T) {
	var d Doc
	if err := d.Parse([]byte(`["https://idp.example.com/realms/prod","J\u0057T \ud83d\ude00 \n"]`)); err != nil {
		t.Fatal(err)
	}
	var sink string
	for e := range d.Root().Elems() {
		if n := testing.AllocsPerRun(100, func() { sink, _ = e.Str() }); n != 1 {
			t.Errorf("Str() of %s allocates %v times, want 1", e.Raw(), n)
		}
	}
	_ = sink
}
