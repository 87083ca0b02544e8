// Package adminclient is the Go client for verifyd's HTTP API: the admin key
// endpoints under /v1/admin/keys, the JWT revocation endpoint
// /v1/admin/revocations, the trust source status endpoint /v1/admin/trust,
// the authorization policy endpoints under /v1/admin/policy, the access
// requests under /v1/admin/requests and /v1/admin/agents with the agents'
// side under /v1/auth, the audit trail /v1/admin/audit, and the
// verification endpoint /v1/verify. The verifyctl command is built on it.
//
// It also defines the JSON shapes of that API ([Key], [KeySpec],
// [ImportRequest], [RotateRequest], [KeyList], [JWTRevocation],
// [RevocationList], [TrustSource], [TrustSourceList], [PolicyStatus],
// [PolicyExplanation], [AccessRequest], [Approval], [AuditEntry],
// [VerifyRequest], [VerifyResult] and the error body [APIError]). Their json tags are the wire contract: the daemon's HTTP
// package encodes and decodes the same shapes, so a field renamed here is
// renamed on the wire.
//
// # Results and errors
//
// Every method returns a [*APIError] when the daemon answers with an error
// status, carrying the HTTP status and the daemon's code, error and message.
// [Client.Verify] is the exception for decisions: a denial (401 or 403 with a
// decision body) is a [VerifyResult] with Allow false and a nil error, as a
// denied credential is a result, not a failure. Arguments that cannot be sent
// (an empty or malformed key id, a negative duration, an empty token) fail
// with an error wrapping [ErrInvalidArgument] before any request is made (so
// does a revocation naming neither or both of a jti and a subject), and
// admin methods called on a client without an admin key fail with
// [ErrNoAdminKey]. Any other error means the daemon could not be reached or
// answered something outside the contract.
//
// # Security
//
// [NewTLS] talks to a daemon that serves HTTPS with a CA bundle of the
// caller's and a client certificate ([LoadTLSConfig]); [New] with an
// https:// address uses the system's roots.
//
// The admin key travels only in the X-Admin-Key header and never appears in
// an error. Redirects are not followed, so the header is never replayed to
// another address. Secrets returned by the daemon ([Key.Secret],
// [Approval.AgentKey], [AccessTicket.RequestToken]) and tokens
// sent to it ([VerifyRequest.Token], [ImportRequest.Secret]) are redacted
// when the values are logged through log/slog.
//
// # Concurrency
//
// A [Client] is safe for concurrent use by multiple goroutines.
package adminclient
