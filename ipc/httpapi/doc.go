// Package httpapi is verifyd's HTTP surface, served with fasthttp: the verify
// endpoint, the admin API for keys, JWT revocations, trust sources and the
// authorization policy, health and readiness probes, and Prometheus
// metrics. It translates requests into calls on package verify (and, for
// the policy, on a [PolicyAdmin] that cmd/verifyd provides) and results
// back into responses; it holds no authorization logic of its own.
//
// # Endpoints
//
//	POST   /v1/verify                    {"token","scope"} -> 200 allow / 401 / 403 / 400 / 503
//	POST   /v1/introspect                RFC 7662, for configured clients: 200 {"active":true,...} or {"active":false} / 401 / 400
//	GET    /healthz                      200 while the process runs
//	GET    /readyz                       200 when the store is open, 503 otherwise
//	GET    /metrics                      Prometheus text format
//	POST   /v1/admin/keys                create a key (201, secret shown once)
//	POST   /v1/admin/keys/import         import an existing secret (201)
//	GET    /v1/admin/keys?subject=S      list keys (never secrets)
//	GET    /v1/admin/keys/{id}           one key
//	DELETE /v1/admin/keys/{id}           revoke
//	POST   /v1/admin/keys/{id}/rotate    new secret, same id; {"grace":"10m"} keeps the old one working
//	POST   /v1/admin/revocations         revoke JWTs: {"jti","expires_at"} or {"subject","not_before"} (201)
//	GET    /v1/admin/revocations         the JWT revocations in effect: {"tokens":[...],"subjects":[...]}
//	GET    /v1/admin/trust               the JWT trust sources
//	GET    /v1/admin/policy              the authorization policy in force: mode, summary, file, loaded_at, last error
//	POST   /v1/admin/policy/reload       reload the policy file: 200 with the summary, 400 with every problem (old policy kept)
//	GET    /v1/admin/policy/explain      ?subject=&project=&realm=&role=&scope= (or ?key_id=&scope=): how the policy decides, step by step
//	POST   /v1/admin/policy/explain      {"token","scope"}: the same for the principal of a valid credential (422 if it is not)
//
// A verify answer carries "reason": the policy's reason when a scope was
// decided (granted, not_on_acl, stream_role, ...), "authenticated" when no
// scope was asked, else the status; an allowed scope adds "matched":
// {"role","project","pattern"}. GET /readyz says so in its body while the
// policy has mode none.
//
// Admin endpoints require the admin key in X-Admin-Key and answer 401 without
// it, never hinting whether a key exists. Errors are JSON objects
// {"code","error","message"}. Request bodies are limited to
// [DefaultMaxBodyBytes] unless configured otherwise; a larger body, malformed
// JSON, an unknown field or an invalid value gets 400 and changes nothing.
//
// Times in revocation requests are RFC 3339 strings or JSON numbers of Unix
// seconds (a JWT NumericDate); answers use RFC 3339 in UTC. A revocation is
// answered only once it is durable and in effect on this node.
//
// A *fasthttp.RequestCtx never escapes its handler.
package httpapi
