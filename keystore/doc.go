// Package keystore owns verifyd's durable credential state: the records of
// API keys, agent keys, PATs and imported keys, kept in Pebble on disk with
// ristretto caches in front, and the revocations of JWTs (JWTs themselves
// are never stored). Nothing else opens the Pebble store.
//
// keystore holds no crypto policy. Callers hand it SHA-256 digests of
// presented tokens ([Sum]), never tokens, and it never sees a secret. It
// does not decide whether a credential is acceptable either: [Store.Lookup]
// reports what is stored (expiry, revocation, grants) and the verifier
// decides.
//
// # Pebble layout
//
// Keys begin with a one-byte prefix:
//
//	r <id>                  -> record, encoded by Record.AppendEncode
//	d <digest (32 bytes)>   -> id; present for a record's Digest, and for its
//	                           PrevDigest while that is set
//	s <subject> 0x00 <id>   -> empty; the subject index (subjects hold no NUL)
//	u <id>                  -> last use, u64 big-endian Unix seconds
//	m <name>                -> meta value (Store.Meta, Store.SetMeta)
//	j <jti>                 -> JWT revocation, TokenRevocation.AppendEncode
//	n <subject>             -> JWT subject revocation, SubjectRevocation.AppendEncode
//	q <id>                  -> access request, AccessRequest.AppendEncode
//	g <agent id>            -> id of the agent's latest access request
//	l <time> <seq>          -> audit entry, AuditEntry.AppendEncode; time in
//	                           Unix nanoseconds and seq, both u64 big-endian,
//	                           so that the log is ordered by time
//
// Every change to a record goes through one internal function that takes
// the old and the new record, derives the index changes from the pair, and
// commits them with the record in one batch with [pebble.Sync]: an
// acknowledged write survives a crash (kill -9 or power loss). The same
// function commits access requests, JWT revocations and audit entries, so
// that a change and the audit entry that records it are one batch, all or
// none ([Store.Apply] and [Txn]). Meta writes are synced too. Every level has a bloom filter (10 bits per key), and the
// digest index is read through an iterator that also consults the bottom
// level's filters, so a lookup of an unknown digest rarely touches a data
// block.
//
// In front of Pebble, a [Store.Lookup] that misses the positive cache
// consults an in-memory filter of every indexed digest (a blocked Bloom
// filter, 32 bits a digest when full; read whole at Open, added to by the
// same function before each commit, rebuilt larger from the digest index
// when it fills): an unknown digest, such as a flood of random keys, is then
// answered without the negative cache or a store read, and the negative
// cache holds only the filter's false positives and removed digests.
//
// Last-use times are kept apart from the records. [Store.Touch] queues a
// note at most once per LastUsedGranularity per cached entry, and one
// background goroutine merges the notes and writes them in one batch every
// LastUsedFlushInterval, without syncing: a crash loses at most one flush
// interval of last-use times. [Store.Close] writes the remainder synced.
//
// # Access requests and the audit log
//
// Access requests are stored by ID with an index from agent to its latest
// request; the store keeps the pending ones' addresses and deadlines in
// memory so that counting them reads nothing. A request is deleted after its
// ForgetAt, and audit entries after [Options.AuditRetention], in bounded
// passes of the background goroutine ([Store.ListAudit] reads the log by
// time range). Audit sequence numbers are never reused: the last one given
// is kept in the meta value "audit_seq", written in each entry's batch.
//
// # Replicated mode
//
// With [Options.Replicator] set, the store is a replica of a shared,
// ordered log (etcd, through internal/cluster). A write still builds its
// [ChangeSet] under the write lock from the local state, then hands it to
// the Replicator without the lock; the Replicator commits it guarded by the
// values it replaces, and returns once the change, delivered back by the
// log, has been applied here by [Store.ApplyReplicated] — the same commit as
// a local write, with the log position ([ReplicaPos], meta value
// "replica_pos") in the same synced batch. When a guard fails, the write is
// built again from the state that includes the change that won.
// [Store.Resync] replaces the replicated state by a snapshot of the log.
// The audit log, last-use times and the purges stay local.
//
// # Caches and linearizable revocation
//
// Lookups are served from a ristretto cache keyed by the digest's own bits
// (no second hash), and unknown digests from a second, bounded ristretto
// with a short TTL. Both are guarded by generation counters sharded by
// digest, so that once a write returns, no later Lookup sees the state
// before it, even through ristretto's asynchronous Set buffer. The argument
// is given at [Store.Lookup].
//
// A cached [Entry] is small (96 bytes): its principal's own part (subject,
// record ID, expiry) and a pointer to an [rbac.Profile] (kind, roles,
// scopes with their compiled matcher, rate limit) shared by every cached
// entry whose record has the same ones, and collected once none does.
//
// # JWT revocations
//
// JWTs are revoked by jti ([Store.RevokeToken]) or by subject and a
// not-before time ([Store.RevokeSubject]). The revocations in effect are
// held in memory, loaded at Open, and answered by [Store.TokenRevoked]
// without I/O or allocation. A revocation is committed with [pebble.Sync],
// then applied to memory, then [Store.RevocationGen] advances, and only then
// does the call return; a cache of verification decisions stamped with the
// generation re-checks those made before (the argument is given at
// RevocationGen). Every revocation goes through one internal function that
// stages a batch of them, so that a replication feed can apply its changes
// the same way the admin API does. Writes are idempotent and monotonic: a
// jti's revocation is kept until the later of the expiries given, a
// subject's not-before only moves forward. Token revocations are forgotten
// [RevocationRetention] after their expiry, at Open and in bounded passes
// of the background goroutine. A stored revocation that cannot be decoded
// makes Open fail with [ErrCorrupt]: the store refuses to serve without it.
//
// # Concurrency and allocation
//
// A [Store] is safe for concurrent use (Close excepted, see [Store]). On a
// cache hit Lookup takes none of the store's locks and allocates nothing; on a miss it reads Pebble under a read lock that
// only Close takes exclusively. Touch is one atomic load when there is
// nothing to note and never blocks. Writes (Create, Update, Meta, SetMeta,
// RevokeToken, RevokeSubject) are serialized by one mutex, held across their
// synced commit; they never delay Lookup. TokenRevoked takes a read lock
// that revocation writes hold only to update two maps, after their commit. An [Entry] is immutable and shared: callers must not modify
// it or anything it points to. The one thing it caches is its principal's
// binding to the authorization policy in force ([Entry.Binding]), an atomic
// pointer that is replaced, never modified, when the policy changes.
package keystore
