package credential

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
)

// NewAgentKey returns a new agent key: the 43-character canonical base64url
// encoding of 32 bytes from crypto/rand (the AgentMsg bearer format). A draw
// that would start with a reserved prefix ("vk_" or "pat_") is discarded and
// drawn again, so the result always classifies as [Agent].
func NewAgentKey() (string, error) {
	return newAgentKey(rand.Reader)
}

// newAgentKey is NewAgentKey reading its random bytes from r.
func newAgentKey(r io.Reader) (string, error) {
	for {
		k, err := newSecret(r)
		if err != nil {
			return "", err
		}
		if !strings.HasPrefix(k, apiKeyPrefix) && !strings.HasPrefix(k, patPrefix) {
			return k, nil
		}
	}
}

// newSecret returns the 43-character base64url encoding of 32 bytes read
// from r.
func newSecret(r io.Reader) (string, error) {
	var b [agentKeyBytes]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("credential: read random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}
