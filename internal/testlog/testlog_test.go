package testlog

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// recorder is a testing.TB that keeps what is logged to it.
type recorder struct {
	testing.TB
	mu       sync.Mutex
	logged   []string
	cleanups []func()
}

func (r *recorder) Log(args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logged = append(r.logged, args[0].(string))
}
func (r *recorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }
func (r *recorder) Helper()          {}

func TestLoggerWritesToTheTestUntilItEnds(t *testing.T) {
	r := &recorder{TB: t}
	log := New(r)
	log.Info().Str("k", "v").Msg("hello")
	require.Len(t, r.logged, 1)
	require.Contains(t, r.logged[0], `"message":"hello"`)
	require.Contains(t, r.logged[0], `"level":"info"`)
	log.Debug().Msg("debug shows too")
	require.Len(t, r.logged, 2)

	for _, c := range r.cleanups {
		c()
	}
	log.Info().Msg("after the test")
	require.Len(t, r.logged, 2, "a line after the test's end is dropped, not a panic")
}

func TestCaptureKeepsLinesForTheTest(t *testing.T) {
	r := &recorder{TB: t}
	log, buf := Capture(r)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); log.Warn().Int("i", i).Msg("from a goroutine") }()
	}
	wg.Wait()
	log.Info().Msg("other")
	require.Len(t, buf.Lines("goroutine"), 8)
	require.Len(t, buf.Lines(""), 9)
	require.Len(t, r.logged, 9, "and the test's log has them too")
	require.Equal(t, "warn", buf.Lines("goroutine")[0]["level"])
}
