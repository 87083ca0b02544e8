package main

import (
	"bytes"
	"slices"
	"testing"
	"time"
)

func TestParseInterspersed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		pos     []string
		scope   string
		verbose bool
	}{
		{name: "none", args: nil},
		{name: "flags first", args: []string{"--scope", "a:b", "x"}, pos: []string{"x"}, scope: "a:b"},
		{name: "flags last", args: []string{"x", "y", "--scope=a:b", "-v"}, pos: []string{"x", "y"}, scope: "a:b", verbose: true},
		{name: "mixed", args: []string{"x", "-v", "y", "--scope", "c"}, pos: []string{"x", "y"}, scope: "c", verbose: true},
		{name: "terminator", args: []string{"-v", "--", "-x", "--scope"}, pos: []string{"-x", "--scope"}, verbose: true},
		{name: "terminator after positional", args: []string{"x", "--", "-v"}, pos: []string{"x", "-v"}},
		{name: "dash positional", args: []string{"-RYjWX", "-v"}, pos: []string{"-RYjWX"}, verbose: true},
		{name: "double dash positional", args: []string{"--RYjWX", "--scope", "s"}, pos: []string{"--RYjWX"}, scope: "s"},
		{name: "value looks like flag", args: []string{"--scope", "-v", "x"}, pos: []string{"x"}, scope: "-v"},
		{name: "bool with value", args: []string{"-v=false", "x"}, pos: []string{"x"}},
		{name: "lone dash", args: []string{"-"}, pos: []string{"-"}},
		{name: "triple dash", args: []string{"---x"}, pos: []string{"---x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fs := newFlagSet("test")
			scope := fs.String("scope", "", "")
			verbose := fs.Bool("v", false, "")
			pos, err := parseInterspersed(fs, tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(pos, tc.pos) || *scope != tc.scope || *verbose != tc.verbose {
				t.Errorf("got pos %q scope %q v %t, want %q %q %t", pos, *scope, *verbose, tc.pos, tc.scope, tc.verbose)
			}
		})
	}
}

func TestGlobalsKeepEarlierValues(t *testing.T) {
	t.Parallel()
	g := &globals{addr: "from-env", timeout: time.Second}
	g.adminKey.s = "env-key"
	top := newFlagSet("top")
	g.register(top)
	if err := top.Parse([]string{"-o", "json", "--timeout", "3s"}); err != nil {
		t.Fatal(err)
	}
	leaf := newFlagSet("leaf")
	g.register(leaf)
	if err := leaf.Parse([]string{"--addr", "flag-addr"}); err != nil {
		t.Fatal(err)
	}
	if g.addr != "flag-addr" || !g.output.json || g.timeout != 3*time.Second || g.adminKey.s != "env-key" {
		t.Errorf("globals = %+v", g)
	}
	if s := leaf.Lookup("admin-key").Value.String(); s != "" {
		t.Errorf("admin-key flag shows %q", s)
	}
}

func TestClean(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", "-"},
		{"alice", "alice"},
		{"tool:data:*", "tool:data:*"},
		{"Zoë", "Zoë"},
		{"a\tb", `"a\tb"`},
		{"\x1b[31mred", `"\x1b[31mred"`},
		{"line\nbreak", `"line\nbreak"`},
	}
	for _, tc := range tests {
		if got := clean(tc.in); got != tc.want {
			t.Errorf("clean(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestWarnPlainHTTP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		base string
		warn bool
	}{
		{"http://127.0.0.1:8080", false},
		{"http://localhost:8080", false},
		{"http://[::1]:8080", false},
		{"https://verifyd.example", false},
		{"http://verifyd.example:8080", true},
		{"http://10.1.2.3:8080", true},
	}
	for _, tc := range tests {
		var stderr bytes.Buffer
		s := &session{env: &env{stderr: &stderr}}
		s.warnPlainHTTP(tc.base)
		s.warnPlainHTTP(tc.base)
		if got := stderr.Len() > 0; got != tc.warn {
			t.Errorf("%s: warned %t, want %t", tc.base, got, tc.warn)
		}
		if bytes.Count(stderr.Bytes(), []byte("\n")) > 1 {
			t.Errorf("%s: warned more than once", tc.base)
		}
	}
}

func TestReadSecret(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
		bad            bool
	}{
		{name: "plain", in: "abc", want: "abc"},
		{name: "lf", in: "abc\n", want: "abc"},
		{name: "crlf", in: "abc\r\n", want: "abc"},
		{name: "empty", in: "", bad: true},
		{name: "only newline", in: "\n", bad: true},
		{name: "two lines", in: "abc\ndef\n", bad: true},
		{name: "too long", in: string(bytes.Repeat([]byte("a"), maxSecretBytes+1)), bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := readSecret(bytes.NewReader([]byte(tc.in)), "", "secret")
			if tc.bad != (err != nil) || got != tc.want {
				t.Errorf("readSecret(%q) = %q, %v", tc.in, got, err)
			}
			if err != nil && len(tc.in) > 2 && bytes.Contains([]byte(err.Error()), []byte(tc.in[:3])) {
				t.Errorf("error %q reveals the secret", err)
			}
		})
	}
}
