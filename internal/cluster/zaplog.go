package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// repeatInterval is how often one etcd client warning is logged again
// while it repeats (a retry loop logs it every few hundred milliseconds).
const repeatInterval = 10 * time.Second

// clientLogger returns the zap logger the etcd client logs through: its
// warnings and errors go to log, each distinct message at most once per
// repeatInterval. They carry what the client's own errors drop — why a
// connection failed ("certificate required", "connection refused") when a
// request only reports its deadline.
func clientLogger(log *slog.Logger) *zap.Logger {
	return zap.New(&slogCore{log: log, seen: &seenMessages{last: map[string]time.Time{}}})
}

// slogCore is a zapcore.Core writing to slog.
type slogCore struct {
	log    *slog.Logger
	fields []zapcore.Field
	seen   *seenMessages
}

type seenMessages struct {
	mu   sync.Mutex
	last map[string]time.Time
}

// due reports whether msg may be logged now, and notes it.
func (s *seenMessages) due(msg string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.last[msg]; ok && now.Sub(t) < repeatInterval {
		return false
	}
	if len(s.last) > 256 {
		clear(s.last)
	}
	s.last[msg] = now
	return true
}

func (c *slogCore) Enabled(l zapcore.Level) bool { return l >= zapcore.WarnLevel }

func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	return &slogCore{log: c.log, fields: append(append([]zapcore.Field(nil), c.fields...), fields...), seen: c.seen}
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range append(append([]zapcore.Field(nil), c.fields...), fields...) {
		f.AddTo(enc)
	}
	key := e.Message
	if err, ok := enc.Fields["error"]; ok {
		key += fmt.Sprint(err)
	}
	if !c.seen.due(key, e.Time) {
		return nil
	}
	attrs := make([]any, 0, 2*len(enc.Fields))
	for k, v := range enc.Fields {
		attrs = append(attrs, slog.Any(k, v))
	}
	level := slog.LevelWarn
	if e.Level >= zapcore.ErrorLevel {
		level = slog.LevelError
	}
	c.log.Log(context.Background(), level, "etcd client: "+e.Message, attrs...)
	return nil
}

func (c *slogCore) Sync() error { return nil }
