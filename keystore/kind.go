package keystore

import (
	"fmt"
	"strconv"
)

// Kind is the kind of a stored credential. It decides how the token is
// presented (DESIGN.md §3), not what it grants.
type Kind uint8

// The credential kinds. Their numeric values are part of the record
// encoding and never change.
const (
	KindAPIKey   Kind = 1 // generated API key, "vk_" + random part + checksum
	KindAgent    Kind = 2 // 43-character base64url agent bearer token
	KindPAT      Kind = 3 // personal access token, "pat_" + id + "_" + secret
	KindImported Kind = 4 // imported key from an existing estate
)

var kindNames = [...]string{
	KindAPIKey:   "api_key",
	KindAgent:    "agent",
	KindPAT:      "pat",
	KindImported: "imported",
}

// Valid reports whether k is one of the defined kinds.
func (k Kind) Valid() bool {
	return k >= KindAPIKey && k <= KindImported
}

// String returns the kind's name ("api_key", "agent", "pat", "imported"),
// or "Kind(n)" for an undefined value.
func (k Kind) String() string {
	if k.Valid() {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// ParseKind returns the Kind named s, as spelled by [Kind.String].
func ParseKind(s string) (Kind, error) {
	for k := KindAPIKey; k <= KindImported; k++ {
		if kindNames[k] == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("keystore: unknown credential kind %q", s)
}
