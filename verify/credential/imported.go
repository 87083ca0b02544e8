package credential

import (
	"fmt"
	"strings"
)

// ValidateImported reports whether secret may be imported as an existing key
// from another system: 16 to 512 bytes ([MinImportedLen], [MaxLen]), each in
// 0x21–0x7E (printable ASCII without space), and not starting with a
// reserved prefix ("vk_", "pat_"; the check is case-sensitive), and not of
// the [JWT] shape ("ey" and a '.' early on). The error
// names the first problem found and never contains the secret or any byte
// of it.
//
// ValidateImported(s) is nil exactly when [Minter.Classify] reports s as
// [Imported] or [Agent]: a key in the agent format is importable, and is
// classified [Agent].
func ValidateImported(secret string) error {
	switch n := len(secret); {
	case n == 0:
		return fmt.Errorf("credential: imported key is empty")
	case n < MinImportedLen:
		return fmt.Errorf("credential: imported key is %d bytes, need at least %d", n, MinImportedLen)
	case n > MaxLen:
		return fmt.Errorf("credential: imported key is %d bytes, limit is %d", n, MaxLen)
	}
	for _, p := range [...]string{apiKeyPrefix, patPrefix} {
		if strings.HasPrefix(secret, p) {
			return fmt.Errorf("credential: imported key starts with the reserved prefix %q", p)
		}
	}
	if looksLikeJWT(secret) {
		return fmt.Errorf("credential: imported key has the shape of a JWT (starts with \"ey\" and contains '.')")
	}
	for i := range len(secret) {
		switch c := secret[i]; {
		case c == ' ':
			return fmt.Errorf("credential: imported key has a space at byte %d", i)
		case c < 0x20 || c == 0x7F:
			return fmt.Errorf("credential: imported key has a control character at byte %d", i)
		case c > 0x7F:
			return fmt.Errorf("credential: imported key has a non-ASCII byte at byte %d", i)
		}
	}
	return nil
}
