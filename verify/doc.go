// Package verify owns verifyd's decisions: whether a presented credential is
// valid, who it belongs to and whether it grants a scope.
//
// [Verifier.Verify] is the only call transports make on the hot path. It
// classifies the token by its shape (rejecting malformed and forged keys with
// no lookup), hashes it with SHA-256, resolves the digest through the
// keystore's cache and store, checks revocation and expiry against the
// injected clock, and decides the requested scope under the authorization
// policy (see below). A denial is a [Result] with a [Reason], never an error; one
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
// claims.
//
// # Authorization policy
//
// The scope is decided by the authorization policy in force (package rbac):
// [Options.Policy] at start, replaced atomically by [Verifier.SetPolicy].
// Without one, rbac.DefaultPolicy (mode deny_all) applies, where only the
// scopes a credential carries itself grant. Each cached credential (a key
// entry of the keystore, a verified JWT) keeps its principal bound against
// the policy of its last use, an rbac.Binding; a use compares that
// binding's policy with the one in force, one pointer comparison, and
// binds again when they differ. So a policy swap reaches every cached
// credential at its next use, and no decision of a replaced policy is made
// after [Verifier.SetPolicy] returns. A policy that can answer only from a
// credential's own scopes (mode deny_all without ACLs, the default) is
// decided from the compiled scopes the cached entry holds, with no binding.
// [Result.Decision] says which role,
// project and pattern granted the scope, or why the policy denied it; the
// metric verifyd_verify_policy_decisions_total counts decisions by that
// reason.
//
// [Manager] creates, imports, rotates and revokes credentials, runs the
// access-request flow (requests.go), and checks the admin key. Secrets it
// returns are shown once; only their digests are stored. Every change it
// makes is recorded in the audit trail, in the same synced batch as the
// change, with the actor its context names ([WithActor]); a failed action
// is recorded right after it failed (audit.go).
// It also manages personal access tokens in SuperMQ's model ([Manager.CreatePAT]
// and the methods after it): scope tuples mapped onto patterns by
// rbac.PATScope, the tuples kept as given in the record's metadata (see
// [PATScopes]).
//
// Verifier and Manager are safe for concurrent use.
package verify
