// Package trust is verifyd's trust registry: the keys that may verify JWTs,
// loaded from JWK set files, fetched from JWK set URLs or through OpenID
// Connect discovery, and HS256 secrets from files or the environment. A
// [Registry] is the [jwt.Resolver] of the JWT verifier.
//
// trust owns key sets, not tokens: it never parses a token, and jwx
// (github.com/lestrrat-go/jwx/v3) is used here only to parse keys. Each
// source becomes one [jwt.Profile] (issuer, audience, leeway, identity
// claims) shared by all its keys.
//
// # Key sets
//
// [ParseJWKS] is the one validation path of key sets, whatever their origin.
// Only ES256 verification keys are used: EC keys on P-256, with "alg"
// absent or ES256, "use" absent or "sig", "key_ops" absent or including
// "verify", and canonical 32-byte coordinates forming a point of the curve.
// Keys that are simply not for verifyd, such as the RSA keys identity
// providers publish beside EC ones, are skipped (logged at Debug, counted
// in [SourceStatus.SkippedKeys]). A set is accepted or rejected as a whole:
// it is rejected when a key claiming P-256 or ES256 is invalid, when any
// key carries a private part or is symmetric, when two usable keys share a
// kid, or when no key is usable. A kid may belong to one source only; a
// set naming a kid another source has is rejected too.
//
// A rejected or unavailable set never replaces a good one: the source keeps
// its last good keys. A fetched source whose last good fetch is older than
// Config.MaxStaleness fails closed instead: its keys are retired and
// removed (logged at Error) until a fetch succeeds. Staleness is checked
// after every failed fetch, so it takes effect within one retry interval.
//
// # Key identity and retirement
//
// A [jwt.Key] keeps its identity while it stays published: a new set's key
// with the same kid and material as a current one is replaced by the
// current value. A key that leaves its source (removed, changed, or dropped
// for staleness) is retired ([jwt.Key.Retire]) once a snapshot without it
// is published, which is how verification results cached under a key are
// dropped.
//
// # Fetching
//
// Every request is a GET with "Accept: application/json", bounded by
// Config.FetchTimeout, body included; the status must be 200 and the body
// at most Config.MaxJWKSBytes (no more than one extra byte is read).
// Redirects are limited to 5 and never lead from https to http. Logs and
// errors show URLs without user information, query or fragment. A source
// is fetched every Refresh; after a failure it is retried after 1s,
// doubling up to Refresh. At most one refresh of a source is in flight:
// loops, [Registry.Refresh] and lookups of unknown kids share it.
//
// An OIDC source fetches <issuer>/.well-known/openid-configuration (one
// trailing '/' of the issuer removed), requires its "issuer" to equal the
// configured one exactly, and fetches its "jwks_uri" like a jwks_url. The
// jwks_uri is kept for an hour and discovered again sooner if a refresh
// fails, so a refresh normally costs one request.
//
// Files are checked every Refresh (modification time, size and identity)
// and reloaded when they change; a file that fails to load at start is an
// error of [New], and later a logged failure that keeps the last good keys.
// Secrets in environment variables are read once, by New.
//
// # Lookups
//
// [Registry.ResolveKey] reads an immutable snapshot with one atomic load:
// a known kid, or a token without kid when exactly one key of its
// algorithm exists, is answered with no lock and no allocation, as are
// all refusals except one. An ES256 kid that no source has may be new: if
// the rate limit of the fetched sources allows (one such refresh per
// source per Config.UnknownKidRefresh), the lookup refreshes them, waits,
// and looks once more; otherwise it joins a refresh in flight or fails at
// once. Errors wrap [jwt.ErrUntrustedKey] and never contain the kid,
// which the token supplies.
//
// A [Registry] is safe for concurrent use. Its refresh goroutines run until
// [Registry.Close].
//
// # Metrics
//
// With Options.Registerer set: verifyd_trust_refreshes_total{source,result},
// verifyd_trust_keys{source}, verifyd_trust_skipped_keys{source},
// verifyd_trust_last_success_timestamp_seconds{source},
// verifyd_trust_stale{source} and verifyd_trust_unknown_kid_total{result}.
package trust
