package trust

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/verifyd/verifyd/verify/jwt"
)

// wycheproofJWK is testdata/wycheproof_json_web_key_test.json.
type wycheproofJWK struct {
	NumberOfTests int `json:"numberOfTests"`
	TestGroups    []struct {
		Comment string          `json:"comment"`
		Private json.RawMessage `json:"private"`
		Public  json.RawMessage `json:"public"`
		Tests   []struct {
			TcID    int      `json:"tcId"`
			Comment string   `json:"comment"`
			JWS     string   `json:"jws"`
			Result  string   `json:"result"`
			Flags   []string `json:"flags"`
		} `json:"tests"`
	} `json:"testGroups"`
}

// TestWycheproofJWK runs every Wycheproof JWK vector through the paths the
// daemon uses: the group's key set (its public set when it has one) goes
// through ParseJWKS, and the verdict on the vector's token is what the
// registry would allow.
//
// No group is a key set verifyd accepts: each holds symmetric keys (which
// never come from a key set), RSA keys (skipped: no usable key), or an EC
// key with a flaw. The operator's only way to trust HMAC keys is to
// configure them as HS256 secrets; a group whose keys are all HS256 oct
// keys is therefore also loaded that way, through New and ParseSecret from
// secret files, and its HS256 tokens are checked with the key the registry
// resolves. Keys labelled for HS384, HS512 or AES are not HS256 secrets
// and are not configured (their tokens' algorithms are refused anyway).
func TestWycheproofJWK(t *testing.T) {
	data, err := os.ReadFile("testdata/wycheproof_json_web_key_test.json")
	if err != nil {
		t.Fatal(err)
	}
	var file wycheproofJWK
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}

	// Why ParseJWKS rejects each group's key set, by the first tcId of the
	// group.
	setErr := map[int]string{
		1:  `symmetric key (kty "oct")`,                       // jws_mixedSymmetryKeyset
		2:  `symmetric key (kty "oct")`,                       // jws_keyset
		4:  `symmetric key (kty "oct")`,                       // jws_duplicate_kid
		5:  "no usable ES256 key (1 keys, 1 not for verifyd)", // RS256
		6:  "no usable ES256 key (1 keys, 1 not for verifyd)", // RSA encryption key
		7:  "no usable ES256 key (1 keys, 1 not for verifyd)", // ROCA RSA key
		8:  "no usable ES256 key (1 keys, 1 not for verifyd)", // 1024-bit RSA key
		9:  "no usable ES256 key (1 keys, 1 not for verifyd)", // RSA exponent 1
		10: `symmetric key (kty "oct")`,                       // short HS256 key (private set only)
		11: `symmetric key (kty "oct")`,
		12: `symmetric key (kty "oct")`,
		13: `symmetric key (kty "oct")`,
		14: `symmetric key (kty "oct")`,
		15: `symmetric key (kty "oct")`,
		16: `symmetric key (kty "oct")`,
		17: `symmetric key (kty "oct")`,
		18: `symmetric key (kty "oct")`,
		19: `alg "ES521" on a P-256 key`,                      // mismatchedAlgAndCurve
		20: `alg "ES224" on a P-256 key`,                      // mismatchedAlgAndCurve
		21: "no usable ES256 key (1 keys, 1 not for verifyd)", // use "enc": skipped
		22: "x, y is not a point of P-256",                    // invalid point
		23: `alg ES256 on curve "P-384"`,                      // P-256 coordinates labelled P-384 and ES256
		24: "no usable ES256 key (1 keys, 1 not for verifyd)", // kty RSA holding EC members: skipped
		25: `symmetric key (kty "oct")`,                       // AES-GCM key
		26: `symmetric key (kty "oct")`,                       // AES key wrap key
	}
	// Vectors whose label does not fit verifyd's profile: valid elsewhere,
	// refused here.
	labelDoesNotFit := map[int]string{
		5:  "a valid RS256 token: verifyd verifies ES256 and HS256 only, and skips RSA keys",
		14: "a valid HS384 token: verifyd accepts HS256 only",
		15: "a valid HS512 token: verifyd accepts HS256 only",
	}

	count := 0
	for _, g := range file.TestGroups {
		first := g.Tests[0].TcID
		keySet := g.Public
		if keySet == nil {
			keySet = g.Private
		}
		t.Run(fmt.Sprintf("group %d %s", first, g.Comment), func(t *testing.T) {
			want, ok := setErr[first]
			if !ok {
				t.Fatalf("no expectation for the group of tcId %d", first)
			}
			if _, err := ParseJWKS(keySet, testProfile); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("ParseJWKS(key set) = %v, want an error containing %q", err, want)
			}
			if g.Public != nil { // the private counterpart publishes "d"
				if _, err := ParseJWKS(g.Private, testProfile); err == nil || !strings.Contains(err.Error(), `private key ("d")`) {
					t.Errorf("ParseJWKS(private set) = %v, want a private key error", err)
				}
			}

			r, secrets := hs256Registry(t, keySet)
			for _, tc := range g.Tests {
				count++
				valid, why := verdict(t, r, secrets, tc.JWS)
				wantValid := tc.Result == "valid"
				if reason, misfit := labelDoesNotFit[tc.TcID]; misfit {
					wantValid = false
					why += "; " + reason
				}
				if valid != wantValid {
					t.Errorf("tcId %d (%s, %s): verdict valid=%v (%s), want valid=%v", tc.TcID, tc.Comment, tc.Result, valid, why, wantValid)
				}
			}
		})
	}
	if count != file.NumberOfTests || count != 26 {
		t.Errorf("ran %d vectors, the file has %d", count, file.NumberOfTests)
	}
}

// hs256Registry configures the keys of set as HS256 secrets in files, when
// they are all HS256 oct keys, and returns the registry (nil when there is
// none or New refuses the secrets) and the secrets by kid.
func hs256Registry(t *testing.T, set json.RawMessage) (*Registry, map[string][]byte) {
	var doc struct {
		Keys []struct {
			Kty string `json:"kty"`
			Alg string `json:"alg"`
			Kid string `json:"kid"`
			K   string `json:"k"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(set, &doc); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	src := Source{Name: "wycheproof"}
	secrets := make(map[string][]byte)
	for i, k := range doc.Keys {
		if k.Kty != "oct" || k.Alg != "HS256" {
			return nil, nil
		}
		path := filepath.Join(dir, fmt.Sprint("secret-", i))
		writeFile(t, path, []byte(k.K))
		src.HS256 = append(src.HS256, Secret{Kid: k.Kid, SecretFile: path})
		secrets[k.Kid], _ = base64.RawURLEncoding.DecodeString(k.K)
	}
	r, err := New(Config{Sources: []Source{src}}, &Options{Logger: quietLogger()})
	if err != nil {
		t.Logf("New refuses the secrets: %v", err)
		return nil, nil
	}
	t.Cleanup(func() { r.Close() })
	return r, secrets
}

// verdict reports whether the registry r would let the compact JWS token
// verify, and why.
func verdict(t *testing.T, r *Registry, secrets map[string][]byte, token string) (bool, string) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %s", token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	var header struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(raw, &header); err != nil {
		t.Fatal(err)
	}
	alg, err := jwt.ParseAlg(header.Alg)
	if err != nil {
		return false, "algorithm " + header.Alg + " refused"
	}
	if r == nil {
		return false, "no key of the group is trusted"
	}
	if _, err := r.ResolveKey(alg, header.Kid); err != nil {
		return false, err.Error()
	}
	if alg != jwt.HS256 {
		t.Fatalf("resolved an %v key from HS256 secrets", alg)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return false, "signature encoding"
	}
	mac := hmac.New(sha256.New, secrets[header.Kid])
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(mac.Sum(nil), sig) {
		return false, "the resolved key's MAC differs"
	}
	return true, "the resolved key's MAC matches"
}
