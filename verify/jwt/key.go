package jwt

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
	"sync"
	"sync/atomic"
)

// Alg is a signature algorithm verifyd accepts. The zero value is no
// algorithm.
type Alg uint8

// The accepted algorithms (RFC 7518 §3.1). Nothing else is ever verified.
const (
	ES256 Alg = iota + 1 // ECDSA over P-256 with SHA-256, 64-byte R‖S signatures
	HS256                // HMAC with SHA-256, secrets of at least 32 bytes
)

// String returns the algorithm's JOSE name, e.g. "ES256".
func (a Alg) String() string {
	switch a {
	case ES256:
		return "ES256"
	case HS256:
		return "HS256"
	}
	return fmt.Sprintf("Alg(%d)", uint8(a))
}

// ParseAlg returns the algorithm named name, compared case-sensitively as
// RFC 7515 §4.1.1 requires.
func ParseAlg(name string) (Alg, error) {
	switch name {
	case "ES256":
		return ES256, nil
	case "HS256":
		return HS256, nil
	}
	return 0, fmt.Errorf("jwt: algorithm %q is not accepted (only ES256 and HS256)", name)
}

// MinSecretBytes is the shortest HS256 secret accepted (RFC 7518 §3.2).
const MinSecretBytes = 32

// MaxKeyIDBytes bounds the length of a key id, in a token or a key set.
const MaxKeyIDBytes = 256

// A Key verifies signatures of exactly one algorithm. It is immutable except
// for its retirement flag, and safe for concurrent use.
//
// A trust registry creates one Key per published key and keeps the same
// value while the key stays published, so that decisions cached under a key
// can tell, by [Key.Retired], whether it is still trusted.
type Key struct {
	id      string
	alg     Alg
	profile *Profile
	pub     *ecdsa.PublicKey // ES256
	point   []byte           // ES256: the uncompressed point 04‖X‖Y
	secret  []byte           // HS256
	macs    sync.Pool        // HS256: *macState keyed with secret
	retired atomic.Bool
}

// NewES256Key returns a key that verifies ES256 signatures with pub, which
// must be a valid P-256 public key. kid may be empty. profile states what
// tokens verified by the key must satisfy; it must not be nil.
func NewES256Key(kid string, pub *ecdsa.PublicKey, profile *Profile) (*Key, error) {
	if err := checkKeyArgs(kid, profile); err != nil {
		return nil, err
	}
	if pub == nil || pub.Curve != elliptic.P256() {
		return nil, errors.New("jwt: an ES256 key must be a P-256 public key")
	}
	point, err := pub.Bytes()
	if err != nil {
		return nil, fmt.Errorf("jwt: invalid P-256 public key: %w", err)
	}
	// Re-parse to reject points off the curve (Bytes does not check).
	checked, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	if err != nil {
		return nil, fmt.Errorf("jwt: invalid P-256 public key: %w", err)
	}
	return &Key{id: kid, alg: ES256, profile: profile, pub: checked, point: point}, nil
}

// NewHS256Key returns a key that verifies HS256 MACs under secret, which
// must be at least [MinSecretBytes] long. The key keeps its own copy of
// secret. kid may be empty; profile must not be nil.
func NewHS256Key(kid string, secret []byte, profile *Profile) (*Key, error) {
	if err := checkKeyArgs(kid, profile); err != nil {
		return nil, err
	}
	if len(secret) < MinSecretBytes {
		return nil, fmt.Errorf("jwt: an HS256 secret must be at least %d bytes, this one is %d", MinSecretBytes, len(secret))
	}
	k := &Key{id: kid, alg: HS256, profile: profile, secret: append([]byte(nil), secret...)}
	k.macs.New = func() any { return &macState{h: hmac.New(sha256.New, k.secret)} }
	return k, nil
}

func checkKeyArgs(kid string, profile *Profile) error {
	if profile == nil {
		return errors.New("jwt: a key needs a profile")
	}
	if len(kid) > MaxKeyIDBytes {
		return fmt.Errorf("jwt: key id is %d bytes, limit is %d", len(kid), MaxKeyIDBytes)
	}
	return nil
}

// ID returns the key id ("kid"), or "" when the key has none.
func (k *Key) ID() string { return k.id }

// Alg returns the one algorithm the key verifies.
func (k *Key) Alg() Alg { return k.alg }

// Profile returns what tokens verified by k must satisfy.
func (k *Key) Profile() *Profile { return k.profile }

// Retire marks k as no longer trusted. It cannot be undone.
func (k *Key) Retire() { k.retired.Store(true) }

// Retired reports whether [Key.Retire] was called.
func (k *Key) Retired() bool { return k.retired.Load() }

// SameMaterial reports whether k and o verify the same signatures: the same
// id, algorithm and key material. Profiles are not compared.
func (k *Key) SameMaterial(o *Key) bool {
	if k == nil || o == nil || k.id != o.id || k.alg != o.alg {
		return false
	}
	if k.alg == HS256 {
		return subtle.ConstantTimeCompare(k.secret, o.secret) == 1
	}
	return string(k.point) == string(o.point)
}

// verifyES256 checks a 64-byte R‖S signature over input.
func (k *Key) verifyES256(input string, sig []byte) bool {
	if len(sig) != 64 {
		return false
	}
	digest := sha256.Sum256(stringBytes(input))
	return ecdsaVerify(k.pub, digest[:], sig)
}

// verifyHS256 checks a 32-byte HMAC-SHA256 tag over input in constant time.
func (k *Key) verifyHS256(input string, tag []byte) bool {
	if len(tag) != sha256.Size {
		return false
	}
	m := k.macs.Get().(*macState)
	m.h.Reset()
	writeString(m.h, input)
	ok := hmac.Equal(m.h.Sum(m.sum[:0]), tag)
	k.macs.Put(m)
	return ok
}

// macState is a reusable HMAC state with room for its sum, which would
// escape to the heap if it lived on the stack (it passes through the
// hash.Hash interface).
type macState struct {
	h   hash.Hash
	sum [sha256.Size]byte
}
