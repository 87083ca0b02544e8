package fuzz

import (
	"bytes"
	"errors"
	"testing"

	"github.com/verifyd/verifyd/ipc"
)

// fuzzMaxFrame is the Decoder limit of the frame fuzzers: above the
// defaults, so that long frames are explored too.
const fuzzMaxFrame = 1 << 20

// frameSeeds returns streams of requests and of answers that seed the
// frame fuzzers, beside the vectors and abuse cases of
// testdata/fuzz/FuzzFrame*.
func frameSeeds() (requests, answers [][]byte) {
	var all []byte
	all = ipc.AppendHello(all, 1, ipc.Hello{MinVersion: 1, MaxVersion: 1})
	all = ipc.AppendVerify(all, 2, "tok-123", "orders:publish")
	all = ipc.AppendVerify(all, 3, "tok-123", "")
	all = ipc.AppendPing(all, 4)
	requests = [][]byte{all, all[:len(all)-1], ipc.AppendVerify(nil, 1<<63, "", "s")}

	res := &ipc.VerifyResult{Status: ipc.StatusOK, CacheTTLMS: 5000, ExpiresAtMS: 1767225600000,
		Subject: "alice", Kind: "jwt", KeyID: "k1", Grant: "orders:*", Source: "idp", Realm: "r", Roles: []string{"publisher", "", "consumer"}}
	all = nil
	all = ipc.AppendHelloOK(all, 1, ipc.HelloOK{Version: 1, MaxFrameBytes: 16384, MaxInFlight: 128, MaxTokenBytes: 8192, MaxScopeBytes: 1024, IdleTimeoutMS: 300000})
	all = ipc.AppendVerifyResult(all, 2, res)
	all = ipc.AppendVerifyResult(all, 3, &ipc.VerifyResult{Status: ipc.StatusRevoked})
	all = ipc.AppendPong(all, 4)
	all = ipc.AppendError(all, 0, ipc.CodeBadFrame, "bad")
	answers = [][]byte{all, all[:len(all)-3]}
	return requests, answers
}

// reencode encodes a decoded frame again from its values alone.
func reencode(t *testing.T, f ipc.Frame) []byte {
	t.Helper()
	id := f.Header.RequestID
	var (
		out []byte
		err error
	)
	switch f.Header.Opcode {
	case ipc.OpHello:
		var h ipc.Hello
		h, err = ipc.DecodeHello(f.Body)
		out = ipc.AppendHello(nil, id, h)
	case ipc.OpHelloOK:
		var h ipc.HelloOK
		h, err = ipc.DecodeHelloOK(f.Body)
		out = ipc.AppendHelloOK(nil, id, h)
	case ipc.OpVerify:
		var r ipc.VerifyRequest
		r, err = ipc.DecodeVerify(f.Body)
		out = ipc.AppendVerify(nil, id, string(r.Token), string(r.Scope))
	case ipc.OpVerifyResult:
		var v ipc.VerifyResultView
		v, err = ipc.DecodeVerifyResult(f.Body)
		if err == nil {
			n := 0
			for range v.Roles() {
				n++
			}
			if n != v.RoleCount {
				t.Fatalf("Roles yielded %d roles, RoleCount is %d", n, v.RoleCount)
			}
			r := v.Clone()
			out = ipc.AppendVerifyResult(nil, id, &r)
		}
	case ipc.OpPing:
		out = ipc.AppendPing(nil, id)
	case ipc.OpPong:
		out = ipc.AppendPong(nil, id)
	case ipc.OpError:
		var e ipc.Error
		e, err = ipc.DecodeError(f.Body)
		out = ipc.AppendError(nil, id, e.Code, string(e.Message))
	default:
		t.Fatalf("the decoder returned opcode %v", f.Header.Opcode)
	}
	if err != nil {
		t.Fatalf("the decoder accepted a %v frame its body decoder refuses: %v", f.Header.Opcode, err)
	}
	return out
}

// checkRefusal checks a Decoder refusal: a *FrameError with a stream-level
// code the decoder may produce, and no partial frame.
func checkRefusal(t *testing.T, f ipc.Frame, n int, err error) *ipc.FrameError {
	t.Helper()
	var fe *ipc.FrameError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v is not a *FrameError", err)
	}
	switch fe.Code {
	case ipc.CodeBadFrame, ipc.CodeFrameTooLarge, ipc.CodeFrameTooSmall, ipc.CodeUnsupportedVersion, ipc.CodeUnknownOpcode:
	default:
		t.Fatalf("the decoder refused with code %v", fe.Code)
	}
	if n != 0 || f.Body != nil || f.Header != (ipc.Header{}) {
		t.Fatalf("a refusal returned a partial frame: n=%d %+v", n, f)
	}
	return fe
}

// FuzzFrameDecode checks that Decoder.Next never panics, that a refusal is
// a *FrameError with no partial frame, and that the codec accepts only
// canonical frames: every frame it accepts, encoded again from its decoded
// values, gives exactly the same bytes.
func FuzzFrameDecode(f *testing.F) {
	requests, answers := frameSeeds()
	for _, s := range requests {
		f.Add(s, false)
	}
	for _, s := range answers {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, answers bool) {
		d := ipc.Decoder{MaxFrameBytes: fuzzMaxFrame, Answers: answers}
		b := data
		for len(b) > 0 {
			fr, n, err := d.Next(b)
			if err != nil {
				checkRefusal(t, fr, n, err)
				return
			}
			if n == 0 {
				return
			}
			if n < ipc.HeaderSize || n > len(b) || int(fr.Header.Length) != n {
				t.Fatalf("n=%d with %d bytes, header length %d", n, len(b), fr.Header.Length)
			}
			if fr.Header.Opcode.IsRequest() == answers {
				t.Fatalf("a decoder of answers=%v accepted %v", answers, fr.Header.Opcode)
			}
			if enc := reencode(t, fr); !bytes.Equal(enc, b[:n]) {
				t.Fatalf("%v frame is not canonical:\n  in %x\n out %x", fr.Header.Opcode, b[:n], enc)
			}
			b = b[n:]
		}
	})
}

// decoded is what a stream decoded to: the frames, and how it ended.
type decoded struct {
	frames [][]byte      // each accepted frame's bytes
	ids    []uint64      // and request id
	code   ipc.ErrorCode // the refusal, or 0
	left   int           // bytes of an incomplete frame at the end, when not refused
}

// decodeWhole decodes data in one piece.
func decodeWhole(t *testing.T, d ipc.Decoder, data []byte) decoded {
	var out decoded
	b := data
	for {
		fr, n, err := d.Next(b)
		if err != nil {
			out.code = checkRefusal(t, fr, n, err).Code
			return out
		}
		if n == 0 {
			out.left = len(b)
			return out
		}
		out.frames = append(out.frames, b[:n])
		out.ids = append(out.ids, fr.Header.RequestID)
		b = b[n:]
	}
}

// decodeChunked feeds data to d the way a connection does: in reads of
// the sizes cuts gives (each byte c a read of c+1 bytes, cycled; no cuts:
// one read), appending to a buffer and decoding every complete frame after
// each read.
func decodeChunked(t *testing.T, d ipc.Decoder, data, cuts []byte) decoded {
	var out decoded
	var buf []byte
	for i := 0; ; i++ {
		size := len(data)
		if len(cuts) > 0 {
			size = min(int(cuts[i%len(cuts)])+1, len(data))
		}
		buf = append(buf, data[:size]...)
		data = data[size:]
		for {
			fr, n, err := d.Next(buf)
			if err != nil {
				out.code = checkRefusal(t, fr, n, err).Code
				return out
			}
			if n == 0 {
				break
			}
			out.frames = append(out.frames, bytes.Clone(buf[:n]))
			out.ids = append(out.ids, fr.Header.RequestID)
			buf = buf[n:]
		}
		if len(data) == 0 {
			out.left = len(buf)
			return out
		}
	}
}

// FuzzFrameChunked checks that a stream decodes the same whatever reads it
// arrives in: the same input, split at points the fuzzer chooses and fed
// chunk by chunk the way a connection reads, yields the same frames, and
// the same refusal or the same incomplete tail, as fed whole.
func FuzzFrameChunked(f *testing.F) {
	requests, answers := frameSeeds()
	for _, s := range requests {
		f.Add(s, false, []byte{0})
		f.Add(s, false, []byte{4, 0, 16, 2})
	}
	for _, s := range answers {
		f.Add(s, true, []byte{7, 2})
	}
	f.Fuzz(func(t *testing.T, data []byte, answers bool, cuts []byte) {
		d := ipc.Decoder{MaxFrameBytes: fuzzMaxFrame, Answers: answers}
		whole := decodeWhole(t, d, data)
		chunked := decodeChunked(t, d, data, cuts)
		if whole.code != chunked.code || whole.left != chunked.left || len(whole.frames) != len(chunked.frames) {
			t.Fatalf("whole: %d frames, code %v, %d bytes left; chunked: %d frames, code %v, %d bytes left",
				len(whole.frames), whole.code, whole.left, len(chunked.frames), chunked.code, chunked.left)
		}
		for i := range whole.frames {
			if !bytes.Equal(whole.frames[i], chunked.frames[i]) || whole.ids[i] != chunked.ids[i] {
				t.Fatalf("frame %d differs:\n whole %x\n chunked %x", i, whole.frames[i], chunked.frames[i])
			}
		}
	})
}
