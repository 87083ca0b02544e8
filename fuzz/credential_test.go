package fuzz

import (
	"crypto/aes"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/verifyd/verifyd/verify/credential"
)

// fuzzChecksumKey is the fixed checksum key of FuzzClassify.
var fuzzChecksumKey = []byte("verifyd fuzz checksum key: 32+ bytes, fixed")

// referenceAPIKey builds the "vk_" key whose random part is the 32
// base64url characters random, computing the checksum directly from the
// format: the AES-256 CBC-MAC of random under SHA-256(key), first 6 bytes,
// unpadded base64url.
func referenceAPIKey(key []byte, random string) string {
	k := sha256.Sum256(key)
	block, err := aes.NewCipher(k[:])
	if err != nil {
		panic(err)
	}
	x := []byte(random[:16])
	block.Encrypt(x, x)
	for i := range x {
		x[i] ^= random[16+i]
	}
	block.Encrypt(x, x)
	return "vk_" + random + base64.RawURLEncoding.EncodeToString(x[:6])
}

// canonicalB64 reports whether s is the one unpadded base64url spelling of
// exactly n bytes: strict decoding succeeds, yields n bytes, and encoding
// them again gives s back (the decoder skips '\r' and '\n', so the length
// and round trip matter).
func canonicalB64(s string, n int) bool {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil && len(b) == n && base64.RawURLEncoding.EncodeToString(b) == s
}

// referenceClassify classifies tok from the format definitions with
// encoding/base64 and crypto/aes, independently of package credential.
func referenceClassify(key []byte, tok string) credential.Format {
	if strings.HasPrefix(tok, "ey") && strings.Contains(tok[:min(len(tok), 1024)], ".") && len(tok) > 2 {
		return credential.JWT
	}
	if len(tok) < credential.MinImportedLen || len(tok) > credential.MaxLen {
		return credential.Malformed
	}
	for i := range len(tok) {
		if tok[i] < 0x21 || tok[i] > 0x7E {
			return credential.Malformed
		}
	}
	switch {
	case strings.HasPrefix(tok, "vk_"):
		if len(tok) == 43 && canonicalB64(tok[3:35], 24) && tok == referenceAPIKey(key, tok[3:35]) {
			return credential.APIKey
		}
		return credential.Malformed
	case strings.HasPrefix(tok, "pat_"):
		if len(tok) == 70 && tok[26] == '_' && canonicalB64(tok[4:26], 16) && canonicalB64(tok[27:], 32) {
			return credential.PAT
		}
		return credential.Malformed
	case canonicalB64(tok, 32):
		return credential.Agent
	}
	return credential.Imported
}

// FuzzClassify checks that Classify never panics and agrees with a reference
// reading of the formats, plus the properties callers rely on: nothing over
// MaxLen is well-formed, a PAT's id is the 22 characters at offset 4 followed
// by '_', an API key is 43 characters starting with "vk_", every well-formed
// credential is printable ASCII without space, and ValidateImported accepts
// exactly the imported and agent classes.
func FuzzClassify(f *testing.F) {
	m, err := credential.NewMinter(fuzzChecksumKey)
	if err != nil {
		f.Fatal(err)
	}
	apiKey := referenceAPIKey(fuzzChecksumKey, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYX")
	pat := "pat_" + "_____________________w" + "_" + "__________________________________________8"
	agent := "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
	seeds := []struct {
		tok  string
		want credential.Format
	}{
		{apiKey, credential.APIKey},
		{apiKey[:35] + "AAAAAAAA", credential.Malformed},
		{apiKey + "\n", credential.Malformed},
		{agent, credential.Agent},
		{agent[:42] + "9", credential.Imported}, // the unused low bits of the last character set
		{pat, credential.PAT},
		{"PAT_" + pat[4:], credential.Imported},
		{pat + "\n", credential.Malformed},
		{"pat__x", credential.Malformed},
		{"pat_" + strings.Repeat("A", 10<<10), credential.Malformed},
		{"legacy-ams-key-0001", credential.Imported},
		{"legacy ams key 0001", credential.Malformed},
		{"", credential.Malformed},
		{"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln", credential.JWT},
		{"ey." + strings.Repeat(".", 5000), credential.JWT},
		{"ey" + strings.Repeat("A", 1022) + ".x", credential.Malformed},
		{"eyJhbGciOiJIUzI1NiJ9", credential.Imported},
	}
	for _, s := range seeds {
		if got := m.Classify(s.tok); got != s.want {
			f.Fatalf("seed %.80q: Classify = %v, want %v", s.tok, got, s.want)
		}
		f.Add(s.tok)
	}

	f.Fuzz(func(t *testing.T, tok string) {
		got := m.Classify(tok)
		if want := referenceClassify(fuzzChecksumKey, tok); got != want {
			t.Fatalf("Classify(%q) = %v, reference %v", tok, got, want)
		}
		if got == credential.JWT {
			if !strings.HasPrefix(tok, "ey") || !strings.Contains(tok, ".") || credential.ValidateImported(tok) == nil {
				t.Fatalf("Classify(%q) = jwt: want \"ey\", a '.', and not importable", tok)
			}
			return
		}
		if len(tok) > credential.MaxLen && got != credential.Malformed {
			t.Fatalf("Classify of %d bytes = %v", len(tok), got)
		}
		if got != credential.Malformed {
			for i := range len(tok) {
				if tok[i] < 0x21 || tok[i] > 0x7E {
					t.Fatalf("Classify(%q) = %v with byte %#x at %d", tok, got, tok[i], i)
				}
			}
		}
		if got == credential.APIKey && (len(tok) != 43 || !strings.HasPrefix(tok, "vk_")) {
			t.Fatalf("api key %q: want 43 characters starting with vk_", tok)
		}
		id, ok := credential.PATID(tok)
		if ok != (got == credential.PAT) {
			t.Fatalf("PATID(%q) ok = %v for a %v", tok, ok, got)
		}
		if ok && (len(id) != 22 || id != tok[4:26] || tok[26] != '_') {
			t.Fatalf("PATID(%q) = %q: want the 22 characters at offset 4, then '_'", tok, id)
		}
		importable := credential.ValidateImported(tok) == nil
		if importable != (got == credential.Imported || got == credential.Agent) {
			t.Fatalf("ValidateImported(%q) ok = %v for a %v", tok, importable, got)
		}
	})
}
