package credential

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"sync"
)

// MinChecksumKeyLen is the shortest checksum key, in bytes, [NewMinter]
// accepts.
const MinChecksumKeyLen = 32

// A Minter generates API keys and classifies presented credentials under one
// deployment's checksum key. Create it with [NewMinter]; the zero value is
// not usable. A Minter is safe for concurrent use and must not be copied.
//
// A Minter holds a secret: it formats as a redacted placeholder with the fmt
// package and with log/slog.
type Minter struct {
	// pool holds *macState values keyed with the checksum key. HMAC states
	// carry key-derived material, so they live only here.
	pool sync.Pool
}

// macState is one pooled HMAC-SHA256 state with scratch space, so that
// computing a checksum allocates nothing.
type macState struct {
	h   hash.Hash
	in  [apiKeyMACInputLen]byte
	sum [sha256.Size]byte
}

// NewMinter returns a Minter whose API-key checksums are keyed with
// checksumKey, which must be at least [MinChecksumKeyLen] bytes (see
// [NewChecksumKey]). The key is copied; the caller may clear its slice.
func NewMinter(checksumKey []byte) (*Minter, error) {
	if len(checksumKey) < MinChecksumKeyLen {
		return nil, fmt.Errorf("credential: checksum key is %d bytes, need at least %d", len(checksumKey), MinChecksumKeyLen)
	}
	key := append([]byte(nil), checksumKey...)
	m := &Minter{}
	m.pool.New = func() any {
		st := &macState{h: hmac.New(sha256.New, key)}
		// Resetting once lets the HMAC keep its precomputed pad states.
		st.h.Reset()
		return st
	}
	return m, nil
}

// NewChecksumKey returns a new 32-byte checksum key from crypto/rand, for a
// deployment's configuration. Keep it secret: anyone holding it can mint API
// keys that pass [Minter.Classify] (though not ones that exist in a store).
func NewChecksumKey() ([]byte, error) {
	key := make([]byte, MinChecksumKeyLen)
	if _, err := io.ReadFull(rand.Reader, key); err != nil {
		return nil, fmt.Errorf("credential: read random: %w", err)
	}
	return key, nil
}

// NewAPIKey returns a new generated API key: "vk_", 24 random bytes from
// crypto/rand, and the checksum, in 43 characters. The key is shown to its
// owner once and stored only as a digest.
func (m *Minter) NewAPIKey() (string, error) {
	return m.newAPIKey(rand.Reader)
}

// newAPIKey is NewAPIKey reading its random bytes from r.
func (m *Minter) newAPIKey(r io.Reader) (string, error) {
	var rnd [apiKeyRandomBytes]byte
	if _, err := io.ReadFull(r, rnd[:]); err != nil {
		return "", fmt.Errorf("credential: read random: %w", err)
	}
	var buf [apiKeyLen]byte
	copy(buf[:], apiKeyPrefix)
	base64.RawURLEncoding.Encode(buf[len(apiKeyPrefix):apiKeyMACInputLen], rnd[:])
	var sum [apiKeyChecksumBytes]byte
	m.checksum(string(buf[:apiKeyMACInputLen]), &sum)
	base64.RawURLEncoding.Encode(buf[apiKeyMACInputLen:], sum[:])
	return string(buf[:]), nil
}

// validAPIKey reports whether tok is a 43-character "vk_" key whose checksum
// verifies under m's key. The comparison is constant-time.
func (m *Minter) validAPIKey(tok string) bool {
	if len(tok) != apiKeyLen || !isBase64URL(tok[len(apiKeyPrefix):]) {
		return false
	}
	// 8 characters carry exactly 6 bytes: no unused bits, so every
	// spelling is canonical.
	var got [apiKeyChecksumBytes]byte
	c := tok[apiKeyMACInputLen:]
	for i := 0; i < apiKeyChecksumLen; i += 4 {
		v := uint32(decodeMap[c[i]])<<18 | uint32(decodeMap[c[i+1]])<<12 |
			uint32(decodeMap[c[i+2]])<<6 | uint32(decodeMap[c[i+3]])
		j := i / 4 * 3
		got[j], got[j+1], got[j+2] = byte(v>>16), byte(v>>8), byte(v)
	}
	var want [apiKeyChecksumBytes]byte
	m.checksum(tok[:apiKeyMACInputLen], &want)
	return hmac.Equal(got[:], want[:])
}

// checksum sets out to the first bytes of HMAC-SHA256(key, msg), where msg
// is the 35-character "vk_" + random part. It allocates nothing.
func (m *Minter) checksum(msg string, out *[apiKeyChecksumBytes]byte) {
	st := m.pool.Get().(*macState)
	n := copy(st.in[:], msg)
	st.h.Write(st.in[:n])
	st.h.Sum(st.sum[:0])
	copy(out[:], st.sum[:])
	st.h.Reset()
	clear(st.in[:])
	clear(st.sum[:])
	m.pool.Put(st)
}

// String returns a placeholder that does not reveal the checksum key.
func (m *Minter) String() string { return "credential.Minter{checksum key redacted}" }

// GoString returns the same placeholder as String, for the %#v verb.
func (m *Minter) GoString() string { return m.String() }

// LogValue implements [slog.LogValuer]: a Minter logs as a placeholder that
// does not reveal the checksum key.
func (m *Minter) LogValue() slog.Value { return slog.StringValue(m.String()) }

var _ slog.LogValuer = (*Minter)(nil)
