package keystore

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// What the store does about the disk failing under it: a damaged WAL and a
// full volume.

// walFormat is the oldest Pebble format the store runs on. From it on,
// every WAL chunk records how far the log had been synced when it was
// written, so that replay tells damage to synced records (Open fails with
// ErrCorrupt) from a torn final write (its unsynced tail is dropped). In
// older formats both read as a torn tail: a flipped bit in the middle of
// the WAL silently dropped every acknowledged write after it.
//
// Pebble can only confirm damage from a later 32 KiB block of the log, so
// damage within the log's last block still reads as a torn tail.
const walFormat = pebble.FormatWALSyncChunks

// openPebble opens the Pebble store in dir at walFormat or newer. Pebble
// starts the WAL of an Open before it raises the store's format, so a store
// that is new, or older than walFormat, is opened twice: the second Open
// starts a WAL in the chunk format of walFormat.
func openPebble(dir string, po *pebble.Options) (*pebble.DB, error) {
	po.FormatMajorVersion = walFormat
	desc, err := pebble.Peek(dir, po.FS)
	raised := err != nil || !desc.Exists || desc.FormatMajorVersion < walFormat
	db, err := pebble.Open(dir, po)
	if err != nil || !raised {
		return db, err
	}
	if err := db.Close(); err != nil {
		return nil, err
	}
	return pebble.Open(dir, po)
}

// MinFreeBytes is the free space the data volume must keep for the store to
// write. Pebble cannot fail a write cleanly when the disk is full: a WAL
// write that fails stops the process, and the flush of a recovered WAL that
// cannot be written is retried without end. So the store refuses every
// write (and Open) while the volume has less than this free: a refused
// write returns an error matching ErrDiskFull, acknowledges nothing, and
// leaves verification of existing credentials working; writes succeed
// again as soon as space is freed.
const MinFreeBytes = 64 << 20

// ErrDiskFull reports a write refused, or a store not opened, because the
// data volume has less than MinFreeBytes free.
var ErrDiskFull = errors.New("keystore: the data volume is full")

// checkSpace returns an error matching ErrDiskFull when the data volume has
// less than MinFreeBytes free. A volume whose usage cannot be read is taken
// to have room: Pebble then reports what the write meets.
func (s *Store) checkSpace() error {
	u, err := s.diskUsage()
	if err != nil || u.AvailBytes >= MinFreeBytes {
		return nil
	}
	return fmt.Errorf("%w (%d MiB free, the store needs %d MiB to write)", ErrDiskFull, u.AvailBytes>>20, MinFreeBytes>>20)
}

// writeRoom is checkSpace for a write a caller waits for: its error says
// that nothing was written and what to do.
func (s *Store) writeRoom() error {
	if err := s.checkSpace(); err != nil {
		return fmt.Errorf("%w: nothing was written; free space on the volume and retry (verification of existing credentials goes on)", err)
	}
	return nil
}
