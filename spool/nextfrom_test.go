package spool

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// A sender with several batches in flight reads past them with NextFrom and
// removes whichever finishes first; the others stay at the head.
func TestNextFromReadsPastInFlightRecordsAndDoneOutOfOrderKeepsTheRest(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "spool.db"))
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		require.NoError(t, s.Append(ctx, "phc_a", false, evs(i*10, 10)))
	}
	first, err := s.NextFrom(0, 10, 5<<20)
	require.NoError(t, err)
	require.Len(t, first, 1)
	second, err := s.NextFrom(first[0].Seq+1, 10, 5<<20)
	require.NoError(t, err)
	require.Len(t, second, 1)
	require.Greater(t, second[0].Seq, first[0].Seq)
	third, err := s.NextFrom(second[0].Seq+1, 10, 5<<20)
	require.NoError(t, err)
	require.Len(t, third, 1)
	none, err := s.NextFrom(third[0].Seq+1, 10, 5<<20)
	require.NoError(t, err)
	require.Empty(t, none)

	require.NoError(t, s.Done([]uint64{second[0].Seq}, nil)) // finished first
	head, err := s.Next(1000, 5<<20)
	require.NoError(t, err)
	require.Len(t, head, 2)
	require.Equal(t, first[0].Seq, head[0].Seq, "the unfinished head stays")
	require.Equal(t, third[0].Seq, head[1].Seq)
	st, err := s.Stats()
	require.NoError(t, err)
	require.EqualValues(t, 20, st.PendingEvents)
}
