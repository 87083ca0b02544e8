package ipc

import (
	"encoding/binary"
	"iter"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// ProtocolVersion is the version of the socket protocol this package speaks
// (VERIFYD_PROTOCOL_VERSION).
const ProtocolVersion = 1

// Sizes of the fixed-layout structs of verifyd.h, in bytes. The variable
// parts that follow some of them (token, scope, strings, roles, message) are
// not counted.
const (
	HeaderSize       = 16 // sizeof(struct verifyd_header)
	HelloSize        = 8  // sizeof(struct verifyd_hello)
	HelloOKSize      = 24 // sizeof(struct verifyd_hello_ok)
	VerifySize       = 8  // sizeof(struct verifyd_verify)
	VerifyResultSize = 32 // sizeof(struct verifyd_verify_result)
	ErrorSize        = 8  // sizeof(struct verifyd_error)
)

// Limits of version 1.
const (
	// DefaultMaxFrameBytes is the default longest frame a server accepts:
	// room for a token of DefaultMaxTokenBytes, a scope of
	// DefaultMaxScopeBytes and the headers, rounded up.
	DefaultMaxFrameBytes = 16 << 10
	// DefaultMaxTokenBytes is the default longest token.
	DefaultMaxTokenBytes = 8192
	// DefaultMaxScopeBytes is the default longest scope.
	DefaultMaxScopeBytes = 1024
	// DefaultMaxInFlight is the default number of requests a client may have
	// unanswered on one connection.
	DefaultMaxInFlight = 128
	// MaxAnswerBytes is the longest frame a version 1 server sends. A
	// Decoder of answers uses it as its default limit.
	MaxAnswerBytes = 64 << 10
	// MinFrameLimit is the smallest frame limit a Decoder accepts: the
	// longest fixed-size frame (HELLO_OK).
	MinFrameLimit = HeaderSize + HelloOKSize
)

// Field offsets of the structs of verifyd.h, relative to the start of their
// struct. The C layout test compares them with offsetof.
const (
	offHeaderLength    = 0
	offHeaderVersion   = 4
	offHeaderOpcode    = 5
	offHeaderFlags     = 6
	offHeaderRequestID = 8

	offHelloMinVersion = 0
	offHelloMaxVersion = 2
	offHelloReserved   = 4

	offHelloOKVersion       = 0
	offHelloOKReserved      = 2
	offHelloOKMaxFrameBytes = 4
	offHelloOKMaxInFlight   = 8
	offHelloOKMaxTokenBytes = 12
	offHelloOKMaxScopeBytes = 16
	offHelloOKIdleTimeoutMS = 20

	offVerifyTokenLen = 0
	offVerifyScopeLen = 4

	offResultStatus      = 0
	offResultReserved0   = 1
	offResultRoleCount   = 2
	offResultCacheTTLMS  = 4
	offResultExpiresAtMS = 8
	offResultSubjectLen  = 16
	offResultKindLen     = 18
	offResultKeyIDLen    = 20
	offResultGrantLen    = 22
	offResultSourceLen   = 24
	offResultRealmLen    = 26
	offResultReserved1   = 28

	offErrorCode       = 0
	offErrorMessageLen = 2
	offErrorReserved   = 4
)

var le = binary.LittleEndian

// Opcode is the kind of a frame (enum verifyd_opcode).
type Opcode uint8

// The opcodes of version 1. HELLO, VERIFY and PING are requests, sent by
// clients; the others are answers, sent by servers.
const (
	OpHello        Opcode = 1 // request: version negotiation
	OpHelloOK      Opcode = 2 // answer to HELLO: the version and the server's limits
	OpVerify       Opcode = 3 // request: a token and a scope
	OpVerifyResult Opcode = 4 // answer to VERIFY
	OpPing         Opcode = 5 // request: liveness
	OpPong         Opcode = 6 // answer to PING
	OpError        Opcode = 7 // answer: the request, or the stream, was refused
)

var opNames = [...]string{"invalid", "hello", "hello_ok", "verify", "verify_result", "ping", "pong", "error"}

// String returns the opcode's lower-case name, e.g. "verify_result", or
// "invalid" for a value that is not an opcode.
func (o Opcode) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return "invalid"
}

// IsRequest reports whether o is a request opcode (HELLO, VERIFY, PING).
func (o Opcode) IsRequest() bool { return o == OpHello || o == OpVerify || o == OpPing }

// IsAnswer reports whether o is an answer opcode (HELLO_OK, VERIFY_RESULT,
// PONG, ERROR).
func (o Opcode) IsAnswer() bool {
	return o == OpHelloOK || o == OpVerifyResult || o == OpPong || o == OpError
}

// Status is the outcome carried by VERIFY_RESULT (enum verifyd_status). Its
// values are verify's reason codes ([github.com/verifyd/verifyd/verify.Reason])
// and are stable. A receiver treats any status other than StatusOK, including
// values it does not know, as a refusal.
type Status uint8

// The statuses of version 1.
const (
	StatusOK            Status = 0  // the credential is valid and, if a scope was asked, grants it
	StatusMalformed     Status = 1  // the token cannot be a credential of any known kind
	StatusUnknown       Status = 2  // well-formed, but no credential has this secret
	StatusExpired       Status = 3  // the credential's validity has ended
	StatusRevoked       Status = 4  // the credential was revoked
	StatusForbidden     Status = 5  // the credential is valid but does not grant the scope
	StatusUnavailable   Status = 6  // the server could not decide; the caller may retry
	StatusInvalidScope  Status = 7  // the requested scope is not a valid scope
	StatusBadSignature  Status = 8  // a JWT whose signature does not verify
	StatusNotYetValid   Status = 9  // a JWT whose nbf or iat lies in the future
	StatusUntrustedKey  Status = 10 // a JWT no trusted key may verify
	StatusInvalidClaims Status = 11 // a JWT whose claims are not accepted
	StatusRateLimited   Status = 12 // the peer or the credential is throttled; retry later
)

var statusNames = [...]string{
	"ok", "malformed", "unknown", "expired", "revoked", "forbidden",
	"unavailable", "invalid_scope", "bad_signature", "not_yet_valid",
	"untrusted_key", "invalid_claims", "rate_limited",
}

// String returns the status's lower-case name, the same as verify's reason
// name, e.g. "revoked", or "invalid" for a value outside the table.
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "invalid"
}

// ErrorCode is the stable numeric code of an ERROR frame (enum
// verifyd_error_code).
type ErrorCode uint16

// The error codes of version 1. The stream-level codes (all but
// CodeShuttingDown, CodeTokenTooLong and CodeScopeTooLong) are sent with
// request id 0, and the server closes the connection after sending them.
const (
	CodeBadFrame           ErrorCode = 1  // stream: the frame's lengths are inconsistent, or reserved bits are set
	CodeFrameTooLarge      ErrorCode = 2  // stream: length is beyond max_frame_bytes
	CodeFrameTooSmall      ErrorCode = 3  // stream: length is below the header size (zero included)
	CodeUnsupportedVersion ErrorCode = 4  // stream: a version the server does not speak
	CodeUnknownOpcode      ErrorCode = 5  // stream: an unknown opcode, or an answer opcode sent by a client
	CodeTooManyInFlight    ErrorCode = 6  // stream: more than max_in_flight requests unanswered
	CodeTruncated          ErrorCode = 7  // stream: the connection ended, or stalled past the read deadline, inside a frame
	CodeShuttingDown       ErrorCode = 8  // request: the server is draining; the connection closes next
	CodeTokenTooLong       ErrorCode = 9  // request: token_len is beyond max_token_bytes
	CodeScopeTooLong       ErrorCode = 10 // request: scope_len is beyond max_scope_bytes
)

var codeNames = [...]string{
	"invalid", "bad_frame", "frame_too_large", "frame_too_small",
	"unsupported_version", "unknown_opcode", "too_many_in_flight",
	"truncated", "shutting_down", "token_too_long", "scope_too_long",
}

// String returns the code's lower-case name, e.g. "frame_too_large", or
// "invalid" for a value outside the table.
func (c ErrorCode) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return "invalid"
}

// StreamLevel reports whether c refuses the whole stream rather than one
// request: such an ERROR frame carries request id 0, every request still
// unanswered on the connection is lost, and the server closes the
// connection after sending it. Codes a receiver does not know are
// stream-level.
func (c ErrorCode) StreamLevel() bool {
	return c != CodeShuttingDown && c != CodeTokenTooLong && c != CodeScopeTooLong
}

// Header is the header every frame starts with (struct verifyd_header).
type Header struct {
	Length    uint32 // the whole frame, header included
	Version   uint8  // ProtocolVersion
	Opcode    Opcode
	Flags     uint16 // 0 in version 1
	RequestID uint64 // chosen by the client, echoed in the answer
}

// Frame is one complete frame found by a Decoder. Body is a sub-slice of the
// Decoder's input: it is valid only as long as the caller keeps those bytes
// unchanged.
type Frame struct {
	Header Header
	Body   []byte // the bytes after the header; empty for PING and PONG
}

// Hello is the body of a HELLO frame (struct verifyd_hello).
type Hello struct {
	MinVersion uint16 // the oldest version the client speaks
	MaxVersion uint16 // the newest
}

// HelloOK is the body of a HELLO_OK frame (struct verifyd_hello_ok): the
// version chosen for the connection and the server's limits.
type HelloOK struct {
	Version       uint16 // the version this connection uses
	MaxFrameBytes uint32 // the longest frame the server accepts
	MaxInFlight   uint32 // requests a client may have unanswered on one connection
	MaxTokenBytes uint32 // the longest token
	MaxScopeBytes uint32 // the longest scope
	IdleTimeoutMS uint32 // a connection idle this long is closed
}

// VerifyRequest is the decoded body of a VERIFY frame (struct verifyd_verify
// and the bytes after it). Token and Scope are sub-slices of the body.
type VerifyRequest struct {
	Token []byte
	Scope []byte // empty: authenticate only
}

// VerifyResult is what AppendVerifyResult encodes as the body of a
// VERIFY_RESULT frame (struct verifyd_verify_result and the strings and
// roles after it). The strings are empty unless the credential was found
// valid (StatusOK or StatusForbidden).
type VerifyResult struct {
	Status      Status
	CacheTTLMS  uint32 // how long the caller may reuse this answer; 0: not at all
	ExpiresAtMS int64  // Unix milliseconds when the credential stops working; 0: never
	Subject     string
	Kind        string
	KeyID       string
	Grant       string // the pattern that granted the scope
	Source      string // the trust source of a JWT
	Realm       string // the realm a JWT names
	Roles       []string
}

// Len returns the length of the VERIFY_RESULT frame that encodes r, header
// included, or -1 when r cannot be encoded: a string or a role is longer
// than 65535 bytes, there are more than 65535 roles, or the frame would be
// longer than 2³²-1 bytes. A server must also keep answers within
// MaxAnswerBytes.
func (r *VerifyResult) Len() int {
	n := HeaderSize + VerifyResultSize
	for _, s := range [...]string{r.Subject, r.Kind, r.KeyID, r.Grant, r.Source, r.Realm} {
		if len(s) > math.MaxUint16 {
			return -1
		}
		n += len(s)
	}
	if len(r.Roles) > math.MaxUint16 {
		return -1
	}
	for _, role := range r.Roles {
		if len(role) > math.MaxUint16 {
			return -1
		}
		n += 2 + len(role)
	}
	if uint64(n) > math.MaxUint32 {
		return -1
	}
	return n
}

// VerifyResultView is the decoded body of a VERIFY_RESULT frame. Its byte
// slices are sub-slices of the body: copy what must outlive the buffer
// (Clone does).
type VerifyResultView struct {
	Status      Status
	CacheTTLMS  uint32
	ExpiresAtMS int64
	Subject     []byte
	Kind        []byte
	KeyID       []byte
	Grant       []byte
	Source      []byte
	Realm       []byte
	RoleCount   int
	roles       []byte // RoleCount entries, each a uint16 length and the bytes
}

// Allowed reports whether the result allows the request (StatusOK).
func (v *VerifyResultView) Allowed() bool { return v.Status == StatusOK }

// Roles returns an iterator over the roles, in order, as sub-slices of the
// body. It allocates nothing.
func (v *VerifyResultView) Roles() iter.Seq[[]byte] {
	roles := v.roles
	return func(yield func([]byte) bool) {
		b := roles
		for len(b) >= 2 {
			n := int(le.Uint16(b))
			if !yield(b[2 : 2+n : 2+n]) {
				return
			}
			b = b[2+n:]
		}
	}
}

// AppendRoles appends a copy of every role to dst and returns the extended
// slice.
func (v *VerifyResultView) AppendRoles(dst []string) []string {
	for role := range v.Roles() {
		dst = append(dst, string(role))
	}
	return dst
}

// Clone returns a VerifyResult holding copies of v's strings and roles. It
// allocates.
func (v *VerifyResultView) Clone() VerifyResult {
	r := VerifyResult{
		Status:      v.Status,
		CacheTTLMS:  v.CacheTTLMS,
		ExpiresAtMS: v.ExpiresAtMS,
		Subject:     string(v.Subject),
		Kind:        string(v.Kind),
		KeyID:       string(v.KeyID),
		Grant:       string(v.Grant),
		Source:      string(v.Source),
		Realm:       string(v.Realm),
	}
	if v.RoleCount > 0 {
		r.Roles = v.AppendRoles(make([]string, 0, v.RoleCount))
	}
	return r
}

// Error is the decoded body of an ERROR frame (struct verifyd_error and the
// message after it). It is not a Go error: Message is a sub-slice of the
// body.
type Error struct {
	Code    ErrorCode
	Message []byte // UTF-8 text for people
}

// FrameError reports a frame that breaks the protocol: a Decoder refused the
// stream, or a body decoder refused a body. Code is the ERROR code that
// reports it to the peer.
type FrameError struct {
	Code   ErrorCode
	Detail string // what was wrong, for people
}

func (e *FrameError) Error() string {
	return "ipc: " + e.Code.String() + ": " + e.Detail
}

func frameErr(code ErrorCode, detail string) *FrameError {
	return &FrameError{Code: code, Detail: detail}
}

func utoa(n uint64) string { return strconv.FormatUint(n, 10) }

// A Decoder splits a byte stream into frames and validates them. It holds no
// state between calls: the caller keeps the bytes read so far and passes
// them to Next, which returns the first complete frame, if any, as
// sub-slices of those bytes, with no copying and no allocation. A Decoder is
// safe for concurrent use.
//
// Next validates everything that does not depend on the server's
// configuration beyond MaxFrameBytes, in this order, each check as soon as
// its bytes are present: the length is at least HeaderSize
// (CodeFrameTooSmall) and at most MaxFrameBytes (CodeFrameTooLarge); the
// version is ProtocolVersion (CodeUnsupportedVersion); the opcode is known
// and goes in the decoded direction (CodeUnknownOpcode); the flags are zero
// (CodeBadFrame); the length suits the opcode's fixed size (CodeBadFrame);
// and, once the frame is complete, the body's lengths add up exactly and its
// reserved fields are zero (CodeBadFrame). A frame is refused as soon as its
// first bytes show it is bad, so the result for a given stream does not
// depend on how it was split into reads.
type Decoder struct {
	// MaxFrameBytes is the longest frame accepted. Zero means
	// DefaultMaxFrameBytes when decoding requests and MaxAnswerBytes when
	// decoding answers; a value below MinFrameLimit means MinFrameLimit.
	MaxFrameBytes int
	// Answers selects the direction. False (the zero value) decodes what a
	// client sends, HELLO, VERIFY and PING, as a server does; true decodes
	// what a server sends, HELLO_OK, VERIFY_RESULT, PONG and ERROR, as a
	// client does.
	Answers bool
}

func (d *Decoder) limit() uint32 {
	m := d.MaxFrameBytes
	switch {
	case m == 0 && d.Answers:
		return MaxAnswerBytes
	case m == 0:
		return DefaultMaxFrameBytes
	case m < MinFrameLimit:
		return MinFrameLimit
	case uint64(m) > math.MaxUint32:
		return math.MaxUint32
	}
	return uint32(m)
}

// Next returns the first frame in buf. It returns n > 0, the frame's length,
// when buf starts with a complete valid frame; n == 0 and a nil error when
// buf holds only the start of a frame that may still be valid (read more
// bytes, keeping these, and call again); and a *FrameError when the bytes
// present already break the protocol. The frame's Body aliases buf.
func (d *Decoder) Next(buf []byte) (f Frame, n int, err error) {
	if len(buf) < 4 {
		return Frame{}, 0, nil
	}
	length := le.Uint32(buf[offHeaderLength:])
	if length < HeaderSize {
		return Frame{}, 0, frameErr(CodeFrameTooSmall, "frame length "+utoa(uint64(length))+" is below the header size 16")
	}
	if lim := d.limit(); length > lim {
		return Frame{}, 0, frameErr(CodeFrameTooLarge, "frame length "+utoa(uint64(length))+" is beyond the limit "+utoa(uint64(lim)))
	}
	if len(buf) <= offHeaderVersion {
		return Frame{}, 0, nil
	}
	if v := buf[offHeaderVersion]; v != ProtocolVersion {
		return Frame{}, 0, frameErr(CodeUnsupportedVersion, "version "+utoa(uint64(v))+" is not spoken")
	}
	if len(buf) <= offHeaderOpcode {
		return Frame{}, 0, nil
	}
	op := Opcode(buf[offHeaderOpcode])
	if !d.accepts(op) {
		return Frame{}, 0, frameErr(CodeUnknownOpcode, "opcode "+utoa(uint64(op))+" is not accepted here")
	}
	if len(buf) < offHeaderFlags+2 {
		return Frame{}, 0, nil
	}
	if fl := le.Uint16(buf[offHeaderFlags:]); fl != 0 {
		return Frame{}, 0, frameErr(CodeBadFrame, "flags "+utoa(uint64(fl))+" are not zero")
	}
	if !fixedLengthOK(op, length) {
		return Frame{}, 0, frameErr(CodeBadFrame, "length "+utoa(uint64(length))+" does not suit a "+op.String()+" frame")
	}
	if uint64(len(buf)) < uint64(length) {
		return Frame{}, 0, nil
	}
	body := buf[HeaderSize:length:length]
	if err := checkBody(op, body); err != nil {
		return Frame{}, 0, err
	}
	f = Frame{
		Header: Header{
			Length:    length,
			Version:   ProtocolVersion,
			Opcode:    op,
			RequestID: le.Uint64(buf[offHeaderRequestID:]),
		},
		Body: body,
	}
	return f, int(length), nil
}

func (d *Decoder) accepts(op Opcode) bool {
	if d.Answers {
		return op.IsAnswer()
	}
	return op.IsRequest()
}

// fixedLengthOK checks what the header alone tells about the body's length.
func fixedLengthOK(op Opcode, length uint32) bool {
	switch op {
	case OpHello:
		return length == HeaderSize+HelloSize
	case OpHelloOK:
		return length == HeaderSize+HelloOKSize
	case OpVerify:
		return length >= HeaderSize+VerifySize
	case OpVerifyResult:
		return length >= HeaderSize+VerifyResultSize
	case OpPing, OpPong:
		return length == HeaderSize
	case OpError:
		return length >= HeaderSize+ErrorSize
	}
	return false
}

func checkBody(op Opcode, body []byte) *FrameError {
	var err *FrameError
	switch op {
	case OpHello:
		_, err = decodeHello(body)
	case OpHelloOK:
		_, err = decodeHelloOK(body)
	case OpVerify:
		_, err = decodeVerify(body)
	case OpVerifyResult:
		_, err = decodeVerifyResult(body)
	case OpError:
		_, err = decodeError(body)
	case OpPing, OpPong:
		if len(body) != 0 {
			err = frameErr(CodeBadFrame, op.String()+" has a body")
		}
	default:
		err = frameErr(CodeUnknownOpcode, "opcode "+utoa(uint64(op))+" is unknown")
	}
	return err
}

func badBody(op Opcode, what string) *FrameError {
	return frameErr(CodeBadFrame, op.String()+": "+what)
}

// DecodeHello decodes the body of a HELLO frame.
func DecodeHello(body []byte) (Hello, error) {
	h, err := decodeHello(body)
	if err != nil {
		return Hello{}, err
	}
	return h, nil
}

func decodeHello(b []byte) (Hello, *FrameError) {
	if len(b) != HelloSize {
		return Hello{}, badBody(OpHello, "body is not 8 bytes")
	}
	if le.Uint32(b[offHelloReserved:]) != 0 {
		return Hello{}, badBody(OpHello, "reserved is not zero")
	}
	return Hello{
		MinVersion: le.Uint16(b[offHelloMinVersion:]),
		MaxVersion: le.Uint16(b[offHelloMaxVersion:]),
	}, nil
}

// DecodeHelloOK decodes the body of a HELLO_OK frame.
func DecodeHelloOK(body []byte) (HelloOK, error) {
	h, err := decodeHelloOK(body)
	if err != nil {
		return HelloOK{}, err
	}
	return h, nil
}

func decodeHelloOK(b []byte) (HelloOK, *FrameError) {
	if len(b) != HelloOKSize {
		return HelloOK{}, badBody(OpHelloOK, "body is not 24 bytes")
	}
	if le.Uint16(b[offHelloOKReserved:]) != 0 {
		return HelloOK{}, badBody(OpHelloOK, "reserved is not zero")
	}
	return HelloOK{
		Version:       le.Uint16(b[offHelloOKVersion:]),
		MaxFrameBytes: le.Uint32(b[offHelloOKMaxFrameBytes:]),
		MaxInFlight:   le.Uint32(b[offHelloOKMaxInFlight:]),
		MaxTokenBytes: le.Uint32(b[offHelloOKMaxTokenBytes:]),
		MaxScopeBytes: le.Uint32(b[offHelloOKMaxScopeBytes:]),
		IdleTimeoutMS: le.Uint32(b[offHelloOKIdleTimeoutMS:]),
	}, nil
}

// DecodeVerify decodes the body of a VERIFY frame. Token and Scope alias
// body. It does not check the server's token and scope limits.
func DecodeVerify(body []byte) (VerifyRequest, error) {
	r, err := decodeVerify(body)
	if err != nil {
		return VerifyRequest{}, err
	}
	return r, nil
}

func decodeVerify(b []byte) (VerifyRequest, *FrameError) {
	if len(b) < VerifySize {
		return VerifyRequest{}, badBody(OpVerify, "body is shorter than 8 bytes")
	}
	tl := uint64(le.Uint32(b[offVerifyTokenLen:]))
	sl := uint64(le.Uint32(b[offVerifyScopeLen:]))
	if VerifySize+tl+sl != uint64(len(b)) {
		return VerifyRequest{}, badBody(OpVerify, "token_len "+utoa(tl)+" and scope_len "+utoa(sl)+" do not add up to the body length "+utoa(uint64(len(b))))
	}
	t := VerifySize + int(tl)
	return VerifyRequest{Token: b[VerifySize:t:t], Scope: b[t:len(b):len(b)]}, nil
}

// DecodeVerifyResult decodes the body of a VERIFY_RESULT frame. The view's
// slices alias body.
func DecodeVerifyResult(body []byte) (VerifyResultView, error) {
	v, err := decodeVerifyResult(body)
	if err != nil {
		return VerifyResultView{}, err
	}
	return v, nil
}

func decodeVerifyResult(b []byte) (VerifyResultView, *FrameError) {
	if len(b) < VerifyResultSize {
		return VerifyResultView{}, badBody(OpVerifyResult, "body is shorter than 32 bytes")
	}
	if b[offResultReserved0] != 0 || le.Uint32(b[offResultReserved1:]) != 0 {
		return VerifyResultView{}, badBody(OpVerifyResult, "reserved is not zero")
	}
	v := VerifyResultView{
		Status:      Status(b[offResultStatus]),
		CacheTTLMS:  le.Uint32(b[offResultCacheTTLMS:]),
		ExpiresAtMS: int64(le.Uint64(b[offResultExpiresAtMS:])),
		RoleCount:   int(le.Uint16(b[offResultRoleCount:])),
	}
	rest := b[VerifyResultSize:]
	for i, p := range [...]*[]byte{&v.Subject, &v.Kind, &v.KeyID, &v.Grant, &v.Source, &v.Realm} {
		n := int(le.Uint16(b[offResultSubjectLen+2*i:]))
		if n > len(rest) {
			return VerifyResultView{}, badBody(OpVerifyResult, "string lengths run past the body")
		}
		*p = rest[:n:n]
		rest = rest[n:]
	}
	roles := rest
	for range v.RoleCount {
		if len(rest) < 2 {
			return VerifyResultView{}, badBody(OpVerifyResult, "roles run past the body")
		}
		n := int(le.Uint16(rest))
		if 2+n > len(rest) {
			return VerifyResultView{}, badBody(OpVerifyResult, "roles run past the body")
		}
		rest = rest[2+n:]
	}
	if len(rest) != 0 {
		return VerifyResultView{}, badBody(OpVerifyResult, utoa(uint64(len(rest)))+" bytes follow the last role")
	}
	v.roles = roles
	return v, nil
}

// DecodeError decodes the body of an ERROR frame. Message aliases body.
func DecodeError(body []byte) (Error, error) {
	e, err := decodeError(body)
	if err != nil {
		return Error{}, err
	}
	return e, nil
}

func decodeError(b []byte) (Error, *FrameError) {
	if len(b) < ErrorSize {
		return Error{}, badBody(OpError, "body is shorter than 8 bytes")
	}
	if le.Uint32(b[offErrorReserved:]) != 0 {
		return Error{}, badBody(OpError, "reserved is not zero")
	}
	n := int(le.Uint16(b[offErrorMessageLen:]))
	if ErrorSize+n != len(b) {
		return Error{}, badBody(OpError, "message_len "+utoa(uint64(n))+" does not match the body length "+utoa(uint64(len(b))))
	}
	return Error{Code: ErrorCode(le.Uint16(b[offErrorCode:])), Message: b[ErrorSize:len(b):len(b)]}, nil
}

// The encoders append one complete frame to dst and return the extended
// slice, like strconv.AppendInt. They allocate only when dst lacks room.

// appendHeader grows dst by length bytes at most once and appends a header.
func appendHeader(dst []byte, length int, op Opcode, id uint64) []byte {
	dst = slices.Grow(dst, length)
	dst = le.AppendUint32(dst, uint32(length))
	dst = append(dst, ProtocolVersion, byte(op), 0, 0)
	return le.AppendUint64(dst, id)
}

// AppendHello appends a HELLO frame.
func AppendHello(dst []byte, id uint64, h Hello) []byte {
	dst = appendHeader(dst, HeaderSize+HelloSize, OpHello, id)
	dst = le.AppendUint16(dst, h.MinVersion)
	dst = le.AppendUint16(dst, h.MaxVersion)
	return le.AppendUint32(dst, 0)
}

// AppendHelloOK appends a HELLO_OK frame.
func AppendHelloOK(dst []byte, id uint64, h HelloOK) []byte {
	dst = appendHeader(dst, HeaderSize+HelloOKSize, OpHelloOK, id)
	dst = le.AppendUint16(dst, h.Version)
	dst = le.AppendUint16(dst, 0)
	dst = le.AppendUint32(dst, h.MaxFrameBytes)
	dst = le.AppendUint32(dst, h.MaxInFlight)
	dst = le.AppendUint32(dst, h.MaxTokenBytes)
	dst = le.AppendUint32(dst, h.MaxScopeBytes)
	return le.AppendUint32(dst, h.IdleTimeoutMS)
}

// AppendVerify appends a VERIFY frame for token and scope (scope "":
// authenticate only). The caller keeps the frame within the server's limits
// (HelloOK); AppendVerify panics if it would be longer than 2³²-1 bytes.
func AppendVerify(dst []byte, id uint64, token, scope string) []byte {
	n := uint64(HeaderSize+VerifySize) + uint64(len(token)) + uint64(len(scope))
	if n > math.MaxUint32 {
		panic("ipc: AppendVerify: frame longer than 4 GiB")
	}
	dst = appendHeader(dst, int(n), OpVerify, id)
	dst = le.AppendUint32(dst, uint32(len(token)))
	dst = le.AppendUint32(dst, uint32(len(scope)))
	dst = append(dst, token...)
	return append(dst, scope...)
}

// AppendVerifyResult appends a VERIFY_RESULT frame encoding r. It panics if
// r cannot be encoded (r.Len() < 0); a server also checks that r.Len() is at
// most MaxAnswerBytes.
func AppendVerifyResult(dst []byte, id uint64, r *VerifyResult) []byte {
	n := r.Len()
	if n < 0 {
		panic("ipc: AppendVerifyResult: a string or the roles are too long to encode")
	}
	dst = appendHeader(dst, n, OpVerifyResult, id)
	dst = append(dst, byte(r.Status), 0)
	dst = le.AppendUint16(dst, uint16(len(r.Roles)))
	dst = le.AppendUint32(dst, r.CacheTTLMS)
	dst = le.AppendUint64(dst, uint64(r.ExpiresAtMS))
	dst = le.AppendUint16(dst, uint16(len(r.Subject)))
	dst = le.AppendUint16(dst, uint16(len(r.Kind)))
	dst = le.AppendUint16(dst, uint16(len(r.KeyID)))
	dst = le.AppendUint16(dst, uint16(len(r.Grant)))
	dst = le.AppendUint16(dst, uint16(len(r.Source)))
	dst = le.AppendUint16(dst, uint16(len(r.Realm)))
	dst = le.AppendUint32(dst, 0)
	dst = append(dst, r.Subject...)
	dst = append(dst, r.Kind...)
	dst = append(dst, r.KeyID...)
	dst = append(dst, r.Grant...)
	dst = append(dst, r.Source...)
	dst = append(dst, r.Realm...)
	for _, role := range r.Roles {
		dst = le.AppendUint16(dst, uint16(len(role)))
		dst = append(dst, role...)
	}
	return dst
}

// AppendPing appends a PING frame.
func AppendPing(dst []byte, id uint64) []byte {
	return appendHeader(dst, HeaderSize, OpPing, id)
}

// AppendPong appends a PONG frame.
func AppendPong(dst []byte, id uint64) []byte {
	return appendHeader(dst, HeaderSize, OpPong, id)
}

// AppendError appends an ERROR frame with code and message. A message
// longer than 65535 bytes is cut at the last whole UTF-8 sequence that
// fits.
func AppendError(dst []byte, id uint64, code ErrorCode, message string) []byte {
	if len(message) > math.MaxUint16 {
		cut := math.MaxUint16
		for cut > 0 && !utf8.RuneStart(message[cut]) {
			cut--
		}
		message = message[:cut]
	}
	dst = appendHeader(dst, HeaderSize+ErrorSize+len(message), OpError, id)
	dst = le.AppendUint16(dst, uint16(code))
	dst = le.AppendUint16(dst, uint16(len(message)))
	dst = le.AppendUint32(dst, 0)
	return append(dst, message...)
}
