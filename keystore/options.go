package keystore

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
)

// Options configures a [Store]. A nil *Options means all defaults. Open
// works on a copy and never modifies the caller's Options.
type Options struct {
	// CacheEntries bounds the number of digests whose entries are cached.
	// The default value is 1<<20.
	CacheEntries int64

	// NegativeEntries bounds the number of unknown digests remembered as
	// unknown, so that a flood of random tokens does not become a flood of
	// disk reads. The default value is 1<<16.
	NegativeEntries int64

	// NegativeTTL is how long an unknown digest is remembered as unknown.
	// Creating a credential makes its digest known at once regardless.
	// The default value is 10s.
	NegativeTTL time.Duration

	// LastUsedFlushInterval is how often noted uses are written to disk.
	// These writes are not synced: a crash loses at most this interval's
	// worth of last-use times. The default value is 10s.
	LastUsedFlushInterval time.Duration

	// LastUsedGranularity is the resolution of a credential's last-use
	// time: a use is noted at most once per this interval per cached
	// entry. It must be at least one second. The default value is 1m.
	LastUsedGranularity time.Duration

	// LastUsedQueue is the capacity of the queue between [Store.Touch] and
	// the writer of last-use times. Notes that find it full are dropped and
	// counted. The default value is 4096.
	LastUsedQueue int

	// AuditRetention is how long audit entries are kept; older ones are
	// deleted in bounded background passes. The default value is 90 days.
	AuditRetention time.Duration

	// BlockCacheBytes is the size of Pebble's block cache.
	// The default value is 32 MiB.
	BlockCacheBytes int64

	// Registerer receives the store's metrics. nil means no metrics are
	// registered (they are still counted, and cost the same).
	Registerer prometheus.Registerer

	// Logger receives operational faults. nil means slog.Default().
	Logger *slog.Logger

	// FS is the file system holding the store. nil means the real disk;
	// tests may pass vfs.NewMem().
	FS vfs.FS

	// Replicator, when set, makes the store a replica of a shared log:
	// every write is committed through it and applied when the log
	// delivers it ([Store.ApplyReplicated]). nil: the store is its own
	// source of truth.
	Replicator Replicator

	// ErrorIfNotExists makes Open fail when dir holds no store, instead of
	// creating an empty one.
	ErrorIfNotExists bool
}

// Default values of Options fields.
const (
	DefaultCacheEntries          = 1 << 20
	DefaultNegativeEntries       = 1 << 16
	DefaultNegativeTTL           = 10 * time.Second
	DefaultLastUsedFlushInterval = 10 * time.Second
	DefaultLastUsedGranularity   = time.Minute
	DefaultLastUsedQueue         = 4096
	DefaultBlockCacheBytes       = 32 << 20
	DefaultAuditRetention        = 90 * 24 * time.Hour
)

// EnsureDefaults sets every zero field of o to its default value.
func (o *Options) EnsureDefaults() {
	if o.CacheEntries == 0 {
		o.CacheEntries = DefaultCacheEntries
	}
	if o.NegativeEntries == 0 {
		o.NegativeEntries = DefaultNegativeEntries
	}
	if o.NegativeTTL == 0 {
		o.NegativeTTL = DefaultNegativeTTL
	}
	if o.LastUsedFlushInterval == 0 {
		o.LastUsedFlushInterval = DefaultLastUsedFlushInterval
	}
	if o.LastUsedGranularity == 0 {
		o.LastUsedGranularity = DefaultLastUsedGranularity
	}
	if o.LastUsedQueue == 0 {
		o.LastUsedQueue = DefaultLastUsedQueue
	}
	if o.BlockCacheBytes == 0 {
		o.BlockCacheBytes = DefaultBlockCacheBytes
	}
	if o.AuditRetention == 0 {
		o.AuditRetention = DefaultAuditRetention
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
}

// Validate reports every field of o that holds an invalid value, joined into
// one error. Zero fields are invalid until EnsureDefaults has filled them.
func (o *Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("keystore: invalid options: "+format, args...))
	}
	if o.CacheEntries < 1 {
		bad("CacheEntries %d is not positive", o.CacheEntries)
	}
	if o.NegativeEntries < 1 {
		bad("NegativeEntries %d is not positive", o.NegativeEntries)
	}
	if o.NegativeTTL <= 0 {
		bad("NegativeTTL %v is not positive", o.NegativeTTL)
	}
	if o.LastUsedFlushInterval <= 0 {
		bad("LastUsedFlushInterval %v is not positive", o.LastUsedFlushInterval)
	}
	if o.LastUsedGranularity < time.Second {
		bad("LastUsedGranularity %v is less than 1s", o.LastUsedGranularity)
	}
	if o.LastUsedQueue < 1 {
		bad("LastUsedQueue %d is not positive", o.LastUsedQueue)
	}
	if o.BlockCacheBytes < 1 {
		bad("BlockCacheBytes %d is not positive", o.BlockCacheBytes)
	}
	if o.AuditRetention <= 0 {
		bad("AuditRetention %v is not positive", o.AuditRetention)
	}
	return errors.Join(errs...)
}
