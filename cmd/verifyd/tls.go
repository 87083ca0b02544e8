package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verifyd/verifyd/ipc/httpapi"
)

// tlsWatcher keeps the HTTP listener's certificate, key and client CA
// bundle in step with their files: it reloads them on SIGHUP and when one
// of them changes (inode, size or modification time, as the policy file
// is watched). A new set that does not load (a key that does not match
// its certificate, a file half written) leaves the set in force serving;
// the error is logged and counted, and the files are loaded again at
// their next change.
type tlsWatcher struct {
	certs *httpapi.TLSCerts
	files []string
	log   *slog.Logger
	hup   chan os.Signal

	seen     []fileID // the files as last loaded (or tried)
	reloads  map[string]prometheus.Counter
	notAfter prometheus.Gauge
}

// newTLSWatcher loads the TLS files of cfg and returns their watcher, or
// nil when the listener speaks plain HTTP. An error means the daemon must
// not start. It catches SIGHUP from now on; stop releases it.
func newTLSWatcher(cfg httpapi.TLSConfig, reg prometheus.Registerer, log *slog.Logger) (*tlsWatcher, error) {
	if !cfg.Enabled() {
		return nil, nil
	}
	w := &tlsWatcher{log: log.With(slog.String("component", "tls")), reloads: map[string]prometheus.Counter{}}
	// The files' identities are read before the files themselves: a
	// change in between is seen, and loaded, at the first check.
	w.files = cfg.Files()
	w.seen = w.stat(w.files)
	var err error
	if w.certs, err = httpapi.LoadTLS(cfg); err != nil {
		return nil, err
	}
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "verifyd",
		Subsystem: "tls",
		Name:      "reloads_total",
		Help:      "Reloads of the HTTP listener's certificate, key and client CA bundle (SIGHUP, file change) by result: changed, error (the set in force keeps serving).",
	}, []string{"result"})
	w.notAfter = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "verifyd",
		Subsystem: "tls",
		Name:      "certificate_not_after_seconds",
		Help:      "When the HTTP listener's certificate in force expires, in Unix seconds.",
	})
	for _, c := range []prometheus.Collector{reloads, w.notAfter} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, r := range []string{reloadChanged, reloadError} {
		w.reloads[r] = reloads.WithLabelValues(r)
	}
	w.inForce("TLS certificate loaded")
	w.hup = make(chan os.Signal, 1)
	signal.Notify(w.hup, syscall.SIGHUP)
	return w, nil
}

// stop stops catching SIGHUP for the watcher.
func (w *tlsWatcher) stop() { signal.Stop(w.hup) }

// stat returns the identity of each file now (a missing one has the zero
// fileID).
func (w *tlsWatcher) stat(files []string) []fileID {
	ids := make([]fileID, len(files))
	for i, f := range files {
		if fi, err := os.Stat(f); err == nil {
			ids[i] = fileIDOf(fi)
		}
	}
	return ids
}

// inForce logs the certificate in force, with attrs, and sets its expiry
// gauge.
func (w *tlsWatcher) inForce(msg string, attrs ...any) {
	leaf := w.certs.Certificate()
	w.notAfter.Set(float64(leaf.NotAfter.Unix()))
	w.log.Info(msg, append([]any{"subject", leaf.Subject.String(), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339)}, attrs...)...)
	if time.Now().After(leaf.NotAfter) {
		w.log.Warn("the TLS certificate has expired: clients will refuse the handshake", "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
}

// watch reloads on SIGHUP and, with a positive check interval, when a
// file changed since it was last loaded, until ctx ends.
func (w *tlsWatcher) watch(ctx context.Context) error {
	var tick <-chan time.Time
	if d := w.certs.CheckInterval(); d > 0 {
		t := time.NewTicker(d)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.hup:
			w.reload("sighup", w.stat(w.files))
		case <-tick:
			if ids := w.stat(w.files); !equalIDs(ids, w.seen) {
				w.reload("file_change", ids)
			}
		}
	}
}

// reload loads the files again; ids are their identities, read before.
func (w *tlsWatcher) reload(trigger string, ids []fileID) {
	w.seen = ids
	if err := w.certs.Reload(); err != nil {
		w.reloads[reloadError].Inc()
		w.log.Error("TLS reload failed; the certificate in force keeps serving", "trigger", trigger, "err", err)
		return
	}
	w.reloads[reloadChanged].Inc()
	w.inForce("TLS certificate reloaded", "trigger", trigger)
}

func equalIDs(a, b []fileID) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}
