// Package rabbitmq answers RabbitMQ's HTTP auth backend
// (rabbitmq_auth_backend_http) with verifyd's decisions, for AMQP 0-9-1,
// MQTT and the other protocols RabbitMQ authorizes through it. It owns the
// contract of the four endpoints, the mapping of RabbitMQ's questions to
// scopes, and the memory of logins; it does not verify credentials (a
// [Verifier] does) and does not serve HTTP itself (ipc/httpapi mounts
// [Adapter.Handler] under [Prefix]).
//
// # Contract
//
// RabbitMQ calls Prefix+"user" when a client logs in (username and
// password), Prefix+"vhost" when it opens a vhost, Prefix+"resource" for
// configure, write and read on queues and exchanges, and Prefix+"topic"
// for the routing keys of topic exchanges, with the fields in the query
// string (auth_http.http_method = get) or a form body (post). The answer
// is always status 200, Content-Type text/plain, and exactly "allow",
// "deny" or, from the user endpoint, "allow <tags>", with no newline.
// Anything else, a missing, repeated or over-long field included, is
// denied (never a 4xx or 5xx), counted in
// verifyd_rabbitmq_requests_total{endpoint,outcome} and logged at debug.
//
// The password is the token: an API key or a JWT. The user endpoint
// allows a valid credential whose subject is the username (Config.Username
// "match", the default) or any valid credential ("ignore"); no scope is
// needed to log in. Its tags are those Config.Tags gives the credential's
// roles, followed by the login's binding tag (below).
//
// # Logins and the checks that follow them
//
// The vhost, resource and topic requests carry no password, only the
// username and the tags the login answered. Each successful login is
// therefore remembered: the credential is kept in memory (never logged or
// written) under a binding tag, "verifyd-" and 32 hex digits of an HMAC
// of the username and the credential under a key made at start, which the
// login's answer adds to its tags and RabbitMQ sends back with every later
// check of the connection. Each check finds the credential by that tag,
// and verifies it again with the check's scope: a revoked or expired
// credential is denied at its connection's next check, and two
// connections of one user with different credentials are each decided
// for their own. Logins are remembered for Config.BindingTTL, at most
// until the credential expires, and at most Config.MaxBindings of them
// (the least recently used is forgotten first). A check whose binding is
// unknown (verifyd restarted, the binding expired or was forgotten) is
// denied: the client must reconnect.
//
// # Scopes
//
// See [Mapping]: the default templates give rabbitmq/vhost/{vhost}:access
// for a vhost, rabbitmq/vhost/{vhost}/{resource}/{name}:{permission} for
// a queue or exchange, and
// rabbitmq/vhost/{vhost}/topic/{name}/{routing_key}:{permission} for a
// routing key, with the default vhost "/" written %2F. The wildcards of a
// binding key are checked as [Mapping.TopicScopes] describes; in addition,
// when a scope of a binding key holds a wildcard, every ACL of the policy
// in force whose scope it covers must admit the credential, so that a
// binding to "#" cannot receive what an ACL on one routing key keeps from
// the user.
//
// # Concurrency and allocation
//
// An Adapter is safe for concurrent use. RabbitMQ asks once per login and
// once per new resource of a channel (it caches answers per channel), so
// requests are not a hot path: decisions allocate.
package rabbitmq
