package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// maxSecretBytes bounds a secret or token read from a file or standard
// input. Imported secrets are at most 512 bytes and JWTs a few kilobytes.
const maxSecretBytes = 16 << 10

// readSecret reads a secret from the file at path, or from r when path is
// empty. One trailing newline (LF or CRLF) is removed, so files written by
// editors and "echo" work; the secret must then be a single non-empty line.
// what names the secret in errors ("secret", "token"); the value itself is
// never put in an error.
func readSecret(r io.Reader, path, what string) (string, error) {
	source := "standard input"
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return "", fmt.Errorf("read %s: %w", what, err)
		}
		defer f.Close()
		r, source = f, path
	}
	b, err := io.ReadAll(io.LimitReader(r, maxSecretBytes+1))
	if err != nil {
		return "", fmt.Errorf("read %s from %s: %w", what, source, err)
	}
	if len(b) > maxSecretBytes {
		return "", fmt.Errorf("%s in %s is longer than %d bytes", what, source, maxSecretBytes)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	switch {
	case len(b) == 0:
		return "", fmt.Errorf("%s in %s is empty", what, source)
	case bytes.ContainsAny(b, "\r\n"):
		return "", fmt.Errorf("%s in %s spans more than one line", what, source)
	}
	return string(b), nil
}
