package logging

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBurstLetsOneLineThroughPerWindowAndCountsTheRest(t *testing.T) {
	b := &Burst{Window: time.Hour}
	ok, n := b.Allow()
	require.True(t, ok)
	require.Zero(t, n)
	for i := 0; i < 5; i++ {
		ok, _ = b.Allow()
		require.False(t, ok)
	}
	b.mu.Lock()
	b.last = time.Now().Add(-2 * time.Hour) // the window has passed
	b.mu.Unlock()
	ok, n = b.Allow()
	require.True(t, ok)
	require.Equal(t, 5, n, "the next line says how many were left out")
}
