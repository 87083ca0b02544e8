package keystore

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/verifyd/verifyd/internal/stripe"
)

// A lookupOutcome is one of the counts every Lookup adds to.
type lookupOutcome int

const (
	lookupHit      lookupOutcome = iota // answered by the positive cache
	lookupMiss                          // not answered by the positive cache
	lookupFiltered                      // ruled out by the digest filter
	lookupNegHit                        // answered by the negative cache
	lookupNegMiss                       // not answered by the negative cache
	numLookupOutcomes
)

// metrics holds the store's pre-resolved metric children: the hot path only
// ever adds to a striped count (count) or calls Inc on a field.
type metrics struct {
	// lookups counts Lookup outcomes on every core without contention
	// (package stripe); the counters below expose them.
	lookups                          *stripe.Set
	hits, misses, negHits, negMisses prometheus.CounterFunc
	filterRejects                    prometheus.CounterFunc
	evictions, negEvictions          prometheus.Counter
	reads, readErrors                prometheus.Counter
	writeCreate, writeUpdate         prometheus.Counter
	writeMeta, writeLastUsed         prometheus.Counter
	writeRevocation                  prometheus.Counter
	writeRequest, writeAudit         prometheus.Counter
	lastUsedDropped                  prometheus.Counter
	filterBuilds                     prometheus.Counter

	collectors []prometheus.Collector
}

const (
	metricsNamespace = "verifyd"
	metricsSubsystem = "keystore"
)

// newMetrics builds the metrics; entries and negEntries report the number of
// cached positive and negative entries when scraped, tokens and subjects the
// number of token and subject revocations in effect, filterBytes the size
// of the digest filter.
func newMetrics(entries, negEntries, tokens, subjects, filterBytes func() float64) *metrics {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: metricsNamespace, Subsystem: metricsSubsystem, Name: name, Help: help}
	}
	lookups := stripe.New(int(numLookupOutcomes))
	lookupCounter := func(name, help, cache string, o lookupOutcome) prometheus.CounterFunc {
		co := prometheus.CounterOpts(opts(name, help))
		if cache != "" {
			co.ConstLabels = prometheus.Labels{"cache": cache}
		}
		return prometheus.NewCounterFunc(co, func() float64 { return float64(lookups.Load(int(o))) })
	}
	const hitsHelp = "Lookups answered from a cache, by cache (positive: known digests; negative: unknown digests)."
	const missesHelp = "Lookups a cache could not answer, by cache."
	hits, negHits := lookupCounter("cache_hits_total", hitsHelp, "positive", lookupHit), lookupCounter("cache_hits_total", hitsHelp, "negative", lookupNegHit)
	misses, negMisses := lookupCounter("cache_misses_total", missesHelp, "positive", lookupMiss), lookupCounter("cache_misses_total", missesHelp, "negative", lookupNegMiss)
	filterRejects := lookupCounter("digest_filter_rejects_total",
		"Lookups of digests the in-memory digest filter showed unknown, answered without a cache or store read.", "", lookupFiltered)
	evictions := prometheus.NewCounterVec(prometheus.CounterOpts(opts("cache_evictions_total",
		"Entries evicted from a cache to make room, by cache.")), []string{"cache"})
	reads := prometheus.NewCounter(prometheus.CounterOpts(opts("store_reads_total",
		"Lookups that read Pebble.")))
	readErrors := prometheus.NewCounter(prometheus.CounterOpts(opts("store_read_errors_total",
		"Lookups that failed with an I/O or corruption error.")))
	writes := prometheus.NewCounterVec(prometheus.CounterOpts(opts("writes_total",
		"Committed write batches, by operation.")), []string{"op"})
	dropped := prometheus.NewCounter(prometheus.CounterOpts(opts("last_used_dropped_total",
		"Credential uses not recorded because the last-use queue was full.")))
	gauge := func(cache string, f func() float64) prometheus.GaugeFunc {
		o := prometheus.GaugeOpts(opts("cache_entries", "Entries held in a cache, by cache."))
		o.ConstLabels = prometheus.Labels{"cache": cache}
		return prometheus.NewGaugeFunc(o, f)
	}
	entriesGauge, negGauge := gauge("positive", entries), gauge("negative", negEntries)
	revocations := func(kind string, f func() float64) prometheus.GaugeFunc {
		o := prometheus.GaugeOpts(opts("revocations", "JWT revocations in effect, by kind (token: by jti; subject: issued before a time)."))
		o.ConstLabels = prometheus.Labels{"kind": kind}
		return prometheus.NewGaugeFunc(o, f)
	}
	tokensGauge, subjectsGauge := revocations("token", tokens), revocations("subject", subjects)
	filterBuilds := prometheus.NewCounter(prometheus.CounterOpts(opts("digest_filter_builds_total",
		"Rebuilds of the digest filter from the digest index, larger, after it filled up (the build at start-up not counted).")))
	filterSize := prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("digest_filter_bytes",
		"Memory held by the digest filter.")), filterBytes)
	return &metrics{
		lookups: lookups, hits: hits, negHits: negHits, misses: misses, negMisses: negMisses,
		evictions: evictions.WithLabelValues("positive"), negEvictions: evictions.WithLabelValues("negative"),
		reads: reads, readErrors: readErrors,
		writeCreate: writes.WithLabelValues("create"), writeUpdate: writes.WithLabelValues("update"),
		writeMeta: writes.WithLabelValues("meta"), writeLastUsed: writes.WithLabelValues("last_used"),
		writeRevocation: writes.WithLabelValues("revocation"),
		writeRequest:    writes.WithLabelValues("request"), writeAudit: writes.WithLabelValues("audit"),
		lastUsedDropped: dropped,
		filterRejects:   filterRejects, filterBuilds: filterBuilds,
		collectors: []prometheus.Collector{hits, negHits, misses, negMisses, evictions, reads, readErrors, writes, dropped,
			entriesGauge, negGauge, tokensGauge, subjectsGauge, filterRejects, filterBuilds, filterSize},
	}
}

// count adds one Lookup outcome to stripe st (stripe.Index).
func (m *metrics) count(st uint32, o lookupOutcome) {
	m.lookups.Add(st, int(o), 1)
}
