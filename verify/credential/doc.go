// Package credential owns the presented formats of verifyd's opaque
// credentials: it generates them and classifies a presented token cheaply,
// before any cache or store lookup, so that random or forged keys are
// rejected with no I/O.
//
// It does not store, hash for lookup, or log credentials, and it knows
// nothing about records, expiry or revocation: a well-formed credential is
// only a candidate, and the caller looks it up by the SHA-256 of the whole
// presented string.
//
// # Formats
//
// Every format below is ASCII and is matched byte for byte and by position,
// never by splitting on a separator. "base64url" means the URL-safe alphabet
// of RFC 4648 §5 (A-Z a-z 0-9 - _) without padding; "canonical" means the
// unused low bits of the last character are zero, so that exactly one string
// encodes a given byte sequence.
//
//   - [APIKey]: "vk_" + 32 base64url characters r (24 random bytes) + 8
//     base64url characters (the first 6 bytes of the AES-256 CBC-MAC of r,
//     E(E(r[0:16]) XOR r[16:32]), keyed with SHA-256 of the checksum key);
//     43 bytes in all. The checksum is verified by [Minter.Classify], so a random or
//     forged "vk_" string is [Malformed]. The checksum key is a
//     per-deployment secret of at least 32 bytes.
//   - [Agent]: 43 base64url characters, the canonical encoding of 32 random
//     bytes (the AgentMsg bearer format), not starting with "vk_" or "pat_".
//   - [PAT]: "pat_" + 22 base64url characters (the canonical encoding of the
//     16-byte PAT id) + "_" + 43 base64url characters (the canonical encoding
//     of a 32-byte secret); 70 bytes in all. Both base64url parts may contain
//     '_'. The embedded id is a hint only: the record is found by the
//     digest of the whole token, and the id is then checked against the
//     record's id, so a valid id prefix joined to another PAT's secret is
//     well-formed here and rejected by that lookup.
//   - [Imported]: 16 to 512 bytes ([MinImportedLen], [MaxLen]), each in
//     0x21–0x7E (printable ASCII, no space), not starting with "vk_" or
//     "pat_", and not of the [Agent] form. This class is for migrating an
//     existing estate of keys (see [ValidateImported]).
//   - [JWT]: "ey" followed by a '.' within the first 1024 bytes, whatever the
//     length: the shape of a compact JWS whose header is a JSON object. The
//     JWT front end (package verify/jwt) decides whether it is valid.
//   - [Malformed]: everything else, including the empty string, anything
//     over 512 bytes, control characters, spaces, non-ASCII bytes, a trailing
//     newline, and every string with a reserved prefix ("vk_", "pat_") that
//     is not a valid key of that prefix's format. Prefixes are
//     case-sensitive: "PAT_…" or "VK_…" is an ordinary [Imported] string if
//     it satisfies that class.
//
// The classes overlap in one place only: a key imported from another system
// may have the [Agent] form, and is then classified [Agent]. A class is a
// statement about the string, not about which record it belongs to; the
// record found by digest is authoritative.
//
// [JWT] is tested first, so an imported key may not have its shape
// ([ValidateImported] refuses it).
//
// A string that differs from a well-formed credential in any way is a
// different string with a different digest, even when it decodes to the same
// bytes (for example an agent key whose last character has its unused low
// bits set: it is not canonical, so it is classified [Imported], and it never
// matches the original's record).
//
// # Concurrency and allocation
//
// A [Minter] is safe for concurrent use. [Minter.Classify] and [PATID]
// allocate nothing for any input; the API-key checksum costs two AES
// block encryptions in pooled scratch space and compares in constant time. Generation uses
// crypto/rand.
//
// # Secrets
//
// Generated credentials are returned to the caller once and kept nowhere.
// Errors never contain a presented or generated secret. A [Minter] holds the
// checksum key and redacts itself when formatted or logged.
package credential
