package credential

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
)

// NewID returns a new record id: the 22-character canonical base64url
// encoding of 16 bytes from crypto/rand. PATs embed such an id (see
// [NewPAT]); it is an identifier, not a secret.
func NewID() (string, error) {
	return newID(rand.Reader)
}

// newID is NewID reading its random bytes from r.
func newID(r io.Reader) (string, error) {
	var b [idBytes]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("credential: read random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// NewPAT returns a new personal access token for the PAT whose id is id:
// "pat_" + id + "_" + a 43-character secret of 32 bytes from crypto/rand, 70
// characters in all. Resetting a PAT calls NewPAT again with the same id.
// The id must be a canonical 22-character id as [NewID] returns; otherwise
// NewPAT returns an error.
func NewPAT(id string) (string, error) {
	return newPAT(rand.Reader, id)
}

// newPAT is NewPAT reading its random bytes from r.
func newPAT(r io.Reader, id string) (string, error) {
	if len(id) != idLen {
		return "", fmt.Errorf("credential: pat id is %d characters, want %d", len(id), idLen)
	}
	if !canonical(id, idBytes) {
		return "", fmt.Errorf("credential: pat id is not canonical base64url of %d bytes", idBytes)
	}
	secret, err := newSecret(r)
	if err != nil {
		return "", err
	}
	return patPrefix + id + "_" + secret, nil
}

// PATID returns the id embedded in tok if tok is a well-formed PAT (see the
// package documentation), and ok false otherwise. The id is the substring
// tok[4:26]; PATID allocates nothing.
//
// The id is a hint, not a credential: look the token up by the digest of the
// whole string, and then check that the id equals the record's id. A
// well-formed id joined to a secret from another PAT passes PATID and fails
// that lookup.
func PATID(tok string) (id string, ok bool) {
	if !validPAT(tok) {
		return "", false
	}
	return tok[patIDStart:patIDEnd], true
}
