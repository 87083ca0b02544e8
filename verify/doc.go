// Package verify owns verifyd's decisions: whether a presented credential is
// valid, who it belongs to and whether it grants a scope.
//
// [Verifier.Verify] is the only call transports make on the hot path. It
// classifies the token by its shape (rejecting malformed and forged keys with
// no lookup), hashes it with SHA-256, resolves the digest through the
// keystore's cache and store, checks revocation and expiry against the
// injected clock, and matches the requested scope against the principal's
// compiled grants. A denial is a [Result] with a [Reason], never an error; one
// reason table drives HTTP statuses, error codes, log fields and metric
// labels. A decision answered from the cache allocates nothing.
//
// A token with the shape of a JWT goes to the strict front end of package
// verify/jwt instead, with keys from the trust registry (package
// verify/trust). A verified JWT is cached by the SHA-256 of its exact bytes
// until its "exp", never longer; each use re-checks exp and nbf against the
// clock, whether the key that verified it is still trusted, and, when the
// store's revocation generation moved, the revocations by jti and by
// subject. Its principal takes the subject, roles, realm and scopes from the
// claims, and the scope check uses those scopes.
//
// [Manager] creates, imports, rotates and revokes credentials and checks the
// admin key. Secrets it returns are shown once; only their digests are stored.
//
// Verifier and Manager are safe for concurrent use.
package verify
