// Package natscallout is verifyd's NATS auth callout service: a NATS
// server configured with authorization { auth_callout { ... } } hands each
// client connection to it, and it answers with a user JWT that carries the
// client's permissions, or with an error that makes the server refuse the
// client.
//
// The service connects as the callout user (one of auth_users) and
// subscribes to $SYS.REQ.USER.AUTH in a queue group. Each request is a JWT
// signed by the server's nkey, optionally encrypted with the server's
// curve key (xkey). A request is answered only when it is what a server
// configured with this service's issuer sends: its signature verifies, it
// is signed by the server it names, its audience is
// "nats-authorization-request", its subject is the issuer's public key and
// it has not expired. The credential is the client's token, or its
// password; it is verified without a scope, and an allowed one gets a
// user JWT in the configured account, signed by the issuer account key,
// expiring with the credential or after Config.MaxTTL, whichever is first,
// whose publish and subscribe permissions are the NATS subjects its grants
// map to (ScopeMapping.Subject). Replayed requests gain nothing: the
// server accepts only a response for the fresh user key of its own
// request.
//
// The contract is nats-server's (server/auth_callout.go) and nats-io/jwt's
// (authorization_claims.go); docs/integrations/nats.md gives the server's
// configuration, the mapping and troubleshooting.
package natscallout
