package keystore

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
)

// pebbleLogger adapts a *slog.Logger to Pebble's logger. Pebble's
// informational messages go to Debug; Fatalf logs at Error and panics, as
// Pebble expects it not to return.
type pebbleLogger struct{ l *slog.Logger }

var _ pebble.Logger = pebbleLogger{}

func (p pebbleLogger) Infof(format string, args ...any) {
	if p.l.Enabled(context.Background(), slog.LevelDebug) {
		p.l.Debug(fmt.Sprintf(format, args...), slog.String("source", "pebble"))
	}
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), slog.String("source", "pebble"))
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error(msg, slog.String("source", "pebble"))
	panic("keystore: pebble: " + msg)
}
