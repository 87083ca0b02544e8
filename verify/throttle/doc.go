// Package throttle slows brute force and enforces credentials' rate
// limits in front of a [verify.Verifier]. Transports (ipc/httpapi's
// /v1/verify, /v1/authz and the owners' credentials of /v1/pats, the Unix
// socket) verify through a [Gate] instead of calling the verifier; the
// verifier itself and its Verify signature are unchanged, and its other
// callers (the broker adapters, the NATS callout, introspection) are not
// throttled.
//
// # Failures
//
// A verification that answers malformed (forged API keys included),
// unknown or bad_signature is a failure: these are what guessing a secret
// or forging a signature produces. Expired, revoked, not_yet_valid,
// untrusted_key and invalid_claims are not: they come from a genuine
// credential presented late or by a misconfigured client, which retries
// it steadily, and counting them would throttle such a client's
// neighbours without slowing any guessing. Forbidden and invalid_scope are
// not failures either: the credential is valid.
//
// Failures are counted per source and per presented PAT id. A source that
// reaches Config.Failures within Config.Window (counted from its first
// failure) is in a cool-down for Config.Cooldown: every verification from
// it is answered [verify.RateLimited] without asking the verifier, so
// without any store access, whatever its credential. Likewise a PAT id
// that reaches Config.KeyFailures: every token presenting that id is
// answered rate_limited, from any source. Only PATs embed an id ("pat_"
// + id + "_" + secret): an API key ("vk_") is random throughout, its
// checksum already refuses forgeries without a lookup, and there is no id
// to guess against. A source or id in a cool-down is not counted further,
// and its count starts afresh when the cool-down ends.
//
// # Sources
//
// A source is a client address (IPv4, or the /64 of an IPv6 address) or a
// socket peer's uid. Who counts as the source depends on the interface:
//
//   - HTTP /v1/verify: the connection's address. From a trusted proxy
//     (Config.TrustedProxies), the client its Config.ClientIPHeader names
//     (X-Forwarded-For: the rightmost address that is not a trusted
//     proxy; a one-address header such as X-Real-IP: that address), or no
//     source when it names none: a proxy asks for many clients, and
//     counting its own address would let one of them lock out all the
//     others. Headers are never believed from other addresses. The
//     loopback addresses are trusted proxies by default: local callers are
//     gateways and brokers.
//   - HTTP /v1/authz: its caller is always a gateway, so only the client a
//     trusted proxy names is a source; from any other address the request
//     is counted by PAT id only.
//   - The Unix socket: the peer's uid (SO_PEERCRED) when
//     Config.SocketPeers is set; by default no source, since a socket peer
//     is a broker that asks for all its clients.
//
// # Rate limits
//
// A valid credential (OK or Forbidden) may carry a rate limit: a stored
// key's "rate_limit" metadata ("100/s", "600/m", "1000/h"), or else the
// highest limit Config.RoleRateLimits gives one of its global roles. Its
// bucket (the generic cell rate algorithm: requests at the rate, in
// bursts of up to the count) is keyed by the key id, or for a JWT by its
// trust source and jti (its subject without one). A request beyond it is
// answered rate_limited. An invalid "rate_limit" value (the admin API
// refuses to store one) counts as none.
//
// # Memory, cost and concurrency
//
// Sources, PAT ids and buckets live in fixed tables allocated by [New]:
// Config.Entries sources, as many ids, and Config.Credentials buckets,
// each table 64 locked shards of 8-way sets. A flood from many addresses
// cannot grow them: a new key takes the place of an idle entry in its
// set, else of the entry whose window began first, and displaces an entry
// in a cool-down only when its whole set is in cool-down. Keys are hashed
// with a per-process random seed, so nobody can aim at another's set.
//
// A [Limiter] and its Gates are safe for concurrent use. While no source
// or id is in a cool-down anywhere, a verification of a credential
// without a rate limit costs the throttle two atomic loads and allocates
// nothing; the clock is read only when something is to be checked or
// counted.
package throttle
