// Package testlog is the test-support layer's logging (bbolt's
// internal/btesting, litestream's internal/testingutil): a zerolog logger
// that writes to the test's own log, so a failing test shows what the code
// logged and a passing one stays quiet; and a goroutine-safe Buffer for
// tests that also read what was logged, or capture a process's output.
package testlog

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
)

// New returns a debug-level JSON logger writing to tb's log. Lines written
// after the test's cleanups have run (by a goroutine that outlived it) are
// dropped rather than panicking the test binary.
func New(tb testing.TB) zerolog.Logger {
	return zerolog.New(newTBWriter(tb)).Level(zerolog.DebugLevel).With().Timestamp().Logger()
}

// Capture returns a logger that writes to tb's log and to the returned
// Buffer, for tests that assert on log lines.
func Capture(tb testing.TB) (zerolog.Logger, *Buffer) {
	buf := &Buffer{}
	log := zerolog.New(io.MultiWriter(newTBWriter(tb), buf)).Level(zerolog.DebugLevel).With().Timestamp().Logger()
	return log, buf
}

type tbWriter struct {
	tb   testing.TB
	mu   sync.Mutex
	done bool
}

func newTBWriter(tb testing.TB) *tbWriter {
	w := &tbWriter{tb: tb}
	// Registered first, so it runs last: logs written while other cleanups
	// stop the code under test still reach the test's log.
	tb.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return w
}

func (w *tbWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.tb.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// Buffer is a bytes.Buffer safe for concurrent writers (a logger used by
// several goroutines, a process's stdout and stderr) and a reading test.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Lines decodes the JSON log lines written so far whose message contains
// msg ("" for all); lines that are not JSON objects are skipped.
func (b *Buffer) Lines(msg string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(b.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		if s, _ := m["message"].(string); strings.Contains(s, msg) {
			out = append(out, m)
		}
	}
	return out
}
