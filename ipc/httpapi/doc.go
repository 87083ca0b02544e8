// Package httpapi is verifyd's HTTP surface, served with fasthttp: the verify
// endpoint, the admin API for keys, JWT revocations, trust sources and the
// authorization policy, health and readiness probes, and Prometheus
// metrics. It translates requests into calls on package verify (and, for
// the policy, on a [PolicyAdmin] that cmd/verifyd provides) and results
// back into responses; it holds no authorization logic of its own.
//
// # Endpoints
//
//	POST   /v1/verify                    {"token","scope"} -> 200 allow / 401 / 403 / 400 / 429 / 503
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
//	POST   /v1/auth/request              no credential: an agent asks for a key (201 {"request_token",...}; 200 for a repeat)
//	GET    /v1/auth/status/{token}       no credential: the request's status, never the key
//	GET    /v1/admin/requests?status=S   access requests (never their tokens)
//	GET    /v1/admin/requests/{ref}      one request, by id or token
//	POST   /v1/admin/requests/{ref}/approve  create the agent's key (shown once); 409 unless pending
//	POST   /v1/admin/requests/{ref}/deny     409 unless pending
//	DELETE /v1/admin/agents/{agent_id}   revoke the agent's live keys
//	GET    /v1/admin/audit               the audit trail: since, until, actor, action, target, order, limit, cursor
//
// Every admin call runs with the admin key's audit actor in its context
// (verify.WithActor), so that the Manager records who acted. Calls refused
// for a missing or wrong admin key are counted in
// verifyd_http_admin_auth_failures_total, not audited.
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
// # TLS and throttling
//
// [TLSCerts.Listener] serves TLS (1.2 and up) with material that Reload
// replaces atomically; Options.ClientNames then admits to the admin and
// verify route groups only connections whose verified client certificate
// bears a listed name (403 otherwise), decided once per connection. With
// Options.Throttle, /v1/verify and /v1/authz verify through a
// verify/throttle gate: 429 RATE_LIMITED with Retry-After for a client in
// a cool-down or a credential over its rate limit. The client is the
// connection's address, or the one a trusted proxy names; /v1/authz,
// whose caller is always a gateway, is counted only in the latter case.
//
// A *fasthttp.RequestCtx never escapes its handler.
package httpapi
