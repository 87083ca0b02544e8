// Package mqtt answers MQTT brokers' authentication and authorization
// questions in their own HTTP contracts: mosquitto-go-auth's HTTP backend
// (/v1/compat/mqtt/user, /superuser, /acl) and EMQX's HTTP authenticator
// and authorizer (/v1/compat/emqx/authn, /authz). It maps MQTT topics to
// scopes and asks the verifier; it does not verify credentials itself, and
// it reads no configuration files (cmd does). docs/integrations/mqtt.md and
// docs/integrations/emqx.md are the operator's pages.
//
// # Credentials and clients
//
// A client connects with a credential (an API key, a PAT or a JWT) as its
// MQTT password. The connection check verifies it and, with username:
// match (the default), requires the MQTT username to be the credential's
// subject. The ACL checks that follow carry the username and the client id
// but no password, so a successful connection check binds the client (its
// username and client id) to the token it presented, in a bounded
// in-memory table (max_bindings, least recently used forgotten first), and
// every ACL check verifies that token again: a revoked or expired
// credential is refused at its client's next check, although the
// connection stays open until the broker closes it. A client with no
// binding (it connected before verifyd started, or was forgotten) is
// denied. Keying by client id as well as username keeps two clients that
// share a username, with credentials of different reach, apart. The tokens
// are held in memory only and never logged.
//
// # Topics and scopes
//
// A topic maps to the scope Config.Scope renders, by default
// mqtt/topic/{topic}:{action}. The action is publish for a publication
// (mosquitto acc 2, EMQX publish) and subscribe for a subscription (acc 4,
// EMQX subscribe) and for the delivery of a message to a subscriber (acc 1,
// which mosquitto checks per message): whatever lets a client subscribe to
// a filter lets it receive the messages the filter matches, so one policy
// serves both brokers. An unsubscription (acc 8) needs only a valid
// credential. EMQX's action all needs both publish and subscribe.
//
// A topic holding a character a scope cannot hold (':', '*', a space,
// control or non-ASCII characters, anything outside
// rbac.ValidateScope's alphabet) is denied, never escaped. A topic name
// holding '+' or '#', and an invalid filter ('+' not alone in its level,
// '#' not the whole last level, as in a+ or a/#/b), are denied; empty
// levels are valid MQTT and allowed.
//
// # Wildcard filters
//
// In a subscription's filter each '+' or '#' level becomes a '*' of the
// requested scope: a/+/c needs mqtt/topic/a/*/c:subscribe. rbac reads a
// requested '*' as an ordinary character, so a pattern grants such a scope
// only if it matches whatever the '*' may stand for (any run of characters
// other than ':', which covers any levels): mqtt/topic/a/*:subscribe covers
// a/+/c, mqtt/topic/a/b:subscribe does not cover a/+. No '+' or '#' ever
// reaches a scope, so a pattern holding a literal '+' (such as
// mqtt/topic/+*:subscribe) covers no filter. '#' also matches its parent
// level (a/# receives a), so a/# needs both mqtt/topic/a/*:subscribe and
// mqtt/topic/a:subscribe. A shared subscription $share/<group>/<filter> is
// checked as its filter.
//
// An ACL of the policy on a concrete topic (acls: mqtt/topic/a/secret:
// {subscribe: [...]}) binds wildcard subscriptions too: a filter that
// matches the topic (a/+, a/#, +/secret, #) is denied unless the ACL
// admits the subject, or an acl_exempt role's pattern matches the ACL's
// scope, as for the topic itself (see rbac.Policy.ACLsAdmit). Which ACL
// topics a filter matches follows MQTT's levels exactly: a/+ does not
// reach a/b/secret. Together: when a filter is allowed, every topic it
// matches is allowed on its own.
//
// # Superusers
//
// A credential carrying Config.SuperuserRole, or granted
// Config.SuperuserScope, is a superuser's: its ACL checks allow every
// valid topic, those no scope can name included (an invalid MQTT topic
// stays denied), and EMQX's authentication answer says is_superuser
// (EMQX then skips authorization for the connection). mosquitto-go-auth's
// /superuser names only a username: it answers yes when the username has
// exactly one bound client, that client's credential is a superuser's, and
// no binding has ever been forgotten for lack of room; otherwise no, and
// the /acl check decides, honouring superusers per client.
//
// # Concurrency
//
// An Adapter is safe for concurrent use. Its handlers never keep the
// fasthttp.RequestCtx.
package mqtt
