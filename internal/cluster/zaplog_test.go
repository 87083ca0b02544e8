package cluster

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func TestClientLoggerForwardsWarningsOnce(t *testing.T) {
	var buf bytes.Buffer
	zl := clientLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))).With(zap.String("target", "etcd"))
	zl.Info("dialing") // below warn: dropped
	zl.Debug("picked") // dropped
	for range 3 {      // repeated: logged once
		zl.Warn("retrying of unary invoker failed", zap.Error(errors.New("tls: certificate required")))
	}
	zl.Warn("retrying of unary invoker failed", zap.Error(errors.New("connection refused"))) // another cause: logged
	zl.Error("lease keepalive failed")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3:\n%s", len(lines), buf.String())
	}
	for i, want := range []string{"level=WARN", "level=WARN", "level=ERROR"} {
		if !strings.Contains(lines[i], want) || !strings.Contains(lines[i], "etcd client: ") {
			t.Errorf("line %d = %q, want %s and the etcd client prefix", i, lines[i], want)
		}
	}
	if !strings.Contains(lines[0], "certificate required") || !strings.Contains(lines[0], "target=etcd") {
		t.Errorf("line 0 = %q, want the error and the logger's fields", lines[0])
	}
	if !strings.Contains(lines[1], "connection refused") {
		t.Errorf("line 1 = %q, want the second cause", lines[1])
	}
}
