package testclock

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestClockMovesOnlyWhenTold(t *testing.T) {
	start := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	c := New(start)
	require.Equal(t, start, c.Now())
	require.Equal(t, start, c.Now(), "reading does not move it")
	require.Equal(t, start.Add(time.Minute), c.Advance(time.Minute))
	require.Equal(t, start.Add(time.Minute), c.Now())

	select {
	case got := <-c.After(time.Hour):
		require.Equal(t, start.Add(61*time.Minute), got)
	default:
		t.Fatal("After's wait is not over at once")
	}
	require.Equal(t, start.Add(61*time.Minute), c.Now())
}

func TestClockIsSafeForConcurrentUse(t *testing.T) {
	c := New(time.Time{})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				c.Advance(time.Second)
				_ = c.Now()
			}
		}()
	}
	wg.Wait()
	require.Equal(t, time.Time{}.Add(800*time.Second), c.Now())
}
