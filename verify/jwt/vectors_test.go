package jwt

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// The Wycheproof and RFC 7515 vectors in testdata/ (see its README), fed
// through the functions the daemon uses: (*Key).verifyES256 and
// (*Key).verifyHS256 for the primitives, Verifier.Verify for tokens.

func readJSON(t testing.TB, name string, v any) {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("hex %q: %v", s, err)
	}
	return b
}

type wycheproofECDSA struct {
	NumberOfTests int `json:"numberOfTests"`
	TestGroups    []struct {
		PublicKey struct {
			Curve        string `json:"curve"`
			Uncompressed string `json:"uncompressed"`
		} `json:"publicKey"`
		SHA   string `json:"sha"`
		Tests []struct {
			TcID    int      `json:"tcId"`
			Comment string   `json:"comment"`
			Flags   []string `json:"flags"`
			Msg     string   `json:"msg"`
			Sig     string   `json:"sig"`
			Result  string   `json:"result"`
		} `json:"tests"`
	} `json:"testGroups"`
}

func TestWycheproofECDSA(t *testing.T) {
	t.Parallel()
	total, valid := runECDSAVectors(t)
	if total != 262 || valid != 173 {
		t.Fatalf("%d vectors, %d valid; want 262 and 173", total, valid)
	}
	t.Logf("ecdsa_secp256r1_sha256_p1363: %d/%d passed (%d valid, %d invalid)", total, total, valid, total-valid)
}

// runECDSAVectors checks every vector of
// wycheproof_ecdsa_secp256r1_sha256_p1363_test.json with verifyES256 over
// the message, under a key built by NewES256Key from the vector's
// uncompressed point, and returns the number of vectors and of valid ones.
// A vector is accepted iff its result is "valid". The file has no
// "acceptable" vectors; should a later version add some, they are counted
// and may go either way.
func runECDSAVectors(t *testing.T) (total, valid int) {
	t.Helper()
	var f wycheproofECDSA
	readJSON(t, "wycheproof_ecdsa_secp256r1_sha256_p1363_test.json", &f)
	acceptable := 0
	for _, g := range f.TestGroups {
		if g.PublicKey.Curve != "secp256r1" || g.SHA != "SHA-256" {
			t.Fatalf("group for %s/%s", g.PublicKey.Curve, g.SHA)
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), unhex(t, g.PublicKey.Uncompressed))
		if err != nil {
			t.Fatalf("public key: %v", err)
		}
		key, err := NewES256Key("", pub, testProfile())
		if err != nil {
			t.Fatalf("NewES256Key: %v", err)
		}
		for _, tc := range g.Tests {
			total++
			got := key.verifyES256(string(unhex(t, tc.Msg)), unhex(t, tc.Sig))
			switch tc.Result {
			case "valid":
				valid++
				if !got {
					t.Errorf("tc%d (%s, %v): valid signature refused", tc.TcID, tc.Comment, tc.Flags)
				}
			case "invalid":
				if got {
					t.Errorf("tc%d (%s, %v): invalid signature accepted", tc.TcID, tc.Comment, tc.Flags)
				}
			case "acceptable":
				acceptable++
			default:
				t.Fatalf("tc%d: result %q", tc.TcID, tc.Result)
			}
		}
	}
	if total != f.NumberOfTests {
		t.Fatalf("ran %d vectors, the file declares %d", total, f.NumberOfTests)
	}
	if acceptable != 0 {
		t.Logf("%d acceptable vectors, not asserted", acceptable)
	}
	return total, valid
}

type wycheproofMAC struct {
	NumberOfTests int `json:"numberOfTests"`
	TestGroups    []struct {
		KeySize int `json:"keySize"`
		TagSize int `json:"tagSize"`
		Tests   []struct {
			TcID    int    `json:"tcId"`
			Comment string `json:"comment"`
			Key     string `json:"key"`
			Msg     string `json:"msg"`
			Tag     string `json:"tag"`
			Result  string `json:"result"`
		} `json:"tests"`
	} `json:"testGroups"`
}

// TestWycheproofHMAC runs wycheproof_hmac_sha256_test.json in three
// categories: full 32-byte tags under keys of at least 32 bytes go through
// NewHS256Key and verifyHS256 and must agree with the label; truncated
// tags must be refused whatever the label (HS256 tags are 32 bytes); keys
// under 32 bytes must be refused by NewHS256Key (K1).
func TestWycheproofHMAC(t *testing.T) {
	t.Parallel()
	var f wycheproofMAC
	readJSON(t, "wycheproof_hmac_sha256_test.json", &f)
	var full, fullValid, truncated, shortKey int
	for _, g := range f.TestGroups {
		for _, tc := range g.Tests {
			key, msg, tag := unhex(t, tc.Key), unhex(t, tc.Msg), unhex(t, tc.Tag)
			if len(key)*8 != g.KeySize || len(tag)*8 != g.TagSize {
				t.Fatalf("tc%d: sizes do not match the group", tc.TcID)
			}
			if len(key) < MinSecretBytes {
				shortKey++
				if _, err := NewHS256Key("k", key, testProfile()); err == nil {
					t.Errorf("tc%d: NewHS256Key accepted a %d-byte key", tc.TcID, len(key))
				}
				continue
			}
			k := mustHS256Key(t, "k", key, testProfile())
			got := k.verifyHS256(string(msg), tag)
			if len(tag) != 32 {
				truncated++
				if got {
					t.Errorf("tc%d: a %d-byte tag was accepted", tc.TcID, len(tag))
				}
				// A truncated tag labelled valid is a prefix of the full
				// tag, which does verify.
				if tc.Result == "valid" && !k.verifyHS256(string(msg), hs256Tag(key, string(msg))[:32]) {
					t.Errorf("tc%d: the full tag does not verify", tc.TcID)
				}
				if tc.Result == "valid" && !bytes.HasPrefix(hs256Tag(key, string(msg)), tag) {
					t.Errorf("tc%d: the truncated tag is not a prefix of the full tag", tc.TcID)
				}
				continue
			}
			full++
			want := tc.Result == "valid"
			if want {
				fullValid++
			}
			if got != want {
				t.Errorf("tc%d (%s): verifyHS256 = %v, label %q", tc.TcID, tc.Comment, got, tc.Result)
			}
		}
	}
	t.Logf("hmac_sha256: full-length %d/%d (%d valid, %d invalid), truncated refused %d/%d, short keys refused %d/%d",
		full, full, fullValid, full-fullValid, truncated, truncated, shortKey, shortKey)
	if full == 0 || fullValid == 0 || truncated == 0 || shortKey == 0 {
		t.Fatalf("a category is empty: full %d (valid %d), truncated %d, short keys %d", full, fullValid, truncated, shortKey)
	}
	if full+truncated+shortKey != f.NumberOfTests || full != 84 || fullValid != 30 || truncated != 84 || shortKey != 6 {
		t.Fatalf("counts full %d (valid %d), truncated %d, short keys %d; want 84 (30), 84, 6 of %d",
			full, fullValid, truncated, shortKey, f.NumberOfTests)
	}
}

// signatureLayer runs the steps of Verify that come before the claims, in
// Verify's order and with the functions Verify calls: size cap, exactly two
// '.', the segment check, the header, key selection, the signature over the
// received bytes. It returns nil when the token would reach claim parsing.
//
// It exists because Verify cannot tell "refused at the signature" from
// "signature good, payload not a JWT claims set", and the Wycheproof JWS
// payloads ("foo", "Test") are not claims sets. Keep it in step with
// Verify: TestSignatureLayerMatchesVerify checks that both agree wherever
// Verify stops before the claims.
func signatureLayer(v *Verifier, token string) error {
	if len(token) > v.maxBytes {
		return fmt.Errorf("%w: too long", ErrMalformed)
	}
	if strings.Count(token, ".") != 2 {
		return fmt.Errorf("%w: not two '.'", ErrMalformed)
	}
	dot1 := strings.IndexByte(token, '.')
	dot2 := dot1 + 1 + strings.IndexByte(token[dot1+1:], '.')
	header, payload, signature := token[:dot1], token[dot1+1:dot2], token[dot2+1:]
	for i, segment := range []string{header, payload, signature} {
		if p := checkSegment(segment); p >= 0 {
			return segErrors[i][p]
		}
	}
	s := v.scratch.Get().(*scratch)
	defer v.scratch.Put(s)
	alg, kid, err := s.parseHeader(header)
	if err != nil {
		return err
	}
	key, err := v.keys.ResolveKey(alg, kid)
	if err != nil {
		return err
	}
	if key == nil || key.Alg() != alg || key.Retired() {
		return fmt.Errorf("%w: no key", ErrUntrustedKey)
	}
	if !s.checkSignature(key, token[:dot2], signature) {
		return fmt.Errorf("%w: signature", ErrBadSignature)
	}
	return nil
}

// checkLayers checks that Verify and signatureLayer agree on tok: a token
// the signature layer refuses is refused by Verify with the same class; a
// token it passes is accepted by Verify or refused for its payload
// (ErrMalformed from the claims JSON, or a claims class), never for its key
// or signature.
func checkLayers(t testing.TB, v *Verifier, tok string) (sigErr, err error) {
	t.Helper()
	sigErr = signatureLayer(v, tok)
	_, _, err = v.Verify(tok, now)
	if sigErr != nil {
		sc, e1 := classOf(sigErr)
		vc, e2 := classOf(err)
		if e1 != nil || e2 != nil || sc != vc {
			t.Errorf("signature layer: %v; Verify: %v", sigErr, err)
		}
		return sigErr, err
	}
	if errors.Is(err, ErrUntrustedKey) || errors.Is(err, ErrBadSignature) {
		t.Errorf("the signature layer passed, Verify refused the key or signature: %v", err)
	}
	return nil, err
}

type wycheproofJWS struct {
	TestGroups []struct {
		Comment string          `json:"comment"`
		Private json.RawMessage `json:"private"`
		Public  json.RawMessage `json:"public"`
		Tests   []struct {
			TcID    int    `json:"tcId"`
			Comment string `json:"comment"`
			JWS     string `json:"jws"`
			Result  string `json:"result"`
		} `json:"tests"`
	} `json:"testGroups"`
}

// jwsErrata corrects the labels the vectors README lists as wrong: tc367
// and tc370 are byte-identical to the valid tc357; tc372 and tc373 contain
// '?', not a base64url character.
var jwsErrata = map[int]bool{367: true, 370: true, 372: false, 373: false}

// TestWycheproofJWS runs the hs256, es256, base64 and SpecialCaseEs256
// groups: every token labelled invalid (after the errata) must be refused
// at or before the signature, every valid one must pass the signature
// layer. The payloads are not claims sets, so Verify itself refuses the
// valid ones after the signature (ErrMalformed: not a JSON object).
func TestWycheproofJWS(t *testing.T) {
	t.Parallel()
	var f wycheproofJWS
	readJSON(t, "wycheproof_json_web_signature_test.json", &f)
	p := &Profile{Source: "wycheproof", Leeway: testLeeway, AllowNoExp: true}
	wantGroups := map[string][2]int{"hs256": {17, 1}, "es256": {15, 1}, "base64": {21, 7}, "SpecialCaseEs256": {24, 1}}
	seen := map[string]bool{}
	for _, g := range f.TestGroups {
		want, ok := wantGroups[g.Comment]
		if !ok {
			continue
		}
		seen[g.Comment] = true
		var key *Key
		var err error
		var jwk map[string]string
		if err := json.Unmarshal(g.Private, &jwk); err != nil {
			t.Fatalf("group %s: private key: %v", g.Comment, err)
		}
		switch jwk["kty"] {
		case "oct":
			key, err = NewHS256Key(jwk["kid"], b64urlDecode(t, jwk["k"]), p)
		case "EC":
			jwk = nil
			if err := json.Unmarshal(g.Public, &jwk); err != nil {
				t.Fatalf("group %s: public key: %v", g.Comment, err)
			}
			if jwk["crv"] != "P-256" || jwk["d"] != "" {
				t.Fatalf("group %s: unexpected public key", g.Comment)
			}
			key, err = NewES256Key(jwk["kid"], jwkPublicKey(t, jwk["x"], jwk["y"]), p)
		default:
			t.Fatalf("group %s: key type %q", g.Comment, jwk["kty"])
		}
		if err != nil {
			t.Fatalf("group %s: key: %v", g.Comment, err)
		}
		v := mustVerifier(t, newResolver(key), nil)
		passed, valid := 0, 0
		for _, tc := range g.Tests {
			label := tc.Result == "valid"
			if fixed, ok := jwsErrata[tc.TcID]; ok {
				label = fixed
			}
			if label {
				valid++
			}
			sigErr, err := checkLayers(t, v, tc.JWS)
			switch {
			case strings.HasPrefix(tc.JWS, "{"):
				// JSON serialization: refused before anything else.
				if !errors.Is(err, ErrMalformed) || label {
					t.Errorf("tc%d (%s): JSON serialization: %v", tc.TcID, tc.Comment, err)
					continue
				}
			case label && sigErr != nil:
				t.Errorf("tc%d (%s): valid, but the signature layer refused it: %v", tc.TcID, tc.Comment, sigErr)
				continue
			case !label && sigErr == nil:
				t.Errorf("tc%d (%s): invalid, but it passed the signature layer (Verify: %v)", tc.TcID, tc.Comment, err)
				continue
			}
			if err == nil {
				t.Errorf("tc%d (%s): Verify accepted a payload that is not a claims set", tc.TcID, tc.Comment)
				continue
			}
			passed++
		}
		t.Logf("JWS group %s: %d/%d passed (%d valid after errata)", g.Comment, passed, len(g.Tests), valid)
		if len(g.Tests) != want[0] || valid != want[1] {
			t.Errorf("group %s: %d vectors, %d valid; want %d and %d", g.Comment, len(g.Tests), valid, want[0], want[1])
		}
	}
	if len(seen) != len(wantGroups) {
		t.Fatalf("groups found: %v", seen)
	}
}

// TestRFC7515Examples: the A.1 (HS256) and A.3 (ES256) tokens pass the
// signature layer although their header and payload JSON contain CRLF and
// spaces (the signature is over the received text), and Verify refuses
// them as expired (exp 1300819380 is in 2011); the copies with a modified
// payload are refused for their signature.
func TestRFC7515Examples(t *testing.T) {
	t.Parallel()
	r := loadRFC7515(t)
	v := r.verifier(t)
	for _, vec := range r.Vectors {
		t.Run(vec.Name, func(t *testing.T) {
			sigErr, err := checkLayers(t, v, vec.Token)
			switch vec.Signature {
			case "valid":
				if sigErr != nil {
					t.Fatalf("signature layer: %v", sigErr)
				}
				checkErr(t, err, ErrExpired)
				// Before exp the same token is not expired; it then fails
				// only for having no subject claim. So ErrExpired at now
				// comes from exp.
				_, _, err = v.Verify(vec.Token, time.Unix(1300819380, 0).Add(-time.Second))
				checkErr(t, err, ErrInvalidClaims)
			case "invalid":
				checkErr(t, sigErr, ErrBadSignature)
				checkErr(t, err, ErrBadSignature)
			default:
				t.Fatalf("expected_signature %q", vec.Signature)
			}
			h, _, _ := parts(t, vec.Token)
			if vec.Alg == "HS256" && !strings.Contains(unseg(t, h), "\r\n ") {
				t.Fatal("the A.1 header has no CRLF")
			}
		})
	}
}

// TestSignatureLayerMatchesVerify checks signatureLayer against Verify on
// tokens that stop at each step before the claims.
func TestSignatureLayerMatchesVerify(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	valid := signES256(es1Priv, hdrES1, payload())
	for _, tok := range []string{
		valid,
		signHS256(hs1Secret, hdrHS1, payload()),
		valid + strings.Repeat("A", DefaultMaxTokenBytes),
		"a.b",
		"a.b.c.d",
		valid + "=",
		signES256(es1Priv, `{"alg":"none"}`, payload()),
		signES256(es1Priv, `{"alg":"ES256","kid":"nope"}`, payload()),
		signES256(es2Priv, hdrES1, payload()),
		signHS256(hs2Secret, hdrHS1, payload()),
		signES256(es1Priv, hdrES1, payload("exp", at(-time.Hour))),
		signES256(es1Priv, hdrES1, "[]"),
	} {
		sigErr, err := checkLayers(t, f.v, tok)
		if sigErr == nil && tok != valid && err == nil && !strings.HasPrefix(tok, seg(hdrHS1)) {
			t.Errorf("%.40q...: accepted", tok)
		}
	}
}
