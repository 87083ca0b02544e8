package credential

import (
	"strconv"
	"strings"
)

// MaxLen is the longest credential, in bytes, that any format accepts.
// Longer input is [Malformed] without being examined further.
const MaxLen = 512

// MinImportedLen is the shortest [Imported] credential, in bytes.
const MinImportedLen = 16

// Reserved prefixes. A string starting with one of them is classified only
// by the rules of that prefix's format.
const (
	apiKeyPrefix = "vk_"
	patPrefix    = "pat_"
)

// Lengths of the positional fields, in characters.
const (
	apiKeyRandomLen   = 32                                  // base64url of 24 bytes
	apiKeyChecksumLen = 8                                   // base64url of 6 bytes
	apiKeyMACInputLen = len(apiKeyPrefix) + apiKeyRandomLen // "vk_" + random part
	apiKeyLen         = apiKeyMACInputLen + apiKeyChecksumLen

	apiKeyRandomBytes   = 24
	apiKeyChecksumBytes = 6

	agentKeyLen   = 43 // base64url of 32 bytes
	agentKeyBytes = 32

	idLen   = 22 // base64url of 16 bytes
	idBytes = 16

	patIDStart     = len(patPrefix)
	patIDEnd       = patIDStart + idLen
	patSecretStart = patIDEnd + 1 // after the '_' separator
	patLen         = patSecretStart + agentKeyLen
)

// A Format is the class of a presented credential, as reported by
// [Minter.Classify]. The zero value is [Malformed].
type Format uint8

// The credential formats. The package documentation states exactly what
// each accepts.
const (
	// Malformed is anything that is no credential verifyd could hold.
	Malformed Format = iota
	// APIKey is a generated "vk_" key with a valid checksum.
	APIKey
	// Agent is a 43-character canonical base64url bearer token.
	Agent
	// PAT is a personal access token, "pat_<id>_<secret>".
	PAT
	// Imported is a key taken over from another system.
	Imported
	// JWT is a token with the shape of a compact JWS: a first segment that
	// starts with "ey" (the base64url encoding of '{') and a '.'. Its
	// validity is for the JWT front end to decide.
	JWT
	// NumFormats is the number of formats; every Format below it is valid.
	NumFormats
)

var formatNames = [...]string{
	Malformed: "malformed",
	APIKey:    "api_key",
	Agent:     "agent",
	PAT:       "pat",
	Imported:  "imported",
	JWT:       "jwt",
}

// String returns the format's stable lower-case name ("malformed",
// "api_key", "agent", "pat", "imported", "jwt"), suitable as a metric label or log
// field. An out-of-range value prints as "format(N)".
func (f Format) String() string {
	if int(f) < len(formatNames) {
		return formatNames[f]
	}
	return "format(" + strconv.Itoa(int(f)) + ")"
}

// Classify reports the format of tok. It verifies the checksum of a "vk_"
// key, so a random or forged one is [Malformed]; it looks nothing up, and a
// well-formed result says nothing about whether a record exists.
//
// A token with the shape of a compact JWS is [JWT] whatever its length:
// the JWT front end applies its own size cap. Classify allocates nothing for
// any input, and its cost is bounded by [MaxLen]: longer input that is not
// a JWT is rejected from its length alone.
func (m *Minter) Classify(tok string) Format {
	if looksLikeJWT(tok) {
		return JWT
	}
	n := len(tok)
	if n < MinImportedLen || n > MaxLen {
		return Malformed
	}
	switch {
	case strings.HasPrefix(tok, apiKeyPrefix):
		if m.validAPIKey(tok) {
			return APIKey
		}
		return Malformed
	case strings.HasPrefix(tok, patPrefix):
		if validPAT(tok) {
			return PAT
		}
		return Malformed
	case n == agentKeyLen && canonical(tok, agentKeyBytes):
		return Agent
	case printable(tok):
		return Imported
	}
	return Malformed
}

// maxJWTHeaderLen bounds the search for the '.' that ends a JWT's header
// segment: real headers (alg, kid, typ) are far shorter.
const maxJWTHeaderLen = 1024

// looksLikeJWT reports whether tok has the shape of a compact JWS: "ey" and
// a '.' within the first maxJWTHeaderLen bytes.
func looksLikeJWT(tok string) bool {
	if len(tok) < 3 || tok[0] != 'e' || tok[1] != 'y' {
		return false
	}
	return strings.IndexByte(tok[:min(len(tok), maxJWTHeaderLen)], '.') > 0
}

// alphabet is the base64url alphabet of RFC 4648 §5.
const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// invalid marks a byte outside the alphabet in decodeMap.
const invalid = 0xFF

// decodeMap maps a byte to its 6-bit base64url value, or to invalid.
var decodeMap = func() (m [256]byte) {
	for i := range m {
		m[i] = invalid
	}
	for i := range len(alphabet) {
		m[alphabet[i]] = byte(i)
	}
	return m
}()

// isBase64URL reports whether every byte of s is in the base64url alphabet.
func isBase64URL(s string) bool {
	for i := range len(s) {
		if decodeMap[s[i]] == invalid {
			return false
		}
	}
	return true
}

// canonical reports whether s is the unpadded base64url encoding of exactly
// nbytes bytes with the unused low bits of its last character zero: the one
// spelling encoding/base64's RawURLEncoding produces for those bytes.
func canonical(s string, nbytes int) bool {
	if len(s) != (nbytes*8+5)/6 || !isBase64URL(s) {
		return false
	}
	unused := len(s)*6 - nbytes*8
	return decodeMap[s[len(s)-1]]&(1<<unused-1) == 0
}

// printable reports whether every byte of s is in 0x21–0x7E.
func printable(s string) bool {
	for i := range len(s) {
		if c := s[i]; c < 0x21 || c > 0x7E {
			return false
		}
	}
	return true
}

// validPAT reports whether tok has the PAT layout: the prefix, a canonical
// 22-character id, '_', and a canonical 43-character secret, by position.
func validPAT(tok string) bool {
	return len(tok) == patLen &&
		strings.HasPrefix(tok, patPrefix) &&
		tok[patIDEnd] == '_' &&
		canonical(tok[patIDStart:patIDEnd], idBytes) &&
		canonical(tok[patSecretStart:], agentKeyBytes)
}
