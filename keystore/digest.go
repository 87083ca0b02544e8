package keystore

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	"sync"
	"unsafe"
)

// A Digest is the SHA-256 of the exact bytes of a presented token. The store
// indexes credentials by Digest and never sees the token itself.
type Digest [32]byte

var _ slog.LogValuer = Digest{}

// Sum returns the Digest of token. It hashes the string's bytes in place and
// allocates nothing.
func Sum(token string) Digest {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
}

// String returns the first 8 hexadecimal characters of d, enough to tell
// digests apart in logs and nothing that helps recover a token.
func (d Digest) String() string {
	var buf [8]byte
	hex.Encode(buf[:], d[:4])
	return string(buf[:])
}

// LogValue implements [slog.LogValuer]: a Digest is logged as [Digest.String].
func (d Digest) LogValue() slog.Value {
	return slog.StringValue(d.String())
}

// IsZero reports whether d is all zero bytes, the "unset" Digest.
func (d Digest) IsZero() bool {
	return d == Digest{}
}

// cacheKey returns a string view of the bytes of *d, for use as a cache key.
// The view aliases *d: ristretto hashes a key with [keyHash] and keeps only
// the two hashes, never the string. *d must live on the heap (the view
// makes it escape anyway); Lookup borrows one from keyBufs for the purpose.
func (d *Digest) cacheKey() string {
	return unsafe.String(&d[0], len(d))
}

// keyBufs holds heap-resident Digests that Lookup copies its argument into
// to build a cache key, so that a Lookup allocates nothing. (A view of the
// argument itself would move every looked-up Digest to the heap: ristretto
// calls the hash function through a func value, so escape analysis must
// assume the key escapes. Hiding the pointer from escape analysis is not
// sound: the compiler then no longer treats the stack copy as referenced,
// and a stack move can leave the view pointing at a freed stack.)
var keyBufs = sync.Pool{New: func() any { return new(Digest) }}

// keyHash is the caches' KeyToHash: a Digest is already uniformly
// distributed, so its first 16 bytes are used as ristretto's key hash and
// conflict hash directly, with no second hash. key is always a
// [Digest.cacheKey] view of 32 bytes.
func keyHash(key string) (uint64, uint64) {
	b := unsafe.Slice(unsafe.StringData(key), len(key))
	return binary.LittleEndian.Uint64(b[0:8]), binary.LittleEndian.Uint64(b[8:16])
}
