package keystore

import (
	"encoding/binary"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Touch notes a successful use of e, an entry returned by this store's
// Lookup, at now. It never blocks and never does
// I/O: when the entry's last noted use is less than LastUsedGranularity
// before now, it costs one atomic load; otherwise it claims the note with a
// compare-and-swap and offers it to a bounded queue, dropping (and
// counting) it if the queue is full. A background goroutine writes queued
// uses every LastUsedFlushInterval.
func (s *Store) Touch(e *Entry, now time.Time) {
	sec := now.Unix()
	last := e.lastUsed.Load()
	if sec-last < s.granularity || !e.lastUsed.CompareAndSwap(last, sec) {
		return
	}
	select {
	case s.touches <- touchNote{id: e.Principal().KeyID, at: sec}:
	default:
		s.m.lastUsedDropped.Inc()
	}
}

// flushLoop merges queued uses and writes them every flush interval, unsynced;
// when Close stops it, it drains the queue and writes the rest synced. Every
// interval it also purges expired token revocations, forgotten access
// requests and audit entries past their retention, a bounded number per
// pass.
func (s *Store) flushLoop() {
	defer close(s.done)
	t := time.NewTicker(s.flushIv)
	defer t.Stop()
	for {
		select {
		case n := <-s.touches:
			s.note(n)
		case <-t.C:
			s.flushLastUsed(pebble.NoSync)
			now := time.Now()
			s.purgeRevocations(now)
			s.purgeRequests(now)
			s.purgeAudit(now)
		case <-s.stop:
			for {
				select {
				case n := <-s.touches:
					s.note(n)
				default:
					s.flushLastUsed(pebble.Sync)
					return
				}
			}
		}
	}
}

func (s *Store) note(n touchNote) {
	s.pendingMu.Lock()
	if n.at > s.pending[n.id] {
		s.pending[n.id] = n.at
	}
	s.pendingMu.Unlock()
}

// flushLastUsed writes the pending uses in one batch. On failure they stay
// pending for the next attempt. Only the flush loop calls it, and the
// database is open until the loop has returned.
func (s *Store) flushLastUsed(opts *pebble.WriteOptions) {
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	if len(s.pending) == 0 {
		return
	}
	if err := s.checkSpace(); err != nil {
		s.log.Warn("last-used times not written", slog.Int("ids", len(s.pending)), slog.Any("err", err))
		return
	}
	b := s.db.NewBatch()
	defer b.Close()
	var v [8]byte
	for id, at := range s.pending {
		binary.BigEndian.PutUint64(v[:], uint64(at))
		if err := b.Set(lastUsedKey(id), v[:], nil); err != nil {
			s.log.Error("last-used write failed", slog.Any("err", err))
			return
		}
	}
	if err := b.Commit(opts); err != nil {
		s.log.Error("last-used write failed", slog.Int("ids", len(s.pending)), slog.Any("err", err))
		return
	}
	s.m.writeLastUsed.Inc()
	clear(s.pending)
}
