package credential

import (
	"strings"
	"testing"
)

func TestValidateImported(t *testing.T) {
	t.Parallel()
	const secret = "Sup3rS3cret-value" // 17 bytes; must never appear in an error
	for _, tc := range []struct {
		name, in, wantErr string
	}{
		{"ok", secret, ""},
		{"16 bytes", secret[:16], ""},
		{"512 bytes", strings.Repeat("~", 512), ""},
		{"all printable", "!\"#$%&'()*+,-./0123456789:;<=>?@[\\]^_`{|}~", ""},
		{"agent form", strings.Repeat("A", 43), ""},
		{"upper-case PAT_", "PAT_" + secret, ""},
		{"upper-case VK_", "VK_" + secret, ""},
		{"prefix inside", "x" + "pat_" + secret, ""},
		{"empty", "", "credential: imported key is empty"},
		{"15 bytes", secret[:15], "credential: imported key is 15 bytes, need at least 16"},
		{"513 bytes", strings.Repeat("~", 513), "credential: imported key is 513 bytes, limit is 512"},
		{"10 kB", strings.Repeat("a", 10<<10), "credential: imported key is 10240 bytes, limit is 512"},
		{"vk_ prefix", "vk_" + secret, `credential: imported key starts with the reserved prefix "vk_"`},
		{"pat_ prefix", "pat_" + secret, `credential: imported key starts with the reserved prefix "pat_"`},
		{"pat__x", "pat__x" + secret, `credential: imported key starts with the reserved prefix "pat_"`},
		{"space", secret[:5] + " " + secret[5:], "credential: imported key has a space at byte 5"},
		{"trailing newline", secret + "\n", "credential: imported key has a control character at byte 17"},
		{"tab", "\t" + secret, "credential: imported key has a control character at byte 0"},
		{"NUL", secret + "\x00", "credential: imported key has a control character at byte 17"},
		{"DEL", secret + "\x7F", "credential: imported key has a control character at byte 17"},
		{"non-ASCII", "é" + secret, "credential: imported key has a non-ASCII byte at byte 0"},
		{"invalid UTF-8", secret + "\xff", "credential: imported key has a non-ASCII byte at byte 17"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := ValidateImported(tc.in)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidateImported(%q) = %v", tc.in, err)
				}
				return
			}
			if err == nil || err.Error() != tc.wantErr {
				t.Fatalf("ValidateImported(%.40q) = %v, want %q", tc.in, err, tc.wantErr)
			}
			if strings.Contains(err.Error(), secret[:8]) {
				t.Fatalf("error %q contains the secret", err)
			}
		})
	}
}
