// Package keystore owns verifyd's durable credential state: the records of
// API keys, agent keys, PATs and imported keys, kept in Pebble on disk with
// ristretto caches in front. Nothing else opens the Pebble store.
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
//
// Every change to a record goes through one internal function that takes
// the old and the new record, derives the index changes from the pair, and
// commits them with the record in one batch with [pebble.Sync]: an
// acknowledged write survives a crash (kill -9 or power loss). Meta writes
// are synced too. Every level has a bloom filter (10 bits per key), and the
// digest index is read through an iterator that also consults the bottom
// level's filters, so a lookup of an unknown digest rarely touches a data
// block.
//
// Last-use times are kept apart from the records. [Store.Touch] queues a
// note at most once per LastUsedGranularity per cached entry, and one
// background goroutine merges the notes and writes them in one batch every
// LastUsedFlushInterval, without syncing: a crash loses at most one flush
// interval of last-use times. [Store.Close] writes the remainder synced.
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
// # Concurrency and allocation
//
// A [Store] is safe for concurrent use (Close excepted, see [Store]). On a
// cache hit Lookup takes none of the store's locks and allocates nothing; on a miss it reads Pebble under a read lock that
// only Close takes exclusively. Touch is one atomic load when there is
// nothing to note and never blocks. Writes (Create, Update, Meta, SetMeta)
// are serialized by one mutex, held across their synced commit; they never
// delay Lookup. An [Entry] is immutable and shared: callers must not modify
// it or anything it points to.
package keystore
