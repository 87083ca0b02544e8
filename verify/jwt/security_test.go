package jwt

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSecurity has one subtest per requirement of SECURITY.md §2.1-2.4,
// named after its row (S1-S9, H1-H10, K1-K8, C1-C8), plus identity
// extraction, key state and error texts. Each builds exactly the token the
// row describes and asserts the error class with errors.Is, or, for an
// accepted token, the claims.
//
// TestSecurity is not parallel so that its serial subtests may measure
// allocations (AllocsPerRun refuses to run beside parallel tests): they run
// inline, before the parallel subtests resume.
func TestSecurity(t *testing.T) {
	f := newFixture(t)
	var cases []secCase
	for _, group := range []func(*testing.T, *fixture) []secCase{
		structureCases, headerCases, keyCases, claimCases, identityCases, keyStateCases, errorTextCases,
	} {
		cases = append(cases, group(t, f)...)
	}
	seen := make(map[string]bool)
	for _, c := range cases {
		if seen[c.name] {
			t.Fatalf("duplicate case name %q", c.name)
		}
		seen[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			if !c.serial {
				t.Parallel()
			}
			if c.run != nil {
				c.run(t)
				return
			}
			v := c.v
			if v == nil {
				v = f.v
			}
			claims, key, err := v.Verify(c.tok, now)
			t.Logf("Verify: %v", err)
			checkErr(t, err, c.want)
			if err != nil {
				if key != nil || !claimsZero(claims) {
					t.Fatalf("refused token returned a key or claims: %v, %+v", key, claims)
				}
				return
			}
			if key == nil {
				t.Fatal("accepted token returned no key")
			}
			if c.check != nil {
				c.check(t, claims, key)
			}
		})
	}
}

// secCase is one named construction. Either tok is verified (with v, or
// the fixture's verifier) and must give want, or run does the whole test.
type secCase struct {
	name  string
	tok   string
	v     *Verifier
	want  error
	check func(t *testing.T, c Claims, k *Key)
	run   func(t *testing.T)
	// serial runs the case outside the parallel phase (for AllocsPerRun).
	serial bool
}

func claimsZero(c Claims) bool {
	return c.Subject == "" && c.Roles == nil && c.Realm == "" && c.Scopes == nil && c.ID == "" &&
		c.Issuer == "" && c.Audience == nil && c.AuthorizedParty == "" &&
		c.ExpiresAt.IsZero() && c.NotBefore.IsZero() && c.IssuedAt.IsZero()
}

// subjectIs checks the subject of an accepted token.
func subjectIs(want string) func(*testing.T, Claims, *Key) {
	return func(t *testing.T, c Claims, _ *Key) {
		t.Helper()
		if c.Subject != want {
			t.Fatalf("subject %q, want %q", c.Subject, want)
		}
	}
}

// b64Alphabet is the base64url alphabet in value order.
const b64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// unusedBitsSet returns seg with its last character replaced by the one
// with the same used (high) bits and the lowest unused bit set: a
// non-canonical spelling of the same bytes. seg's length must not be a
// multiple of 4.
func unusedBitsSet(t testing.TB, seg string) string {
	t.Helper()
	if len(seg)%4 == 0 {
		t.Fatalf("segment of length %d has no unused bits", len(seg))
	}
	last := strings.IndexByte(b64Alphabet, seg[len(seg)-1])
	return seg[:len(seg)-1] + string(b64Alphabet[last^1])
}

// verifierWith returns a verifier trusting es-1 (es1Priv) and hs-1 under p.
func verifierWith(t testing.TB, p *Profile) *Verifier {
	t.Helper()
	return mustVerifier(t, newResolver(mustES256Key(t, "es-1", es1Priv, p), mustHS256Key(t, "hs-1", hs1Secret, p)), nil)
}

// §2.1 Structure and encoding.
func structureCases(t *testing.T, f *fixture) []secCase {
	valid := signES256(es1Priv, hdrES1, payload())
	h, p, s := parts(t, valid)

	// A token with '-' or '_' in it, for the alphabet swap.
	var dashed string
	for i := 0; dashed == ""; i++ {
		tok := signES256(es1Priv, hdrES1, payload("jti", fmt.Sprintf("tok-%d", i)))
		if strings.ContainsAny(tok, "-_") {
			dashed = tok
		}
	}

	// A payload whose segment has unused bits, signed over the received
	// (non-canonical) text.
	var pl string
	for i := 0; ; i++ {
		pl = payload("jti", fmt.Sprintf("tok-%d", i))
		if len(seg(pl))%4 != 0 {
			break
		}
	}
	oddIn := seg(hdrES1) + "." + unusedBitsSet(t, seg(pl))
	r, sv := es256RS(es1Priv, oddIn)
	oddSigned := oddIn + "." + base64.RawURLEncoding.EncodeToString(rawRS(r, sv))

	expired := at(-2 * time.Hour)
	future := at(time.Hour)

	wsHeader := "{\"alg\":\"ES256\",\r\n \"kid\":\"es-1\"}"
	wsTok := signES256(es1Priv, wsHeader, payload())
	_, wsP, wsS := parts(t, wsTok)

	nest := func(n int) rawJSON {
		return rawJSON(strings.Repeat("[", n) + "1" + strings.Repeat("]", n))
	}

	rfc := loadRFC7515(t)

	return []secCase{
		{name: "S1/compact_accepted", tok: valid, check: func(t *testing.T, c Claims, k *Key) {
			if c.Subject != "alice" || c.Issuer != testIssuer || c.ID != "tok-1" ||
				!c.ExpiresAt.Equal(time.Unix(at(time.Hour), 0)) || !c.IssuedAt.Equal(time.Unix(at(-time.Minute), 0)) ||
				!c.NotBefore.IsZero() || k != f.es1 {
				t.Fatalf("claims %+v, key %v", c, k.ID())
			}
		}},
		{name: "S1/compact_accepted_hs256", tok: signHS256(hs1Secret, hdrHS1, payload()), check: func(t *testing.T, c Claims, k *Key) {
			if c.Subject != "alice" || k != f.hs1 {
				t.Fatalf("claims %+v, key %v", c, k.ID())
			}
		}},
		{name: "S1/json_serialization_flattened", want: ErrMalformed,
			tok: fmt.Sprintf(`{"protected":%q,"payload":%q,"signature":%q}`, h, p, s)},
		{name: "S1/json_serialization_flattened_forged_claims", want: ErrMalformed,
			tok: fmt.Sprintf(`{"protected":%q,"payload":%q,"signature":%q,"iss":%q,"aud":%q,"sub":"admin","exp":%d}`,
				h, p, s, testIssuer, testAudience, future)},
		{name: "S1/json_serialization_general", want: ErrMalformed,
			tok: fmt.Sprintf(`{"payload":%q,"signatures":[{"protected":%q,"signature":%q}]}`, p, h, s)},
		{name: "S1/fourth_segment", want: ErrMalformed, tok: valid + "." + seg(`{}`)},
		{name: "S1/trailing_dot", want: ErrMalformed, tok: valid + "."},
		{name: "S1/jwe_five_parts", want: ErrMalformed,
			tok: seg(`{"alg":"RSA-OAEP","enc":"A256GCM"}`) + ".AAAA.AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA"},
		{name: "S1/two_segments", want: ErrMalformed, tok: h + "." + p},

		{name: "S2/5000_dots", serial: true, run: func(t *testing.T) { checkDotsRefusal(t, strings.Repeat(".", 5000)) }},
		{name: "S2/5000_dots_after_valid_token", serial: true, run: func(t *testing.T) { checkDotsRefusal(t, valid+strings.Repeat(".", 5000)) }},

		{name: "S3/100kB_private_claim", run: func(t *testing.T) {
			res := newResolver(mustES256Key(t, "es-1", es1Priv, testProfile()))
			v := mustVerifier(t, res, nil)
			tok := signES256(es1Priv, hdrES1, payload("blob", strings.Repeat("x", 100_000)))
			_, _, err := v.Verify(tok, now)
			checkErr(t, err, ErrMalformed)
			if n := res.calls.Load(); n != 0 {
				t.Fatalf("resolver called %d times for an oversized token", n)
			}
		}},
		{name: "S3/at_cap_accepted", run: func(t *testing.T) { checkCap(t, DefaultMaxTokenBytes, nil) }},
		{name: "S3/one_over_cap", run: func(t *testing.T) { checkCap(t, DefaultMaxTokenBytes+1, ErrMalformed) }},

		{name: "S4/padding_appended_to_signature", want: ErrMalformed, tok: valid + "=="},
		{name: "S4/padding_in_header", want: ErrMalformed, tok: h + "=." + p + "." + s},
		{name: "S4/std_alphabet_plus_slash", want: ErrMalformed, tok: strings.NewReplacer("-", "+", "_", "/").Replace(dashed)},
		{name: "S4/line_break_in_payload", want: ErrMalformed, tok: h + "." + p[:10] + "\n" + p[10:] + "." + s},
		{name: "S4/crlf_in_signature", want: ErrMalformed, tok: h + "." + p + "." + s[:20] + "\r\n" + s[20:]},
		{name: "S4/space_prefix", want: ErrMalformed, tok: " " + valid},
		{name: "S4/space_suffix", want: ErrMalformed, tok: valid + " "},
		// The last character of a 64-byte signature carries 2 used and 4
		// unused bits; setting an unused bit spells the same bytes
		// differently. The package documents "zero unused bits in every
		// segment" as part of the base64url stage, so the class is
		// ErrMalformed, as for the header.
		{name: "S4/signature_last_char_same_high_bits", want: ErrMalformed, tok: h + "." + p + "." + unusedBitsSet(t, s)},
		{name: "S4/header_last_char_same_high_bits", want: ErrMalformed, tok: unusedBitsSet(t, h) + "." + p + "." + s},
		{name: "S4/payload_last_char_same_high_bits", want: ErrMalformed,
			tok: h + "." + unusedBitsSet(t, seg(pl)) + "." + strings.SplitN(signES256(es1Priv, hdrES1, pl), ".", 3)[2]},
		{name: "S4/payload_last_char_same_high_bits_signed_as_received", want: ErrMalformed, tok: oddSigned},

		{name: "S5/rfc7515_A1_HS256_crlf_header", v: rfc.verifier(t), want: ErrExpired, tok: rfc.token(t, "rfc7515-A.1-HS256")},
		{name: "S5/rfc7515_A3_ES256", v: rfc.verifier(t), want: ErrExpired, tok: rfc.token(t, "rfc7515-A.3-ES256")},
		{name: "S5/rfc7515_A1_HS256_payload_modified", v: rfc.verifier(t), want: ErrBadSignature, tok: rfc.token(t, "rfc7515-A.1-HS256-payload-modified")},
		{name: "S5/rfc7515_A3_ES256_payload_modified", v: rfc.verifier(t), want: ErrBadSignature, tok: rfc.token(t, "rfc7515-A.3-ES256-payload-modified")},
		{name: "S5/crlf_header_verified_as_received", tok: wsTok, check: subjectIs("alice")},
		{name: "S5/crlf_header_reserialized", want: ErrBadSignature, tok: seg(`{"alg":"ES256","kid":"es-1"}`) + "." + wsP + "." + wsS},

		{name: "S6/header_invalid_utf8_fffe", want: ErrMalformed, tok: signES256(es1Priv, "{\"alg\":\"ES256\",\"kid\":\"es-1\xff\xfe\"}", payload())},
		{name: "S6/header_overlong_c0af", want: ErrMalformed, tok: signES256(es1Priv, "{\"alg\":\"ES256\",\"kid\":\"es-1\xc0\xaf\"}", payload())},
		{name: "S6/header_bom", want: ErrMalformed, tok: signES256(es1Priv, "\xef\xbb\xbf"+hdrES1, payload())},
		{name: "S6/header_array", want: ErrMalformed, tok: signES256(es1Priv, `[`+hdrES1+`]`, payload())},
		{name: "S6/header_trailing_data", want: ErrMalformed, tok: signES256(es1Priv, hdrES1+`{"alg":"none"}`, payload())},
		{name: "S6/payload_invalid_utf8_fffe", want: ErrMalformed, tok: signES256(es1Priv, hdrES1, payload("sub", rawJSON("\"alice\xff\xfe\"")))},
		{name: "S6/payload_overlong_c0af", want: ErrMalformed, tok: signES256(es1Priv, hdrES1, payload("sub", rawJSON("\"alice\xc0\xaf\"")))},
		{name: "S6/payload_bom", want: ErrMalformed, tok: signES256(es1Priv, hdrES1, "\xef\xbb\xbf"+payload())},
		{name: "S6/payload_trailing_object", want: ErrMalformed, tok: signES256(es1Priv, hdrES1, payload()+`{"admin":true}`)},
		{name: "S6/payload_array", want: ErrMalformed, tok: signES256(es1Priv, hdrES1, `[`+payload()+`]`)},

		{name: "S7/exp_future_then_past", want: ErrMalformed,
			tok: signES256(es1Priv, hdrES1, payload("exp", rawJSON(fmt.Sprintf(`%d,"exp":%d`, future, expired))))},
		{name: "S7/exp_past_then_future", want: ErrMalformed,
			tok: signES256(es1Priv, hdrES1, payload("exp", rawJSON(fmt.Sprintf(`%d,"exp":%d`, expired, future))))},
		{name: "S7/header_alg_none_then_es256", want: ErrMalformed,
			tok: signES256(es1Priv, `{"alg":"none","alg":"ES256","kid":"es-1"}`, payload())},
		{name: "S7/sub_duplicate_by_escape", want: ErrMalformed,
			tok: signES256(es1Priv, hdrES1, strings.Replace(payload(), `"sub":"alice"`, `"sub":"alice","s\u0075b":"admin"`, 1))},

		{name: "S8/exp_Exp_EXP", want: ErrExpired,
			tok: signES256(es1Priv, hdrES1, payload("exp", expired, "Exp", future, "EXP", future))},
		{name: "S8/EXP_without_exp", want: ErrInvalidClaims,
			tok: signES256(es1Priv, hdrES1, payload("exp", omit, "EXP", future))},
		{name: "S8/header_ALG", want: ErrMalformed, tok: signES256(es1Priv, `{"ALG":"ES256","kid":"es-1"}`, payload())},

		{name: "S9/100_nested_arrays", want: ErrMalformed, tok: signES256(es1Priv, hdrES1, payload("deep", nest(100)))},
		// The claims object is depth 1, so 15 nested arrays reach the limit
		// of 16 and 16 exceed it.
		{name: "S9/depth_16_accepted", tok: signES256(es1Priv, hdrES1, payload("deep", nest(15))), check: subjectIs("alice")},
		{name: "S9/depth_17_refused", want: ErrMalformed, tok: signES256(es1Priv, hdrES1, payload("deep", nest(16)))},
		{name: "S9/header_nested", want: ErrMalformed, tok: signES256(es1Priv, `{"alg":"ES256","kid":"es-1","x":`+string(nest(100))+`}`, payload())},
	}
}

// checkDotsRefusal checks that a token of many dots is refused as
// malformed without calling the resolver, and cheaply: the allocations do
// not grow with the number of dots.
func checkDotsRefusal(t *testing.T, tok string) {
	res := newResolver(mustES256Key(t, "es-1", es1Priv, testProfile()))
	v := mustVerifier(t, res, nil)
	_, _, err := v.Verify(tok, now)
	checkErr(t, err, ErrMalformed)
	if n := res.calls.Load(); n != 0 {
		t.Fatalf("resolver called %d times", n)
	}
	short := tok[:strings.Index(tok, "...")+3]
	allocs := testing.AllocsPerRun(100, func() { v.Verify(tok, now) })
	allocsShort := testing.AllocsPerRun(100, func() { v.Verify(short, now) })
	t.Logf("allocations: %v for %d bytes, %v for %d bytes", allocs, len(tok), allocsShort, len(short))
	if raceEnabled {
		return // the race detector's instrumentation changes the counts
	}
	if allocs != allocsShort {
		t.Errorf("refusal allocates %v times for %d bytes and %v times for %d: it grows with the input", allocs, len(tok), allocsShort, len(short))
	}
	if allocs > 4 {
		t.Errorf("refusal allocates %v times, want at most 4", allocs)
	}
}

// checkCap verifies a valid ES256 token of exactly n bytes.
func checkCap(t *testing.T, n int, want error) {
	res := newResolver(mustES256Key(t, "es-1", es1Priv, testProfile()))
	v := mustVerifier(t, res, nil)
	headers := []string{hdrES1, `{"alg":"ES256","kid":"es-1"}`, `{"kid":"es-1","alg":"ES256","typ":"at+jwt"}`}
	// Signatures are always 86 characters, so a dummy one gives the length.
	var hdr, pl string
	padToLength(t, n, headers, func(h string, pad int) string {
		hdr, pl = h, payload("pad", strings.Repeat("x", pad))
		return withSig(hdr, pl, make([]byte, 64))
	})
	tok := signES256(es1Priv, hdr, pl)
	if len(tok) != n {
		t.Fatalf("token is %d bytes, want %d", len(tok), n)
	}
	_, _, err := v.Verify(tok, now)
	checkErr(t, err, want)
	wantCalls := int64(0)
	if want == nil {
		wantCalls = 1
	}
	if c := res.calls.Load(); c != wantCalls {
		t.Fatalf("resolver called %d times, want %d", c, wantCalls)
	}
}

// §2.2 Header parameters.
func headerCases(t *testing.T, f *fixture) []secCase {
	valid := signES256(es1Priv, hdrES1, payload())
	_, _, validSig := parts(t, valid)

	// H4: the EC public key of es-1 in the encodings an attacker may use as
	// an HMAC secret.
	pub := &es1Priv.PublicKey
	point, err := pub.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	spkiDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	spkiPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spkiDER})
	jwkJSON := fmt.Sprintf(`{"kty":"EC","crv":"P-256","kid":"es-1","x":%q,"y":%q}`,
		base64.RawURLEncoding.EncodeToString(point[1:33]), base64.RawURLEncoding.EncodeToString(point[33:]))
	confusion := func(secret []byte) func(*testing.T) {
		return func(t *testing.T) {
			tok := signHS256(secret, `{"alg":"HS256","kid":"es-1"}`, payload())
			_, _, err := f.v.Verify(tok, now)
			checkErr(t, err, ErrUntrustedKey)
			// Even a resolver that returns es-1 for an HS256 token must
			// not make the EC key verify an HMAC.
			lax := newResolver(mustES256Key(t, "es-1", es1Priv, testProfile()))
			lax.lax = true
			_, _, err = mustVerifier(t, lax, nil).Verify(tok, now)
			checkErr(t, err, ErrUntrustedKey)
		}
	}

	// H6: a verifier trusting es-1 and es-2.
	twoES := mustVerifier(t, newResolver(f.es1, mustES256Key(t, "es-2", es2Priv, f.profile)), nil)

	// H7: an attacker's key, embedded in the header.
	att := fixedECKey("attacker")
	attPoint, _ := att.PublicKey.Bytes()
	attJWK := fmt.Sprintf(`{"kty":"EC","crv":"P-256","x":%q,"y":%q}`,
		base64.RawURLEncoding.EncodeToString(attPoint[1:33]), base64.RawURLEncoding.EncodeToString(attPoint[33:]))
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "es-1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
	}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &att.PublicKey, att)
	if err != nil {
		t.Fatal(err)
	}
	x5c := base64.StdEncoding.EncodeToString(certDER)

	// H9: a raw JSON payload with '.' escaped, signed per RFC 7797.
	rawPayload := strings.ReplaceAll(payload(), ".", `\u002e`)
	unencoded := func(header string) string {
		in := seg(header) + "." + rawPayload
		return in + "." + base64.RawURLEncoding.EncodeToString(hs256Tag(hs1Secret, in))
	}

	hs512 := func(header string) string {
		in := signingInput(header, payload())
		m := hmac.New(sha512.New, hs1Secret)
		m.Write([]byte(in))
		return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	none := func(alg, sig string) string {
		return seg(`{"alg":"`+alg+`"}`) + "." + seg(payload()) + "." + sig
	}

	longKid := strings.Repeat("k", 4096)

	return []secCase{
		{name: "H1/alg_missing", want: ErrMalformed, tok: signES256(es1Priv, `{"kid":"es-1","typ":"JWT"}`, payload())},
		{name: "H1/alg_array", want: ErrMalformed, tok: signES256(es1Priv, `{"alg":["ES256"],"kid":"es-1"}`, payload())},
		{name: "H1/alg_HS512_real_mac", want: ErrMalformed, tok: hs512(`{"alg":"HS512","kid":"hs-1"}`)},
		{name: "H1/alg_lower_case", want: ErrMalformed, tok: signES256(es1Priv, `{"alg":"es256","kid":"es-1"}`, payload())},
		{name: "H1/alg_null", want: ErrMalformed, tok: signES256(es1Priv, `{"alg":null,"kid":"es-1"}`, payload())},

		{name: "H2/none_empty_signature", want: ErrMalformed, tok: none("none", "")},
		{name: "H2/None_empty_signature", want: ErrMalformed, tok: none("None", "")},
		{name: "H2/NONE_empty_signature", want: ErrMalformed, tok: none("NONE", "")},
		{name: "H2/none_with_signature", want: ErrMalformed, tok: none("none", validSig)},
		{name: "H2/None_with_signature", want: ErrMalformed, tok: none("None", validSig)},
		{name: "H2/NONE_with_signature", want: ErrMalformed, tok: none("NONE", validSig)},
		{name: "H2/none_no_signature_segment", want: ErrMalformed, tok: seg(`{"alg":"none"}`) + "." + seg(payload())},

		{name: "H3/none_header_real_es256_signature", want: ErrMalformed, tok: signES256(es1Priv, `{"alg":"none","kid":"es-1"}`, payload())},
		{name: "H3/hs256_mac_under_HS512_header", want: ErrMalformed, tok: signHS256(hs1Secret, `{"alg":"HS512","kid":"hs-1"}`, payload())},
		{name: "H3/es256_signature_under_HS256_header", want: ErrUntrustedKey, tok: signES256(es1Priv, `{"alg":"HS256","kid":"es-1"}`, payload())},
		{name: "H3/hs256_mac_under_ES256_header", want: ErrUntrustedKey, tok: signHS256(hs1Secret, `{"alg":"ES256","kid":"hs-1"}`, payload())},

		{name: "H4/hmac_keyed_with_jwk_json", run: confusion([]byte(jwkJSON))},
		{name: "H4/hmac_keyed_with_uncompressed_point", run: confusion(point)},
		{name: "H4/hmac_keyed_with_spki_pem", run: confusion(spkiPEM)},
		{name: "H4/hmac_keyed_with_spki_der", run: confusion(spkiDER)},

		{name: "H5/kid_path_traversal_empty_hmac_key", want: ErrUntrustedKey, tok: signHS256(nil, `{"alg":"HS256","kid":"../../../../dev/null"}`, payload())},
		{name: "H5/kid_sql_injection_hmac_key_secret", want: ErrUntrustedKey, tok: signHS256([]byte("secret"), `{"alg":"HS256","kid":"x' UNION SELECT 'secret' -- "}`, payload())},
		{name: "H5/kid_4kB", run: func(t *testing.T) {
			_, _, err := f.v.Verify(signES256(es1Priv, `{"alg":"ES256","kid":"`+longKid+`"}`, payload()), now)
			checkErr(t, err, ErrMalformed)
			if strings.Contains(err.Error(), longKid[:64]) {
				t.Fatalf("error text quotes the kid: %.100q", err)
			}
		}},
		{name: "H5/kid_number", want: ErrMalformed, tok: signES256(es1Priv, `{"alg":"ES256","kid":1}`, payload())},
		{name: "H5/kid_empty_string", want: ErrMalformed, tok: signES256(es1Priv, `{"alg":"ES256","kid":""}`, payload())},
		{name: "H5/kid_at_limit_unknown", want: ErrUntrustedKey, tok: signES256(es1Priv, `{"alg":"ES256","kid":"`+strings.Repeat("k", MaxKeyIDBytes)+`"}`, payload())},
		{name: "H5/kid_one_over_limit", want: ErrMalformed, tok: signES256(es1Priv, `{"alg":"ES256","kid":"`+strings.Repeat("k", MaxKeyIDBytes+1)+`"}`, payload())},
		{name: "H5/kid_case_differs", want: ErrUntrustedKey, tok: signES256(es1Priv, `{"alg":"ES256","kid":"ES-1"}`, payload())},

		{name: "H6/unknown_kid", want: ErrUntrustedKey, tok: signES256(es1Priv, `{"alg":"ES256","kid":"es-9"}`, payload())},
		{name: "H6/no_kid_two_es256_keys", v: twoES, want: ErrUntrustedKey, tok: signES256(es1Priv, `{"alg":"ES256"}`, payload())},
		{name: "H6/no_kid_one_es256_key", tok: signES256(es1Priv, `{"alg":"ES256"}`, payload()), check: subjectIs("alice")},
		{name: "H6/signed_by_es2_kid_es1", v: twoES, want: ErrBadSignature, tok: signES256(es2Priv, hdrES1, payload())},
		{name: "H6/signed_by_removed_key", want: ErrUntrustedKey, tok: signES256(es2Priv, hdrES2, payload())},

		{name: "H7/embedded_jwk_with_kid", want: ErrMalformed, tok: signES256(att, `{"alg":"ES256","kid":"es-1","jwk":`+attJWK+`}`, payload())},
		{name: "H7/embedded_jwk_without_kid", want: ErrMalformed, tok: signES256(att, `{"alg":"ES256","jwk":`+attJWK+`}`, payload())},
		{name: "H7/jku_attacker", want: ErrMalformed, tok: signES256(att, `{"alg":"ES256","kid":"es-1","jku":"https://attacker.invalid/jwks.json"}`, payload())},
		{name: "H7/x5u_attacker", want: ErrMalformed, tok: signES256(att, `{"alg":"ES256","kid":"es-1","x5u":"https://attacker.invalid/cert.pem"}`, payload())},
		{name: "H7/x5c_self_signed", want: ErrMalformed, tok: signES256(att, `{"alg":"ES256","kid":"es-1","x5c":["`+x5c+`"]}`, payload())},
		{name: "H7/jwk_in_header_signed_by_trusted_key", want: ErrMalformed, tok: signES256(es1Priv, `{"alg":"ES256","kid":"es-1","jwk":`+attJWK+`}`, payload())},

		{name: "H8/crit_unknown_extension", want: ErrMalformed, tok: signES256(es1Priv, `{"alg":"ES256","kid":"es-1","crit":["urn:example:must-understand"],"urn:example:must-understand":true}`, payload())},
		{name: "H8/crit_empty", want: ErrMalformed, tok: signES256(es1Priv, `{"alg":"ES256","kid":"es-1","crit":[]}`, payload())},
		{name: "H8/crit_registered_name", want: ErrMalformed, tok: signES256(es1Priv, `{"alg":"ES256","kid":"es-1","crit":["kid"]}`, payload())},

		{name: "H9/b64_false_with_crit_raw_payload", want: ErrMalformed, tok: unencoded(`{"alg":"HS256","kid":"hs-1","b64":false,"crit":["b64"]}`)},
		{name: "H9/b64_false_without_crit_raw_payload", want: ErrMalformed, tok: unencoded(`{"alg":"HS256","kid":"hs-1","b64":false}`)},
		{name: "H9/b64_false_with_crit_encoded_payload", want: ErrMalformed, tok: signHS256(hs1Secret, `{"alg":"HS256","kid":"hs-1","b64":false,"crit":["b64"]}`, payload())},
		{name: "H9/b64_true", want: ErrMalformed, tok: signHS256(hs1Secret, `{"alg":"HS256","kid":"hs-1","b64":true}`, payload())},

		{name: "H10/typ_dpop+jwt", want: ErrMalformed, tok: signES256(es1Priv, `{"alg":"ES256","kid":"es-1","typ":"dpop+jwt"}`, payload())},
		{name: "H10/cty_JWT", want: ErrMalformed, tok: signES256(es1Priv, `{"alg":"ES256","kid":"es-1","cty":"JWT"}`, payload())},
		{name: "H10/typ_number", want: ErrMalformed, tok: signES256(es1Priv, `{"alg":"ES256","kid":"es-1","typ":1}`, payload())},
		{name: "H10/typ_JWS", want: ErrMalformed, tok: signES256(es1Priv, `{"alg":"ES256","kid":"es-1","typ":"JWS"}`, payload())},
		{name: "H10/typ_jwt_lower_case", tok: signES256(es1Priv, `{"alg":"ES256","kid":"es-1","typ":"jwt"}`, payload()), check: subjectIs("alice")},
		{name: "H10/typ_at+jwt", tok: signES256(es1Priv, `{"alg":"ES256","kid":"es-1","typ":"at+jwt"}`, payload()), check: subjectIs("alice")},
		{name: "H10/typ_AT+JWT", tok: signES256(es1Priv, `{"alg":"ES256","kid":"es-1","typ":"AT+JWT"}`, payload()), check: subjectIs("alice")},
		{name: "H10/typ_absent", tok: signES256(es1Priv, `{"alg":"ES256","kid":"es-1"}`, payload()), check: subjectIs("alice")},
	}
}

// keyWithShortX returns a P-256 key whose X coordinate has a leading zero
// byte, found deterministically.
var keyWithShortX = sync.OnceValue(func() *ecdsa.PrivateKey {
	for i := 0; ; i++ {
		k := fixedECKey(fmt.Sprintf("short x %d", i))
		if k.X.BitLen() <= 248 {
			return k
		}
	}
})

// §2.3 Keys and signatures.
func keyCases(t *testing.T, f *fixture) []secCase {
	n := elliptic.P256().Params().N

	// K5: a signature whose R has a leading zero byte.
	var shortR, shortRS *big.Int
	var shortIn string
	for i := 0; shortR == nil; i++ {
		in := signingInput(hdrES1, payload("jti", fmt.Sprintf("tok-%d", i)))
		r, s := es256RS(es1Priv, in)
		if r.BitLen() <= 248 {
			shortR, shortRS, shortIn = r, s, in
		}
	}
	short63 := append(shortR.FillBytes(make([]byte, 31)), shortRS.FillBytes(make([]byte, 32))...)
	nBytes := n.FillBytes(make([]byte, 32))

	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384Sig := func() string {
		in := signingInput(hdrES1, payload())
		d := sha256.Sum256([]byte(in))
		r, s, err := ecdsa.Sign(rand.Reader, p384, d[:])
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 96)
		r.FillBytes(b[:48])
		s.FillBytes(b[48:])
		return in + "." + base64.RawURLEncoding.EncodeToString(b)
	}()

	return []secCase{
		{name: "K1/hs256_secret_16_bytes", run: func(t *testing.T) {
			for _, n := range []int{0, 16, MinSecretBytes - 1} {
				if _, err := NewHS256Key("hs-short", make([]byte, n), testProfile()); err == nil {
					t.Errorf("NewHS256Key accepted a %d-byte secret", n)
				}
			}
			if _, err := NewHS256Key("hs-ok", make([]byte, MinSecretBytes), testProfile()); err != nil {
				t.Errorf("NewHS256Key refused a %d-byte secret: %v", MinSecretBytes, err)
			}
		}},

		{name: "K2/p384_key_labelled_es256", run: func(t *testing.T) {
			if _, err := NewES256Key("es-384", &p384.PublicKey, testProfile()); err == nil {
				t.Fatal("NewES256Key accepted a P-384 key")
			}
		}},
		{name: "K2/p384_96_byte_signature", want: ErrBadSignature, tok: p384Sig},
		{name: "K2/alg_HS256_on_ec_key", want: ErrUntrustedKey, tok: signHS256(hs1Secret, `{"alg":"HS256","kid":"es-1"}`, payload())},
		{name: "K2/jwk_use_enc_key_ops_encrypt", run: func(t *testing.T) {
			t.Skip(`"use" and "key_ops" are JWK members, checked where key sets are parsed (verify/trust); a Key has neither`)
		}},

		{name: "K3/y_bit_flipped", run: func(t *testing.T) {
			pt, err := es1Priv.PublicKey.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			pt[64] ^= 1
			if _, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pt); err == nil {
				t.Fatal("ParseUncompressedPublicKey accepted a point off the curve")
			}
			off := &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(pt[1:33]), Y: new(big.Int).SetBytes(pt[33:])}
			if _, err := NewES256Key("es-off", off, testProfile()); err == nil {
				t.Fatal("NewES256Key accepted a point off the curve")
			}
		}},
		{name: "K3/x_leading_zero_as_31_bytes", run: func(t *testing.T) {
			k := keyWithShortX()
			pt, err := k.PublicKey.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			if pt[1] != 0 {
				t.Fatal("test key has no leading zero in x")
			}
			short := append([]byte{4}, append(pt[2:33], pt[33:]...)...)
			if _, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), short); err == nil {
				t.Fatal("ParseUncompressedPublicKey accepted a 31-byte x")
			}
			// The padded encoding is the key, and verifies its tokens.
			pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pt)
			if err != nil {
				t.Fatal(err)
			}
			key, err := NewES256Key("es-x", pub, testProfile())
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = mustVerifier(t, newResolver(key), nil).Verify(signES256(k, `{"alg":"ES256","kid":"es-x"}`, payload()), now)
			checkErr(t, err, nil)
		}},

		{name: "K4/hs256_token_with_kid_of_ec_key", want: ErrUntrustedKey, tok: signHS256(hs1Secret, `{"alg":"HS256","kid":"es-1"}`, payload())},
		{name: "K4/es256_token_with_kid_of_hmac_key", want: ErrUntrustedKey, tok: signES256(es1Priv, `{"alg":"ES256","kid":"hs-1"}`, payload())},
		{name: "K4/duplicate_kid_material", run: func(t *testing.T) {
			// A registry refuses two different keys under one kid (that
			// check lives in verify/trust); SameMaterial is how it tells a
			// republished key from a different one.
			a := mustES256Key(t, "es-1", es1Priv, testProfile())
			b := mustES256Key(t, "es-1", es2Priv, testProfile())
			same := mustES256Key(t, "es-1", es1Priv, testProfile())
			h := mustHS256Key(t, "es-1", hs1Secret, testProfile())
			if a.SameMaterial(b) || !a.SameMaterial(same) || a.SameMaterial(h) || h.SameMaterial(a) {
				t.Fatal("SameMaterial does not tell keys under one kid apart")
			}
		}},

		{name: "K5/der_signature", want: ErrBadSignature, tok: signES256Enc(es1Priv, hdrES1, payload(), derRS)},
		{name: "K5/63_bytes_r_leading_zero_dropped", want: ErrBadSignature, tok: shortIn + "." + base64.RawURLEncoding.EncodeToString(short63)},
		{name: "K5/64_bytes_r_left_padded", tok: shortIn + "." + base64.RawURLEncoding.EncodeToString(rawRS(shortR, shortRS))},
		{name: "K5/65_bytes_zero_prepended", want: ErrBadSignature,
			tok: signES256Enc(es1Priv, hdrES1, payload(), func(r, s *big.Int) []byte { return append([]byte{0}, rawRS(r, s)...) })},

		{name: "K6/64_zero_bytes", want: ErrBadSignature, tok: withSig(hdrES1, payload(), make([]byte, 64))},
		{name: "K6/r_s_equal_n", want: ErrBadSignature, tok: withSig(hdrES1, payload(), append(append([]byte(nil), nBytes...), nBytes...))},
		{name: "K6/r_zero", want: ErrBadSignature,
			tok: signES256Enc(es1Priv, hdrES1, payload(), func(r, s *big.Int) []byte { return rawRS(new(big.Int), s) })},
		{name: "K6/s_plus_n", want: ErrBadSignature,
			// s+n may need 33 bytes; then only its low 32 survive, which is
			// a different s: refused either way.
			tok: signES256Enc(es1Priv, hdrES1, payload(), func(r, s *big.Int) []byte {
				sn := new(big.Int).Add(s, n)
				b := rawRS(r, new(big.Int))
				sb := sn.Bytes()
				copy(b[64-min(32, len(sb)):], sb[max(0, len(sb)-32):])
				return b
			})},

		{name: "K7/high_s_accepted", run: func(t *testing.T) {
			in := signingInput(hdrES1, payload())
			r, s := es256RS(es1Priv, in)
			low := in + "." + base64.RawURLEncoding.EncodeToString(rawRS(r, s))
			high := in + "." + base64.RawURLEncoding.EncodeToString(rawRS(r, new(big.Int).Sub(n, s)))
			c1, _, err := f.v.Verify(low, now)
			checkErr(t, err, nil)
			c2, _, err := f.v.Verify(high, now)
			checkErr(t, err, nil)
			// JWA has no low-S rule: both spellings verify. They are
			// different strings with different digests, so anything keyed
			// on the token bytes (a result cache, a denylist) sees two
			// tokens; revocation is by jti, which both carry.
			if sha256.Sum256([]byte(low)) == sha256.Sum256([]byte(high)) {
				t.Fatal("the high-S token has the same digest")
			}
			if c1.ID != c2.ID || c1.ID == "" {
				t.Fatalf("jti differs: %q, %q", c1.ID, c2.ID)
			}
			if sha256.Sum256([]byte(low[:strings.LastIndexByte(low, '.')])) != sha256.Sum256([]byte(high[:strings.LastIndexByte(high, '.')])) {
				t.Fatal("the signing inputs differ")
			}
		}},

		{name: "K8/wycheproof_ecdsa_p256_sha256_p1363", run: func(t *testing.T) {
			total, valid := runECDSAVectors(t)
			if total != 262 || valid != 173 {
				t.Fatalf("%d vectors, %d valid; want 262 and 173", total, valid)
			}
		}},
	}
}

// §2.4 Claims.
func claimCases(t *testing.T, f *fixture) []secCase {
	tok := func(over ...any) string { return signES256(es1Priv, hdrES1, payload(over...)) }
	leeway := testLeeway
	noExp := testProfile()
	noExp.AllowNoExp = true
	noAud := testProfile()
	noAud.Audience = nil
	noIss := testProfile()
	noIss.Issuer = ""

	return []secCase{
		{name: "C1/exp_now_minus_leeway_minus_1", want: ErrExpired, tok: tok("exp", at(-leeway-time.Second))},
		{name: "C1/exp_now_minus_leeway", want: ErrExpired, tok: tok("exp", at(-leeway))},
		{name: "C1/exp_now_minus_leeway_plus_1", tok: tok("exp", at(-leeway+time.Second)), check: func(t *testing.T, c Claims, _ *Key) {
			if !c.ExpiresAt.Equal(now.Add(-leeway + time.Second)) {
				t.Fatalf("ExpiresAt %v", c.ExpiresAt)
			}
		}},
		{name: "C1/exp_minus_1", want: ErrInvalidClaims, tok: tok("exp", -1)},
		{name: "C1/exp_missing", want: ErrInvalidClaims, tok: tok("exp", omit)},
		{name: "C1/exp_missing_allowed_by_profile", v: verifierWith(t, noExp), tok: tok("exp", omit), check: func(t *testing.T, c Claims, _ *Key) {
			if !c.ExpiresAt.IsZero() {
				t.Fatalf("ExpiresAt %v", c.ExpiresAt)
			}
		}},
		{name: "C1/exp_fraction_before_boundary", tok: tok("exp", rawJSON(fmt.Sprintf("%d.5", at(-leeway)))), check: subjectIs("alice")},
		{name: "C1/exp_past_with_AllowNoExp", v: verifierWith(t, noExp), want: ErrExpired, tok: tok("exp", at(-leeway))},

		{name: "C2/nbf_now_plus_leeway", tok: tok("nbf", at(leeway)), check: func(t *testing.T, c Claims, _ *Key) {
			if !c.NotBefore.Equal(now.Add(leeway)) {
				t.Fatalf("NotBefore %v", c.NotBefore)
			}
		}},
		{name: "C2/nbf_now_plus_leeway_plus_1", want: ErrNotYetValid, tok: tok("nbf", at(leeway+time.Second))},

		{name: "C3/iat_now_plus_3660", want: ErrNotYetValid, tok: tok("iat", at(3660*time.Second))},
		{name: "C3/iat_now_plus_leeway", tok: tok("iat", at(leeway)), check: subjectIs("alice")},

		{name: "C4/exp_string", want: ErrInvalidClaims, tok: tok("exp", "1767229200")},
		{name: "C4/nbf_string", want: ErrInvalidClaims, tok: tok("nbf", "9999999999")},
		{name: "C4/nbf_1e20", want: ErrInvalidClaims, tok: tok("nbf", rawJSON("1e20"))},
		{name: "C4/exp_1e400", want: ErrInvalidClaims, tok: tok("exp", rawJSON("1e400"))},
		{name: "C4/exp_null", want: ErrInvalidClaims, tok: tok("exp", nil)},
		{name: "C4/iat_true", want: ErrInvalidClaims, tok: tok("iat", true)},
		{name: "C4/exp_9e18", want: ErrInvalidClaims, tok: tok("exp", rawJSON("9223372036854775808"))},
		{name: "C4/nbf_negative_huge", want: ErrInvalidClaims, tok: tok("nbf", rawJSON("-1e300"))},

		{name: "C5/iss_trailing_slash", want: ErrInvalidClaims, tok: tok("iss", testIssuer+"/")},
		{name: "C5/iss_other", want: ErrInvalidClaims, tok: tok("iss", "https://evil.example")},
		{name: "C5/iss_missing", want: ErrInvalidClaims, tok: tok("iss", omit)},
		{name: "C5/iss_upper_case_scheme", want: ErrInvalidClaims, tok: tok("iss", "HTTPS://issuer.example")},
		{name: "C5/iss_number", v: verifierWith(t, noIss), want: ErrInvalidClaims, tok: tok("iss", 1)},

		{name: "C6/aud_empty_array", want: ErrInvalidClaims, tok: tok("aud", []string{})},
		{name: "C6/aud_number_element", want: ErrInvalidClaims, tok: tok("aud", rawJSON(`[123,"tokend"]`))},
		{name: "C6/aud_number_element_with_ours", want: ErrInvalidClaims, tok: tok("aud", rawJSON(`[123,"verifyd"]`))},
		{name: "C6/aud_other_service", want: ErrInvalidClaims, tok: tok("aud", "other-service")},
		{name: "C6/aud_missing", want: ErrInvalidClaims, tok: tok("aud", omit)},
		{name: "C6/aud_array_with_ours", tok: tok("aud", []string{"other", testAudience}), check: subjectIs("alice")},
		{name: "C6/aud_case_differs", want: ErrInvalidClaims, tok: tok("aud", "VerifyD")},
		{name: "C6/aud_object", v: verifierWith(t, noAud), want: ErrInvalidClaims, tok: tok("aud", map[string]string{"a": "verifyd"})},

		{name: "C7/sub_number", want: ErrInvalidClaims, tok: tok("sub", 42)},
		{name: "C7/jti_number", want: ErrInvalidClaims, tok: tok("jti", 7)},
		{name: "C7/sub_empty", want: ErrInvalidClaims, tok: tok("sub", "")},
		{name: "C7/sub_null", want: ErrInvalidClaims, tok: tok("sub", nil)},

		{name: "C8/expired_and_bad_signature", want: ErrBadSignature,
			tok: signES256(es2Priv, hdrES1, payload("exp", at(-time.Hour)))},
		{name: "C8/bad_signature_payload_not_json", want: ErrBadSignature,
			tok: signES256(es2Priv, hdrES1, "not json {")},
		{name: "C8/expired_and_unknown_kid", want: ErrUntrustedKey,
			tok: signES256(es1Priv, `{"alg":"ES256","kid":"es-9"}`, payload("exp", at(-time.Hour)))},
		{name: "C8/hs256_expired_and_bad_mac", want: ErrBadSignature,
			tok: signHS256(hs2Secret, hdrHS1, payload("exp", at(-time.Hour)))},
	}
}

// Identity extraction: subject, roles, realm, scopes.
func identityCases(t *testing.T, f *fixture) []secCase {
	tok := func(over ...any) string { return signES256(es1Priv, hdrES1, payload(over...)) }
	nested := testProfile()
	nested.RolesClaim = "realm_access.roles"
	nestedV := verifierWith(t, nested)
	custom := testProfile()
	custom.SubjectClaims = []string{"user.name", "sub"}
	custom.ScopeClaims = []string{"permissions"}
	custom.RealmClaim = "tenant"
	customV := verifierWith(t, custom)

	rolesAre := func(want ...string) func(*testing.T, Claims, *Key) {
		return func(t *testing.T, c Claims, _ *Key) {
			if !slices.Equal(c.Roles, want) {
				t.Fatalf("roles %q, want %q", c.Roles, want)
			}
		}
	}
	scopesAre := func(want ...string) func(*testing.T, Claims, *Key) {
		return func(t *testing.T, c Claims, _ *Key) {
			if !slices.Equal(c.Scopes, want) {
				t.Fatalf("scopes %q, want %q", c.Scopes, want)
			}
		}
	}

	return []secCase{
		{name: "Identity/sub_first", tok: tok("client_id", "svc-a", "email", "bob@example.com"), check: subjectIs("alice")},
		{name: "Identity/client_id_without_sub", tok: tok("sub", omit, "client_id", "svc-a", "username", "bob"), check: subjectIs("svc-a")},
		{name: "Identity/username_before_email", tok: tok("sub", omit, "email", "carol@example.com", "username", "carol"), check: subjectIs("carol")},
		{name: "Identity/email_lower_cased", tok: tok("sub", omit, "email", "Alice.Smith@Example.COM"), check: subjectIs("alice.smith@example.com")},
		{name: "Identity/sub_with_at_lower_cased", tok: tok("sub", "Dave@Example.com"), check: subjectIs("dave@example.com")},
		{name: "Identity/sub_without_at_case_kept", tok: tok("sub", "Dave"), check: subjectIs("Dave")},
		// strings.ToLower maps U+212A KELVIN SIGN to ASCII 'k' and U+0130 to
		// 'i': two different accounts at the issuer would share one
		// subject here. Lower-casing must stay within ASCII.
		{name: "Identity/email_unicode_case_folding_collision", tok: tok("sub", omit, "email", "\u212Aate@example.com"), check: func(t *testing.T, c Claims, _ *Key) {
			if c.Subject == "kate@example.com" {
				t.Fatalf("subject %q of the e-mail \"\\u212Aate@example.com\" collides with kate@example.com", c.Subject)
			}
		}},
		{name: "Identity/email_dotted_capital_i_collision", tok: tok("sub", "\u0130nfo@example.com"), check: func(t *testing.T, c Claims, _ *Key) {
			if c.Subject == "info@example.com" {
				t.Fatalf("subject of \"\\u0130nfo@example.com\" collides with info@example.com")
			}
		}},
		{name: "Identity/no_subject_claim", want: ErrInvalidClaims, tok: tok("sub", omit)},
		{name: "Identity/subject_claim_not_string", want: ErrInvalidClaims, tok: tok("sub", omit, "client_id", 5)},
		{name: "Identity/custom_subject_path", v: customV, tok: tok("user", map[string]string{"name": "erin"}), check: subjectIs("erin")},

		{name: "Identity/roles_array", tok: tok("roles", []string{"admin", "dev"}), check: rolesAre("admin", "dev")},
		{name: "Identity/roles_single_string", tok: tok("roles", "admin"), check: rolesAre("admin")},
		{name: "Identity/roles_absent", tok: tok(), check: func(t *testing.T, c Claims, _ *Key) {
			if c.Roles != nil || c.Scopes != nil || c.Realm != "" {
				t.Fatalf("claims %+v", c)
			}
		}},
		{name: "Identity/roles_non_string_element", want: ErrInvalidClaims, tok: tok("roles", rawJSON(`["admin",1]`))},
		{name: "Identity/roles_object", want: ErrInvalidClaims, tok: tok("roles", map[string]bool{"admin": true})},
		{name: "Identity/roles_nested_path", v: nestedV, tok: tok("realm_access", map[string][]string{"roles": {"viewer", "editor"}}), check: rolesAre("viewer", "editor")},
		{name: "Identity/roles_dotted_top_level_name_first", v: nestedV,
			tok:   tok("realm_access", map[string][]string{"roles": {"nested"}}, "realm_access.roles", []string{"top"}),
			check: rolesAre("top")},
		{name: "Identity/roles_nested_path_missing", v: nestedV, tok: tok("realm_access", map[string]int{"other": 1}), check: rolesAre()},
		{name: "Identity/realm", v: customV, tok: tok("tenant", "acme"), check: func(t *testing.T, c Claims, _ *Key) {
			if c.Realm != "acme" {
				t.Fatalf("realm %q", c.Realm)
			}
		}},
		{name: "Identity/realm_not_string", want: ErrInvalidClaims, tok: tok("realm", 3)},

		{name: "Identity/scope_space_separated", tok: tok("scope", "tool:data:read  agent:x:delegate "), check: scopesAre("tool:data:read", "agent:x:delegate")},
		{name: "Identity/scp_array", tok: tok("scp", []string{"a:b", "c:d"}), check: scopesAre("a:b", "c:d")},
		{name: "Identity/scope_before_scp", tok: tok("scp", []string{"x"}, "scope", "y"), check: scopesAre("y")},
		{name: "Identity/scope_custom_claim", v: customV, tok: tok("permissions", []string{"p:q"}, "scope", "ignored"), check: scopesAre("p:q")},
		{name: "Identity/scope_non_string_element", want: ErrInvalidClaims, tok: tok("scp", rawJSON(`["a",null]`))},
		// RFC 6749 §3.3: scopes are separated by U+0020 only. Splitting on
		// every Unicode space turns the single scope the issuer granted
		// into two, here the super-scope "*".
		{name: "Identity/scope_split_on_space_only", tok: tok("scope", "tool:data:read\u00a0* \t*"), check: func(t *testing.T, c Claims, _ *Key) {
			if slices.Contains(c.Scopes, "*") {
				t.Fatalf("scopes %q: a scope was split on a character other than U+0020", c.Scopes)
			}
		}},
	}
}

// Key state: retirement and algorithm binding after resolution.
func keyStateCases(t *testing.T, f *fixture) []secCase {
	retired := mustES256Key(t, "es-old", es2Priv, testProfile())
	retired.Retire()
	retiredV := mustVerifier(t, newResolver(f.es1, retired), nil)

	lax := newResolver(f.es1, f.hs1)
	lax.lax = true
	laxV := mustVerifier(t, lax, nil)

	return []secCase{
		{name: "Keys/retired_key", v: retiredV, want: ErrUntrustedKey, tok: signES256(es2Priv, `{"alg":"ES256","kid":"es-old"}`, payload())},
		{name: "Keys/resolver_returns_hs256_key_for_es256", v: laxV, want: ErrUntrustedKey, tok: signES256(es1Priv, `{"alg":"ES256","kid":"hs-1"}`, payload())},
		{name: "Keys/resolver_returns_es256_key_for_hs256", v: laxV, want: ErrUntrustedKey, tok: signHS256(hs1Secret, `{"alg":"HS256","kid":"es-1"}`, payload())},
		{name: "Keys/resolver_nil_key", v: mustVerifier(t, nilResolver{}, nil), want: ErrUntrustedKey, tok: signES256(es1Priv, hdrES1, payload())},
	}
}

// nilResolver returns no key and no error, against its contract.
type nilResolver struct{}

func (nilResolver) ResolveKey(Alg, string) (*Key, error) { return nil, nil }

// Error texts are logged: they must not carry the token, a long kid or a
// secret.
func errorTextCases(t *testing.T, f *fixture) []secCase {
	secretForms := []string{string(hs1Secret), hex.EncodeToString(hs1Secret), base64.RawURLEncoding.EncodeToString(hs1Secret), base64.StdEncoding.EncodeToString(hs1Secret)}
	longKid := strings.Repeat("q", 200)
	check := func(tok string, want error, extra ...string) func(*testing.T) {
		return func(t *testing.T) {
			_, _, err := f.v.Verify(tok, now)
			checkErr(t, err, want)
			msg := err.Error()
			forbidden := append(append([]string(nil), secretForms...), extra...)
			for _, s := range strings.Split(tok, ".") {
				if len(s) >= 8 {
					forbidden = append(forbidden, s)
				}
			}
			for _, s := range forbidden {
				if s != "" && strings.Contains(msg, s) {
					t.Fatalf("error text %q contains %.40q", msg, s)
				}
			}
		}
	}
	valid := signHS256(hs1Secret, hdrHS1, payload())
	h, p, _ := parts(t, valid)
	return []secCase{
		{name: "ErrorText/malformed_header", run: check(signHS256(hs1Secret, `{"alg":"HS256","kid":"hs-1","jwk":{}}`, payload()), ErrMalformed)},
		{name: "ErrorText/bad_base64", run: check(h+"."+p+"."+strings.Repeat("*", 43), ErrMalformed)},
		{name: "ErrorText/bad_hs256_mac", run: check(signHS256(hs2Secret, hdrHS1, payload()), ErrBadSignature)},
		{name: "ErrorText/long_unknown_kid", run: check(signHS256(hs1Secret, `{"alg":"HS256","kid":"`+longKid+`"}`, payload()), ErrUntrustedKey, longKid)},
		{name: "ErrorText/kid_over_limit", run: check(signHS256(hs1Secret, `{"alg":"HS256","kid":"`+strings.Repeat("q", 300)+`"}`, payload()), ErrMalformed, longKid)},
		{name: "ErrorText/expired", run: check(signHS256(hs1Secret, hdrHS1, payload("exp", at(-time.Hour))), ErrExpired)},
		{name: "ErrorText/invalid_claims", run: check(signHS256(hs1Secret, hdrHS1, payload("iss", "https://evil.example/"+longKid)), ErrInvalidClaims, longKid)},
		{name: "ErrorText/oversized", run: check(valid+strings.Repeat("A", DefaultMaxTokenBytes), ErrMalformed)},
	}
}

// rfc7515 holds the RFC 7515 Appendix A vectors and their keys.
type rfc7515 struct {
	Vectors []struct {
		Name      string            `json:"name"`
		Alg       string            `json:"alg"`
		Token     string            `json:"token"`
		JWK       map[string]string `json:"jwk"`
		JWKPublic map[string]string `json:"jwk_public"`
		Signature string            `json:"expected_signature"`
	} `json:"vectors"`
}

func loadRFC7515(t testing.TB) *rfc7515 {
	t.Helper()
	b, err := os.ReadFile("testdata/rfc7515_examples.json")
	if err != nil {
		t.Fatal(err)
	}
	var r rfc7515
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Vectors) != 4 {
		t.Fatalf("%d RFC 7515 vectors, want 4", len(r.Vectors))
	}
	return &r
}

func (r *rfc7515) token(t testing.TB, name string) string {
	t.Helper()
	for _, v := range r.Vectors {
		if v.Name == name {
			return v.Token
		}
	}
	t.Fatalf("no RFC 7515 vector %q", name)
	return ""
}

// verifier trusts the A.1 secret and the A.3 key (the tokens have no kid)
// under a profile without issuer or audience, so only exp refuses them.
func (r *rfc7515) verifier(t testing.TB) *Verifier {
	t.Helper()
	p := &Profile{Source: "rfc7515", Leeway: testLeeway}
	var keys []*Key
	for _, v := range r.Vectors[:2] {
		switch v.Alg {
		case "HS256":
			keys = append(keys, mustHS256Key(t, "rfc-a1", b64urlDecode(t, v.JWK["k"]), p))
		case "ES256":
			k, err := NewES256Key("rfc-a3", jwkPublicKey(t, v.JWKPublic["x"], v.JWKPublic["y"]), p)
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, k)
		}
	}
	return mustVerifier(t, newResolver(keys...), nil)
}

// b64urlDecode decodes unpadded base64url (JWK members).
func b64urlDecode(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		t.Fatalf("base64url %q: %v", s, err)
	}
	return b
}

// jwkPublicKey parses the x and y members of a P-256 JWK.
func jwkPublicKey(t testing.TB, x, y string) *ecdsa.PublicKey {
	t.Helper()
	pt := append([]byte{4}, append(b64urlDecode(t, x), b64urlDecode(t, y)...)...)
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pt)
	if err != nil {
		t.Fatalf("JWK point: %v", err)
	}
	return pub
}
