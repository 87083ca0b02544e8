package ipc

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/verifyd/verifyd/verify"
)

// vectorFile is the layout of testdata/vectors.json.
type vectorFile struct {
	Comment string   `json:"comment"`
	Vectors []vector `json:"vectors"`
}

type vector struct {
	Name      string `json:"name"`
	Opcode    string `json:"opcode"`
	RequestID uint64 `json:"request_id"`
	Hello     *struct {
		MinVersion uint16 `json:"min_version"`
		MaxVersion uint16 `json:"max_version"`
	} `json:"hello"`
	HelloOK *struct {
		Version       uint16 `json:"version"`
		MaxFrameBytes uint32 `json:"max_frame_bytes"`
		MaxInFlight   uint32 `json:"max_in_flight"`
		MaxTokenBytes uint32 `json:"max_token_bytes"`
		MaxScopeBytes uint32 `json:"max_scope_bytes"`
		IdleTimeoutMS uint32 `json:"idle_timeout_ms"`
	} `json:"hello_ok"`
	Verify *struct {
		Token string `json:"token"`
		Scope string `json:"scope"`
	} `json:"verify"`
	VerifyResult *struct {
		Status      uint8    `json:"status"`
		CacheTTLMS  uint32   `json:"cache_ttl_ms"`
		ExpiresAtMS int64    `json:"expires_at_ms"`
		Subject     string   `json:"subject"`
		Kind        string   `json:"kind"`
		KeyID       string   `json:"key_id"`
		Grant       string   `json:"grant"`
		Source      string   `json:"source"`
		Realm       string   `json:"realm"`
		Roles       []string `json:"roles"`
	} `json:"verify_result"`
	Error *struct {
		Code    uint16 `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Hex string `json:"hex"`
}

func (v *vector) bytes(t *testing.T) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(v.Hex), ""))
	if err != nil {
		t.Fatalf("%s: bad hex: %v", v.Name, err)
	}
	return b
}

func loadVectors(t *testing.T) []vector {
	t.Helper()
	data, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var f vectorFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		t.Fatal(err)
	}
	if len(f.Vectors) == 0 {
		t.Fatal("no vectors")
	}
	return f.Vectors
}

// TestVectors checks the codec against every vector of
// testdata/vectors.json, the same vectors ipc/PROTOCOL.md shows: encoding the
// values gives the bytes, and decoding the bytes gives the values.
func TestVectors(t *testing.T) {
	seen := map[Opcode]bool{}
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			want := v.bytes(t)
			var enc []byte
			switch v.Opcode {
			case "hello":
				enc = AppendHello(nil, v.RequestID, Hello{v.Hello.MinVersion, v.Hello.MaxVersion})
			case "hello_ok":
				h := v.HelloOK
				enc = AppendHelloOK(nil, v.RequestID, HelloOK{h.Version, h.MaxFrameBytes, h.MaxInFlight, h.MaxTokenBytes, h.MaxScopeBytes, h.IdleTimeoutMS})
			case "verify":
				enc = AppendVerify(nil, v.RequestID, v.Verify.Token, v.Verify.Scope)
			case "verify_result":
				enc = AppendVerifyResult(nil, v.RequestID, vectorResult(&v))
			case "ping":
				enc = AppendPing(nil, v.RequestID)
			case "pong":
				enc = AppendPong(nil, v.RequestID)
			case "error":
				enc = AppendError(nil, v.RequestID, ErrorCode(v.Error.Code), v.Error.Message)
			default:
				t.Fatalf("unknown opcode %q", v.Opcode)
			}
			if !bytes.Equal(enc, want) {
				t.Fatalf("encode:\n got %x\nwant %x", enc, want)
			}

			d := Decoder{Answers: !opcodeByName(t, v.Opcode).IsRequest()}
			for i := range len(want) {
				if f, n, err := d.Next(want[:i]); n != 0 || err != nil || f.Body != nil {
					t.Fatalf("prefix of %d bytes: n=%d err=%v, want need-more", i, n, err)
				}
			}
			f, n, err := d.Next(want)
			if err != nil || n != len(want) {
				t.Fatalf("decode: n=%d err=%v", n, err)
			}
			wantHeader := Header{Length: uint32(len(want)), Version: 1, Opcode: opcodeByName(t, v.Opcode), RequestID: v.RequestID}
			if f.Header != wantHeader {
				t.Fatalf("header %+v, want %+v", f.Header, wantHeader)
			}
			seen[f.Header.Opcode] = true
			switch f.Header.Opcode {
			case OpHello:
				h, err := DecodeHello(f.Body)
				if err != nil || h != (Hello{v.Hello.MinVersion, v.Hello.MaxVersion}) {
					t.Fatalf("hello %+v %v", h, err)
				}
			case OpHelloOK:
				h, err := DecodeHelloOK(f.Body)
				w := v.HelloOK
				if err != nil || h != (HelloOK{w.Version, w.MaxFrameBytes, w.MaxInFlight, w.MaxTokenBytes, w.MaxScopeBytes, w.IdleTimeoutMS}) {
					t.Fatalf("hello_ok %+v %v", h, err)
				}
			case OpVerify:
				r, err := DecodeVerify(f.Body)
				if err != nil || string(r.Token) != v.Verify.Token || string(r.Scope) != v.Verify.Scope {
					t.Fatalf("verify %q %q %v", r.Token, r.Scope, err)
				}
			case OpVerifyResult:
				view, err := DecodeVerifyResult(f.Body)
				if err != nil {
					t.Fatal(err)
				}
				got, wantR := view.Clone(), vectorResult(&v)
				if len(wantR.Roles) == 0 {
					wantR.Roles = nil
				}
				if !reflect.DeepEqual(&got, wantR) {
					t.Fatalf("verify_result\n got %+v\nwant %+v", got, *wantR)
				}
			case OpError:
				e, err := DecodeError(f.Body)
				if err != nil || e.Code != ErrorCode(v.Error.Code) || string(e.Message) != v.Error.Message {
					t.Fatalf("error %+v %v", e, err)
				}
			case OpPing, OpPong:
				if len(f.Body) != 0 {
					t.Fatalf("body %x", f.Body)
				}
			}
		})
	}
	for op := OpHello; op <= OpError; op++ {
		if !seen[op] {
			t.Errorf("no vector for %v", op)
		}
	}
}

func vectorResult(v *vector) *VerifyResult {
	r := v.VerifyResult
	return &VerifyResult{
		Status: Status(r.Status), CacheTTLMS: r.CacheTTLMS, ExpiresAtMS: r.ExpiresAtMS,
		Subject: r.Subject, Kind: r.Kind, KeyID: r.KeyID, Grant: r.Grant, Source: r.Source, Realm: r.Realm,
		Roles: r.Roles,
	}
}

func opcodeByName(t *testing.T, name string) Opcode {
	t.Helper()
	for op := OpHello; op <= OpError; op++ {
		if op.String() == name {
			return op
		}
	}
	t.Fatalf("no opcode %q", name)
	return 0
}

// TestRoundTrip encodes frames of every type back to back, decodes the
// stream and compares every value.
func TestRoundTrip(t *testing.T) {
	long := strings.Repeat("x", 8192)
	results := []VerifyResult{
		{},
		{Status: StatusOK, CacheTTLMS: math.MaxUint32, ExpiresAtMS: -1, Subject: "s", Kind: "jwt", KeyID: "jti-1", Grant: "a:b", Source: "idp", Realm: "r", Roles: []string{"", "a", long}},
		{Status: StatusInvalidClaims},
		{Status: 200, Roles: []string{"only"}},
		{Status: StatusForbidden, Subject: strings.Repeat("é", 1000), ExpiresAtMS: math.MinInt64},
	}
	type verifyReq struct{ token, scope string }
	verifies := []verifyReq{{"", ""}, {"t", ""}, {"", "s"}, {long, strings.Repeat("s", 1024)}, {"\x00\xff", "a:b:c"}}
	hellos := []Hello{{0, 0}, {1, 1}, {1, math.MaxUint16}}
	helloOKs := []HelloOK{{}, {1, 16384, 128, 8192, 1024, 300000}, {math.MaxUint16, math.MaxUint32, math.MaxUint32, math.MaxUint32, math.MaxUint32, math.MaxUint32}}
	errs := []Error{{CodeBadFrame, nil}, {CodeScopeTooLong, []byte("scope")}, {ErrorCode(math.MaxUint16), []byte(long)}}

	var req, ans []byte
	id := uint64(0)
	for _, h := range hellos {
		req = AppendHello(req, id, h)
		id++
	}
	for _, v := range verifies {
		req = AppendVerify(req, id, v.token, v.scope)
		id++
	}
	req = AppendPing(req, math.MaxUint64)
	for _, h := range helloOKs {
		ans = AppendHelloOK(ans, id, h)
		id++
	}
	for i := range results {
		ans = AppendVerifyResult(ans, id, &results[i])
		id++
	}
	for _, e := range errs {
		ans = AppendError(ans, id, e.Code, string(e.Message))
		id++
	}
	ans = AppendPong(ans, math.MaxUint64)

	next := func(d *Decoder, buf *[]byte) Frame {
		t.Helper()
		f, n, err := d.Next(*buf)
		if err != nil || n == 0 {
			t.Fatalf("n=%d err=%v", n, err)
		}
		*buf = (*buf)[n:]
		return f
	}
	d := &Decoder{}
	id = 0
	for _, want := range hellos {
		f := next(d, &req)
		got, err := DecodeHello(f.Body)
		if err != nil || got != want || f.Header.RequestID != id || f.Header.Opcode != OpHello {
			t.Fatalf("hello %+v %+v %v", f.Header, got, err)
		}
		id++
	}
	for _, want := range verifies {
		f := next(d, &req)
		got, err := DecodeVerify(f.Body)
		if err != nil || string(got.Token) != want.token || string(got.Scope) != want.scope || f.Header.RequestID != id {
			t.Fatalf("verify %+v %v", f.Header, err)
		}
		id++
	}
	if f := next(d, &req); f.Header.Opcode != OpPing || f.Header.RequestID != math.MaxUint64 {
		t.Fatalf("ping %+v", f.Header)
	}
	if len(req) != 0 {
		t.Fatalf("%d bytes left", len(req))
	}

	d = &Decoder{Answers: true}
	for _, want := range helloOKs {
		f := next(d, &ans)
		got, err := DecodeHelloOK(f.Body)
		if err != nil || got != want || f.Header.RequestID != id {
			t.Fatalf("hello_ok %+v %v", got, err)
		}
		id++
	}
	for i := range results {
		f := next(d, &ans)
		view, err := DecodeVerifyResult(f.Body)
		if err != nil || f.Header.RequestID != id {
			t.Fatalf("verify_result %+v %v", f.Header, err)
		}
		got := view.Clone()
		if !reflect.DeepEqual(got, results[i]) {
			t.Fatalf("verify_result %d\n got %+v\nwant %+v", i, got, results[i])
		}
		if view.Allowed() != (results[i].Status == StatusOK) || view.RoleCount != len(results[i].Roles) {
			t.Fatalf("Allowed/RoleCount of %d", i)
		}
		id++
	}
	for _, want := range errs {
		f := next(d, &ans)
		got, err := DecodeError(f.Body)
		if err != nil || got.Code != want.Code || !bytes.Equal(got.Message, want.Message) {
			t.Fatalf("error %+v %v", got, err)
		}
		id++
	}
	if f := next(d, &ans); f.Header.Opcode != OpPong {
		t.Fatalf("pong %+v", f.Header)
	}
	if len(ans) != 0 {
		t.Fatalf("%d bytes left", len(ans))
	}
}

// frame builds raw frame bytes from a header and a body, bypassing the
// encoders, so that tests can break any field.
func frame(length uint32, version, op byte, flags uint16, id uint64, body ...[]byte) []byte {
	b := le.AppendUint32(nil, length)
	b = append(b, version, op)
	b = le.AppendUint16(b, flags)
	b = le.AppendUint64(b, id)
	for _, p := range body {
		b = append(b, p...)
	}
	return b
}

// autoFrame is frame with the length computed from the body.
func autoFrame(op byte, body ...[]byte) []byte {
	n := HeaderSize
	for _, p := range body {
		n += len(p)
	}
	return frame(uint32(n), 1, op, 0, 1, body...)
}

func u16(v uint16) []byte { return le.AppendUint16(nil, v) }
func u32(v uint32) []byte { return le.AppendUint32(nil, v) }

// resultBody builds a VERIFY_RESULT body with the given lengths and tail.
func resultBody(reserved0 byte, roleCount uint16, lens [6]uint16, reserved1 uint32, tail ...[]byte) [][]byte {
	fixed := []byte{0, reserved0}
	fixed = le.AppendUint16(fixed, roleCount)
	fixed = le.AppendUint32(fixed, 0)
	fixed = le.AppendUint64(fixed, 0)
	for _, n := range lens {
		fixed = le.AppendUint16(fixed, n)
	}
	fixed = le.AppendUint32(fixed, reserved1)
	return append([][]byte{fixed}, tail...)
}

// TestDecoderErrors checks every validation of Decoder.Next: the code, that
// every shorter prefix that stops before the fault asks for more bytes, and
// that extra bytes after the fault change nothing.
func TestDecoderErrors(t *testing.T) {
	cases := []struct {
		name    string
		answers bool
		max     int
		in      []byte
		code    ErrorCode
		at      int // the fault is detectable once this many bytes are present
	}{
		{"zero length", false, 0, frame(0, 1, 5, 0, 1), CodeFrameTooSmall, 4},
		{"length below header", false, 0, frame(15, 1, 5, 0, 1), CodeFrameTooSmall, 4},
		{"length beyond default max", false, 0, frame(DefaultMaxFrameBytes+1, 1, 3, 0, 1), CodeFrameTooLarge, 4},
		{"length beyond configured max", false, 100, frame(101, 1, 3, 0, 1), CodeFrameTooLarge, 4},
		{"length beyond answer max", true, 0, frame(MaxAnswerBytes+1, 1, 4, 0, 1), CodeFrameTooLarge, 4},
		{"length 4 GiB", false, 0, frame(math.MaxUint32, 1, 3, 0, 1), CodeFrameTooLarge, 4},
		{"version 0", false, 0, frame(16, 0, 5, 0, 1), CodeUnsupportedVersion, 5},
		{"version 2", false, 0, frame(16, 2, 5, 0, 1), CodeUnsupportedVersion, 5},
		{"opcode 0", false, 0, frame(16, 1, 0, 0, 1), CodeUnknownOpcode, 6},
		{"opcode 8", false, 0, frame(16, 1, 8, 0, 1), CodeUnknownOpcode, 6},
		{"opcode 255", true, 0, frame(16, 1, 255, 0, 1), CodeUnknownOpcode, 6},
		{"answer opcode from a client", false, 0, AppendPong(nil, 1), CodeUnknownOpcode, 6},
		{"verify_result from a client", false, 0, AppendVerifyResult(nil, 1, &VerifyResult{}), CodeUnknownOpcode, 6},
		{"request opcode from a server", true, 0, AppendPing(nil, 1), CodeUnknownOpcode, 6},
		{"flags", false, 0, frame(16, 1, 5, 1, 1), CodeBadFrame, 8},
		{"flags high bit", false, 0, frame(16, 1, 5, 0x8000, 1), CodeBadFrame, 8},
		{"ping with a body", false, 0, frame(17, 1, 5, 0, 1, []byte{0}), CodeBadFrame, 8},
		{"pong with a body", true, 0, frame(20, 1, 6, 0, 1, u32(0)), CodeBadFrame, 8},
		{"hello short", false, 0, frame(23, 1, 1, 0, 1, make([]byte, 7)), CodeBadFrame, 8},
		{"hello long", false, 0, frame(25, 1, 1, 0, 1, make([]byte, 9)), CodeBadFrame, 8},
		{"hello reserved", false, 0, autoFrame(1, u16(1), u16(1), u32(1)), CodeBadFrame, 24},
		{"hello_ok short", true, 0, frame(39, 1, 2, 0, 1, make([]byte, 23)), CodeBadFrame, 8},
		{"hello_ok reserved", true, 0, autoFrame(2, u16(1), u16(1), make([]byte, 20)), CodeBadFrame, 40},
		{"verify shorter than fixed part", false, 0, frame(23, 1, 3, 0, 1, make([]byte, 7)), CodeBadFrame, 8},
		{"verify lengths beyond body", false, 0, autoFrame(3, u32(5), u32(0), []byte("abcd")), CodeBadFrame, 28},
		{"verify lengths short of body", false, 0, autoFrame(3, u32(3), u32(0), []byte("abcd")), CodeBadFrame, 28},
		{"verify scope beyond body", false, 0, autoFrame(3, u32(1), u32(4), []byte("abcd")), CodeBadFrame, 28},
		{"verify lengths overflow", false, 0, autoFrame(3, u32(math.MaxUint32), u32(2), []byte("a")), CodeBadFrame, 25},
		{"verify_result shorter than fixed part", true, 0, frame(47, 1, 4, 0, 1, make([]byte, 31)), CodeBadFrame, 8},
		{"verify_result reserved0", true, 0, autoFrame(4, resultBody(1, 0, [6]uint16{}, 0)...), CodeBadFrame, 48},
		{"verify_result reserved1", true, 0, autoFrame(4, resultBody(0, 0, [6]uint16{}, 1)...), CodeBadFrame, 48},
		{"verify_result string beyond body", true, 0, autoFrame(4, resultBody(0, 0, [6]uint16{0, 0, 0, 0, 0, 2}, 0, []byte("a"))...), CodeBadFrame, 49},
		{"verify_result bytes after strings", true, 0, autoFrame(4, resultBody(0, 0, [6]uint16{1}, 0, []byte("ab"))...), CodeBadFrame, 50},
		{"verify_result role count beyond body", true, 0, autoFrame(4, resultBody(0, 2, [6]uint16{}, 0, u16(1), []byte("a"))...), CodeBadFrame, 51},
		{"verify_result role length beyond body", true, 0, autoFrame(4, resultBody(0, 1, [6]uint16{}, 0, u16(3), []byte("ab"))...), CodeBadFrame, 52},
		{"verify_result half a role length", true, 0, autoFrame(4, resultBody(0, 1, [6]uint16{}, 0, []byte{1})...), CodeBadFrame, 49},
		{"verify_result bytes after roles", true, 0, autoFrame(4, resultBody(0, 1, [6]uint16{}, 0, u16(1), []byte("ab"))...), CodeBadFrame, 52},
		{"error shorter than fixed part", true, 0, frame(23, 1, 7, 0, 1, make([]byte, 7)), CodeBadFrame, 8},
		{"error reserved", true, 0, autoFrame(7, u16(1), u16(0), u32(1)), CodeBadFrame, 24},
		{"error message beyond body", true, 0, autoFrame(7, u16(1), u16(2), u32(0), []byte("a")), CodeBadFrame, 25},
		{"error message short of body", true, 0, autoFrame(7, u16(1), u16(0), u32(0), []byte("a")), CodeBadFrame, 25},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := Decoder{MaxFrameBytes: tc.max, Answers: tc.answers}
			for i := range tc.at {
				if _, n, err := d.Next(tc.in[:i]); n != 0 || err != nil {
					t.Fatalf("prefix %d: n=%d err=%v, want need-more", i, n, err)
				}
			}
			for _, in := range [][]byte{tc.in[:tc.at], tc.in, append(append([]byte{}, tc.in...), AppendPing(nil, 2)...)} {
				f, n, err := d.Next(in)
				var fe *FrameError
				if !errors.As(err, &fe) || fe.Code != tc.code || n != 0 || f.Body != nil {
					t.Fatalf("%d bytes: n=%d err=%v, want code %v", len(in), n, err, tc.code)
				}
				if !strings.HasPrefix(err.Error(), "ipc: "+tc.code.String()+": ") {
					t.Fatalf("message %q", err.Error())
				}
			}
		})
	}
}

// TestDecodeBodyErrors checks that the body decoders refuse what Decoder.Next
// refuses when they are called on their own.
func TestDecodeBodyErrors(t *testing.T) {
	cases := []struct {
		name string
		fn   func([]byte) error
		body []byte
	}{
		{"hello short", func(b []byte) error { _, err := DecodeHello(b); return err }, make([]byte, 7)},
		{"hello reserved", func(b []byte) error { _, err := DecodeHello(b); return err }, []byte{1, 0, 1, 0, 0, 0, 0, 1}},
		{"hello_ok long", func(b []byte) error { _, err := DecodeHelloOK(b); return err }, make([]byte, 25)},
		{"hello_ok reserved", func(b []byte) error { _, err := DecodeHelloOK(b); return err }, append([]byte{1, 0, 0, 1}, make([]byte, 20)...)},
		{"verify nil", func(b []byte) error { _, err := DecodeVerify(b); return err }, nil},
		{"verify lengths", func(b []byte) error { _, err := DecodeVerify(b); return err }, append(u32(1), u32(0)...)},
		{"verify_result short", func(b []byte) error { _, err := DecodeVerifyResult(b); return err }, make([]byte, 31)},
		{"verify_result tail", func(b []byte) error { _, err := DecodeVerifyResult(b); return err }, make([]byte, 33)},
		{"error short", func(b []byte) error { _, err := DecodeError(b); return err }, make([]byte, 7)},
		{"error tail", func(b []byte) error { _, err := DecodeError(b); return err }, make([]byte, 9)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var fe *FrameError
			if err := tc.fn(tc.body); !errors.As(err, &fe) || fe.Code != CodeBadFrame {
				t.Fatalf("err=%v, want bad_frame", err)
			}
		})
	}
}

func TestDecoderLimit(t *testing.T) {
	cases := []struct {
		d    Decoder
		want uint32
	}{
		{Decoder{}, DefaultMaxFrameBytes},
		{Decoder{Answers: true}, MaxAnswerBytes},
		{Decoder{MaxFrameBytes: 1}, MinFrameLimit},
		{Decoder{MaxFrameBytes: -5}, MinFrameLimit},
		{Decoder{MaxFrameBytes: 1 << 20}, 1 << 20},
		{Decoder{MaxFrameBytes: math.MaxInt}, math.MaxUint32},
	}
	for _, tc := range cases {
		if got := tc.d.limit(); got != tc.want {
			t.Errorf("%+v: limit %d, want %d", tc.d, got, tc.want)
		}
	}
	// A HELLO_OK fits under the smallest limit.
	d := Decoder{MaxFrameBytes: 1, Answers: true}
	if _, n, err := d.Next(AppendHelloOK(nil, 1, HelloOK{})); n != HeaderSize+HelloOKSize || err != nil {
		t.Fatalf("n=%d err=%v", n, err)
	}
}

func TestVerifyResultLen(t *testing.T) {
	big := strings.Repeat("x", math.MaxUint16)
	cases := []struct {
		name string
		r    VerifyResult
		want int
	}{
		{"empty", VerifyResult{}, 48},
		{"strings", VerifyResult{Subject: "ab", Realm: "c", Roles: []string{"", "xyz"}}, 48 + 3 + 2 + 5},
		{"string at limit", VerifyResult{Grant: big}, 48 + math.MaxUint16},
		{"string beyond limit", VerifyResult{Source: big + "x"}, -1},
		{"role beyond limit", VerifyResult{Roles: []string{big + "x"}}, -1},
		{"too many roles", VerifyResult{Roles: make([]string, math.MaxUint16+1)}, -1},
		{"most roles", VerifyResult{Roles: make([]string, math.MaxUint16)}, 48 + 2*math.MaxUint16},
	}
	for _, tc := range cases {
		if got := tc.r.Len(); got != tc.want {
			t.Errorf("%s: Len %d, want %d", tc.name, got, tc.want)
		}
		if tc.want > 0 {
			if b := AppendVerifyResult(nil, 1, &tc.r); len(b) != tc.want {
				t.Errorf("%s: encoded %d bytes, want %d", tc.name, len(b), tc.want)
			}
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("AppendVerifyResult did not panic on an unencodable result")
		}
	}()
	AppendVerifyResult(nil, 1, &VerifyResult{Kind: big + "x"})
}

func TestAppendErrorCutsLongMessage(t *testing.T) {
	msg := strings.Repeat("a", math.MaxUint16-1) + "é" // the 2-byte rune straddles the limit
	b := AppendError(nil, 1, CodeBadFrame, msg)
	f, _, err := (&Decoder{Answers: true, MaxFrameBytes: 1 << 20}).Next(b)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := DecodeError(f.Body)
	if len(e.Message) != math.MaxUint16-1 || !utf8.Valid(e.Message) {
		t.Fatalf("message of %d bytes, valid %v", len(e.Message), utf8.Valid(e.Message))
	}
}

func TestAppendReusesRoom(t *testing.T) {
	buf := make([]byte, 3, 4096)
	copy(buf, "abc")
	out := AppendVerify(buf, 1, "tok", "scope")
	if &out[0] != &buf[0] || string(out[:3]) != "abc" {
		t.Fatal("AppendVerify did not append in place")
	}
}

// TestNames checks the names and numbers against package verify and the
// opcode predicates.
func TestNames(t *testing.T) {
	for _, r := range verify.Reasons() {
		if Status(r).String() != r.String() {
			t.Errorf("status %d is %q here, %q in verify", r, Status(r).String(), r.String())
		}
	}
	if n := len(verify.Reasons()); n != len(statusNames) {
		t.Errorf("verify has %d reasons, the status table %d", n, len(statusNames))
	}
	if Status(200).String() != "invalid" || Opcode(9).String() != "invalid" || ErrorCode(11).String() != "invalid" || ErrorCode(0).String() != "invalid" {
		t.Error("out-of-table names")
	}
	for op := Opcode(0); op < 10; op++ {
		known := op >= OpHello && op <= OpError
		if op.IsRequest() && op.IsAnswer() || known != (op.IsRequest() || op.IsAnswer()) {
			t.Errorf("opcode %d: request %v answer %v", op, op.IsRequest(), op.IsAnswer())
		}
		if known && op.IsRequest() != (op == OpHello || op == OpVerify || op == OpPing) {
			t.Errorf("opcode %d: IsRequest %v", op, op.IsRequest())
		}
	}
	for c := ErrorCode(0); c < 12; c++ {
		want := !(c == CodeShuttingDown || c == CodeTokenTooLong || c == CodeScopeTooLong)
		if c.StreamLevel() != want {
			t.Errorf("%v: StreamLevel %v", c, c.StreamLevel())
		}
	}
}

// TestProtocolVectors checks that ipc/PROTOCOL.md shows every vector of
// testdata/vectors.json, byte for byte.
func TestProtocolVectors(t *testing.T) {
	doc, err := os.ReadFile("PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	// The hex of each code block, whitespace removed.
	var blocks []string
	parts := strings.Split(string(doc), "```")
	for i := 1; i < len(parts); i += 2 {
		blocks = append(blocks, strings.Join(strings.Fields(parts[i]), ""))
	}
	for _, v := range loadVectors(t) {
		want := strings.Join(strings.Fields(v.Hex), "")
		if !slices.Contains(blocks, want) {
			t.Errorf("PROTOCOL.md does not show vector %s (%s)", v.Name, want)
		}
	}
}
