// Package jwt is verifyd's strict compact-JWS front end for JSON Web Tokens
// signed with ES256 or HS256.
//
// Tokens never reach a general-purpose JOSE library: such libraries accept
// many spellings of one signed token (lenient base64, duplicate JSON
// members, trailing data), take the algorithm from the key instead of the
// header, or read claims from unsigned wrappers. [Verifier.Verify] accepts
// exactly one spelling of each token:
//
//   - a size cap, checked first;
//   - the compact serialization only: exactly two '.', counted before any
//     split, so JSON serializations and five-part JWEs are refused;
//   - unpadded base64url with zero unused bits in every segment, and
//     nothing else: no '=', '+', '/', whitespace or line breaks;
//   - a header that is a strict JSON object (valid UTF-8, no duplicate
//     members, no trailing data, nesting at most 16 deep) holding only
//     "alg", "kid" and "typ": "crit", "b64", "jku", "x5u", "x5c", "jwk" and
//     "cty", among others, are refused;
//   - "alg" is "ES256" or "HS256" and equals the algorithm of the key the
//     [Resolver] selects by "kid", so an HMAC never selects an EC key and an
//     EC key never verifies an HMAC;
//   - "typ" is absent, "JWT" or "at+jwt" (case-insensitive);
//   - the signature is checked over the bytes as received, with
//     crypto/ecdsa (exactly 64 bytes of R‖S) or crypto/hmac (exactly 32
//     bytes, compared in constant time);
//   - only then are the claims parsed, with the same strict JSON rules, and
//     checked against the key's [Profile]: "exp" (required unless the
//     profile allows its absence) valid while now < exp + leeway, "nbf"
//     and "iat" not beyond now + leeway, NumericDates that are JSON numbers
//     between the epoch and the year 9999, "iss" equal to the profile's
//     issuer, "aud" a string or non-empty array of strings naming one of
//     the profile's audiences, "sub", "jti" and "iss" strings.
//
// The subject, roles, realm and scopes are read from the claims the profile
// names. The clock is a parameter: nothing here reads the time.
package jwt
