//go:build !race

package ipc

import "testing"

// TestCodecAllocations checks that encoding into a buffer with room and
// decoding every frame type allocate nothing.
func TestCodecAllocations(t *testing.T) {
	res := &VerifyResult{Status: StatusOK, CacheTTLMS: 5000, ExpiresAtMS: 1, Subject: "alice", Kind: "api_key", KeyID: "k1", Grant: "orders:*", Roles: []string{"publisher", "consumer"}}
	buf := make([]byte, 0, 4096)
	var reqs, answers []byte
	reqs = AppendHello(reqs, 1, Hello{1, 1})
	reqs = AppendVerify(reqs, 2, "tok-123", "orders:publish")
	reqs = AppendPing(reqs, 3)
	answers = AppendHelloOK(answers, 1, HelloOK{Version: 1})
	answers = AppendVerifyResult(answers, 2, res)
	answers = AppendPong(answers, 3)
	answers = AppendError(answers, 4, CodeTokenTooLong, "token")

	if n := testing.AllocsPerRun(100, func() {
		b := buf[:0]
		b = AppendHello(b, 1, Hello{1, 1})
		b = AppendHelloOK(b, 1, HelloOK{Version: 1})
		b = AppendVerify(b, 2, "tok-123", "orders:publish")
		b = AppendVerifyResult(b, 2, res)
		b = AppendPing(b, 3)
		b = AppendPong(b, 3)
		_ = AppendError(b, 4, CodeTokenTooLong, "token")
	}); n != 0 {
		t.Errorf("encoding: %v allocations, want 0", n)
	}

	roles := 0
	if n := testing.AllocsPerRun(100, func() {
		for _, dec := range [...]struct {
			d   Decoder
			buf []byte
		}{{Decoder{}, reqs}, {Decoder{Answers: true}, answers}} {
			b := dec.buf
			for len(b) > 0 {
				f, n, err := dec.d.Next(b)
				if err != nil || n == 0 {
					panic("decode")
				}
				b = b[n:]
				switch f.Header.Opcode {
				case OpHello:
					_, err = DecodeHello(f.Body)
				case OpHelloOK:
					_, err = DecodeHelloOK(f.Body)
				case OpVerify:
					_, err = DecodeVerify(f.Body)
				case OpVerifyResult:
					var v VerifyResultView
					v, err = DecodeVerifyResult(f.Body)
					for r := range v.Roles() {
						roles += len(r)
					}
				case OpError:
					_, err = DecodeError(f.Body)
				}
				if err != nil {
					panic(err)
				}
			}
		}
	}); n != 0 {
		t.Errorf("decoding: %v allocations, want 0", n)
	}
	if roles == 0 {
		t.Fatal("no roles seen")
	}
}
