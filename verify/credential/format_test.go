package credential

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"sync"
	"testing"
)

func TestFormatString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		f    Format
		want string
	}{
		{Malformed, "malformed"},
		{APIKey, "api_key"},
		{Agent, "agent"},
		{PAT, "pat"},
		{Imported, "imported"},
		{Format(200), "format(200)"},
	} {
		if got := tc.f.String(); got != tc.want {
			t.Errorf("Format(%d).String() = %q, want %q", uint8(tc.f), got, tc.want)
		}
	}
	var zero Format
	if zero != Malformed {
		t.Errorf("zero Format is %v, want malformed", zero)
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	m := newTestMinter(t, testKey)

	apiKey := fixedAPIKey(t, m, 0x5A)
	agent := base64.RawURLEncoding.EncodeToString(fill(agentKeyBytes, 0x11))
	pat := fixedPAT(t, 0x22, 0x33)
	patUnderscoreID := fixedPAT(t, 0xFF, 0x33)     // id "_____________________w"
	patUnderscoreSecret := fixedPAT(t, 0x22, 0xFF) // secret "___…_8"
	patUnderscores := fixedPAT(t, 0xFF, 0xFF)
	otherPAT := fixedPAT(t, 0x44, 0x55)
	mixedPAT := pat[:patSecretStart] + otherPAT[patSecretStart:]
	imported := "AMS-legacy-key.0123456789"

	if !strings.Contains(patUnderscoreID[patIDStart:patIDEnd], "_") ||
		!strings.Contains(patUnderscoreSecret[patSecretStart:], "_") ||
		!strings.HasPrefix(patUnderscores[patSecretStart:], "_") {
		t.Fatalf("vectors lack '_' inside their base64url parts: %q %q %q", patUnderscoreID, patUnderscoreSecret, patUnderscores)
	}

	tests := []struct {
		name string
		tok  string
		want Format
	}{
		{"empty", "", Malformed},
		{"one byte", "a", Malformed},
		{"imported 15 bytes", strings.Repeat("k", 15), Malformed},
		{"imported 16 bytes", strings.Repeat("k", 16), Imported},
		{"imported", imported, Imported},
		{"imported 512 bytes", strings.Repeat("~", MaxLen), Imported},
		{"imported 513 bytes", strings.Repeat("~", MaxLen+1), Malformed},
		{"imported 10 kB", strings.Repeat("k", 10<<10), Malformed},
		{"imported trailing newline", imported + "\n", Malformed},
		{"imported CRLF", imported + "\r\n", Malformed},
		{"imported space", "legacy key 0123456789", Malformed},
		{"imported leading space", " " + imported, Malformed},
		{"imported tab", "legacy\tkey0123456789", Malformed},
		{"imported NUL", "legacy\x00key0123456789", Malformed},
		{"imported DEL", "legacy\x7Fkey0123456789", Malformed},
		{"imported non-ASCII", "légacy-key-0123456789", Malformed},
		{"imported invalid UTF-8", "legacy\xffkey0123456789", Malformed},
		{"imported all printable", "!\"#$%&'()*+,-./0123456789:;<=>?@[\\]^_`{|}~", Imported},
		{"JWT shape", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJlc2lnbmF0dXJl", JWT},
		{"JWT shape beyond MaxLen", "eyJhbGciOiJIUzI1NiJ9." + strings.Repeat("A", 4000) + ".c2ln", JWT},
		{"JWT shape of dots only", "ey" + strings.Repeat(".", 5000), JWT},
		{"ey without a dot", "eyJhbGciOiJIUzI1NiJ9", Imported},
		{"ey with a late dot", "ey" + strings.Repeat("A", 1100) + ".x", Malformed},
		{"dots without ey", "abc.def.ghijklmnopq", Imported},

		{"api key", apiKey, APIKey},
		{"api key trailing newline", apiKey + "\n", Malformed},
		{"api key truncated", apiKey[:apiKeyLen-1], Malformed},
		{"api key extended", apiKey + "A", Malformed},
		{"api key padded", apiKey + "=", Malformed},
		{"api key standard alphabet", "vk_" + strings.Repeat("+", apiKeyRandomLen) + apiKey[apiKeyMACInputLen:], Malformed},
		{"api key zero checksum", apiKey[:apiKeyMACInputLen] + "AAAAAAAA", Malformed},
		{"api key checksum of other random part", "vk_" + strings.Repeat("A", apiKeyRandomLen) + apiKey[apiKeyMACInputLen:], Malformed},
		{"api key upper-case prefix", "VK_" + apiKey[3:] + "!", Imported},
		{"vk_ prefix only", "vk_", Malformed},
		{"vk_ short", "vk_0123456789abcdef", Malformed},
		{"vk_ 512 bytes", "vk_" + strings.Repeat("A", MaxLen-3), Malformed},

		{"agent", agent, Agent},
		{"agent trailing newline", agent + "\n", Malformed},
		{"agent leading space", " " + agent, Malformed},
		{"agent 42 chars", agent[:agentKeyLen-1], Imported},
		{"agent 44 chars", agent + "A", Imported},
		{"agent padded", agent + "=", Imported},
		{"agent low bits of last char set", setLastLowBits(t, agent, 2), Imported},
		{"agent standard alphabet", strings.Repeat("+", agentKeyLen-1) + "A", Imported},

		{"pat", pat, PAT},
		{"pat id containing _", patUnderscoreID, PAT},
		{"pat secret containing _", patUnderscoreSecret, PAT},
		{"pat id and secret of _", patUnderscores, PAT},
		{"pat prefix with another pat's secret", mixedPAT, PAT},
		{"pat__x", "pat__x", Malformed},
		{"pat__x padded to 70", "pat__x" + strings.Repeat("A", patLen-6), Malformed},
		{"pat_ only", "pat_", Malformed},
		{"pat_ + 10 kB", "pat_" + strings.Repeat("A", 10<<10), Malformed},
		{"pat_ + 508", "pat_" + strings.Repeat("A", MaxLen-4), Malformed},
		{"PAT_ upper case", "PAT_" + pat[4:], Imported},
		{"Pat_ mixed case", "Pat_" + pat[4:], Imported},
		{"pat trailing newline", pat + "\n", Malformed},
		{"pat truncated", pat[:patLen-1], Malformed},
		{"pat extended", pat + "A", Malformed},
		{"pat separator -", pat[:patIDEnd] + "-" + pat[patSecretStart:], Malformed},
		{"pat separator shifted", pat[:patIDEnd-1] + "__" + pat[patSecretStart:], Malformed},
		{"pat id low bits set", pat[:patIDStart] + setLastLowBits(t, pat[patIDStart:patIDEnd], 4) + pat[patIDEnd:], Malformed},
		{"pat secret low bits set", setLastLowBits(t, pat, 2), Malformed},
		{"pat id with =", pat[:patIDEnd-1] + "=" + pat[patIDEnd:], Malformed},
		{"pat newline in id", pat[:patIDStart+3] + "\n" + pat[patIDStart+4:], Malformed},
		{"pat id of 21 chars", pat[:patIDEnd-1] + "_" + pat[patIDEnd:patLen-1], Malformed},
		{"pat no separator", "pat_" + strings.Repeat("A", patLen-4), Malformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := m.Classify(tc.tok); got != tc.want {
				t.Errorf("Classify(%.80q) = %v, want %v", tc.tok, got, tc.want)
			}
			_, isPAT := PATID(tc.tok)
			if isPAT != (tc.want == PAT) {
				t.Errorf("PATID ok = %v for a %v", isPAT, tc.want)
			}
			importable := ValidateImported(tc.tok) == nil
			if want := tc.want == Imported || tc.want == Agent; importable != want {
				t.Errorf("ValidateImported ok = %v for a %v", importable, tc.want)
			}
		})
	}
}

// TestClassifyDistinctSpellings checks the vectors that are well-formed yet
// differ from a real credential: each is a different string, so its digest
// differs and the store lookup cannot find the original's record.
func TestClassifyDistinctSpellings(t *testing.T) {
	t.Parallel()
	m := newTestMinter(t, testKey)
	agent := base64.RawURLEncoding.EncodeToString(fill(agentKeyBytes, 0x11))
	pat := fixedPAT(t, 0x22, 0x33)
	other := fixedPAT(t, 0x44, 0x55)
	mixed := pat[:patSecretStart] + other[patSecretStart:]

	for _, tc := range []struct {
		name       string
		orig, near string
		want       Format
		sameBytes  bool // near decodes (leniently) to the same bytes as orig
	}{
		{"agent low bits of last char", agent, setLastLowBits(t, agent, 2), Imported, true},
		{"pat prefix with another pat's secret", pat, mixed, PAT, false},
		{"pat prefix with another pat's secret, vs that pat", other, mixed, PAT, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := m.Classify(tc.near); got != tc.want {
				t.Fatalf("Classify(%q) = %v, want %v", tc.near, got, tc.want)
			}
			if sha256.Sum256([]byte(tc.near)) == sha256.Sum256([]byte(tc.orig)) {
				t.Fatalf("%q and %q have the same digest", tc.near, tc.orig)
			}
			if tc.sameBytes {
				a, errA := base64.RawURLEncoding.DecodeString(tc.orig)
				b, errB := base64.RawURLEncoding.DecodeString(tc.near)
				if errA != nil || errB != nil || string(a) != string(b) {
					t.Fatalf("lenient decoding of %q and %q differs; the vector is wrong", tc.orig, tc.near)
				}
				if _, err := base64.RawURLEncoding.Strict().DecodeString(tc.near); err == nil {
					t.Fatalf("strict decoding accepts %q", tc.near)
				}
			}
		})
	}
	if id, ok := PATID(mixed); !ok || id != pat[patIDStart:patIDEnd] {
		t.Fatalf("PATID(mixed) = %q, %v; want the first PAT's id", id, ok)
	}
}

// TestClassifyForgedChecksum changes every character of a valid API key to
// every printable byte. With the "vk_" prefix kept, each result is
// Malformed; with the prefix changed the string leaves the API-key format
// and is classified by the other rules, never as an API key.
func TestClassifyForgedChecksum(t *testing.T) {
	t.Parallel()
	m := newTestMinter(t, testKey)
	for _, key := range []string{fixedAPIKey(t, m, 0x00), fixedAPIKey(t, m, 0xA7)} {
		if got := m.Classify(key); got != APIKey {
			t.Fatalf("Classify(%q) = %v, want api_key", key, got)
		}
		for i := range len(key) {
			for c := byte(0x21); c <= 0x7E; c++ {
				if c == key[i] {
					continue
				}
				forged := replaceAt(key, i, c)
				got := m.Classify(forged)
				if i >= len(apiKeyPrefix) && got != Malformed {
					t.Fatalf("Classify(%q) = %v, want malformed (byte %d changed)", forged, got, i)
				}
				if got == APIKey {
					t.Fatalf("Classify(%q) = api_key (byte %d changed)", forged, i)
				}
			}
		}
	}
}

func TestClassifyOtherChecksumKey(t *testing.T) {
	t.Parallel()
	m := newTestMinter(t, testKey)
	other := newTestMinter(t, otherKey)
	for range 200 {
		k, err := other.NewAPIKey()
		if err != nil {
			t.Fatal(err)
		}
		if got := other.Classify(k); got != APIKey {
			t.Fatalf("minting Minter: Classify(%q) = %v, want api_key", k, got)
		}
		if got := m.Classify(k); got != Malformed {
			t.Fatalf("other Minter: Classify(%q) = %v, want malformed", k, got)
		}
	}
}

// TestClassifyConcurrent shares one Minter between goroutines that mint and
// classify, for the race detector.
func TestClassifyConcurrent(t *testing.T) {
	t.Parallel()
	m := newTestMinter(t, testKey)
	forged := fixedAPIKey(t, m, 1)
	forged = forged[:apiKeyLen-1] + string(alphabet[(decodeMap[forged[apiKeyLen-1]]+1)%64])
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for range 4 {
		wg.Go(func() {
			for range 300 {
				k, err := m.NewAPIKey()
				if err != nil {
					errs <- err.Error()
					return
				}
				if m.Classify(k) != APIKey || m.Classify(forged) != Malformed {
					errs <- "wrong class for " + k
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
