package credential

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
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
	// block is AES-256 keyed with SHA-256 of the checksum key; it is safe
	// for concurrent use.
	block cipher.Block
	// scratch holds *macBlock buffers: a buffer passed to block.Encrypt
	// escapes, so it is pooled rather than allocated per checksum.
	scratch sync.Pool
}

// macBlock is the scratch space of one checksum computation.
type macBlock [aes.BlockSize]byte

// NewMinter returns a Minter whose API-key checksums are keyed with
// checksumKey, which must be at least [MinChecksumKeyLen] bytes (see
// [NewChecksumKey]). The key is copied; the caller may clear its slice.
func NewMinter(checksumKey []byte) (*Minter, error) {
	if len(checksumKey) < MinChecksumKeyLen {
		return nil, fmt.Errorf("credential: checksum key is %d bytes, need at least %d", len(checksumKey), MinChecksumKeyLen)
	}
	key := sha256.Sum256(checksumKey)
	block, err := aes.NewCipher(key[:])
	clear(key[:])
	if err != nil {
		return nil, fmt.Errorf("credential: checksum cipher: %w", err)
	}
	m := &Minter{block: block}
	m.scratch.New = func() any { return new(macBlock) }
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
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// checksum sets out to the first bytes of the CBC-MAC under m's AES-256 key
// of the 32-character random part of msg, the 35-character "vk_" + random
// part: E(E(r[0:16]) XOR r[16:32]). CBC-MAC is a secure pseudorandom
// function for messages of one fixed length, which these are; it costs two
// AES block encryptions where an HMAC-SHA256 costs four SHA-256 blocks. It
// allocates nothing.
func (m *Minter) checksum(msg string, out *[apiKeyChecksumBytes]byte) {
	r := msg[len(apiKeyPrefix):]
	x := m.scratch.Get().(*macBlock)
	copy(x[:], r[:aes.BlockSize])
	m.block.Encrypt(x[:], x[:])
	for i := range x {
		x[i] ^= r[aes.BlockSize+i]
	}
	m.block.Encrypt(x[:], x[:])
	copy(out[:], x[:])
	clear(x[:])
	m.scratch.Put(x)
}

// String returns a placeholder that does not reveal the checksum key.
func (m *Minter) String() string { return "credential.Minter{checksum key redacted}" }

// GoString returns the same placeholder as String, for the %#v verb.
func (m *Minter) GoString() string { return m.String() }

// LogValue implements [slog.LogValuer]: a Minter logs as a placeholder that
// does not reveal the checksum key.
func (m *Minter) LogValue() slog.Value { return slog.StringValue(m.String()) }

var _ slog.LogValuer = (*Minter)(nil)
