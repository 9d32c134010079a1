package spool

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// Under drop_oldest the file stays within max_bytes with large records:
// each 100 KiB record is a run of pages bbolt writes whole, and dropping in
// the appending transaction frees pages only that transaction's successor
// can reuse, so the file used to reach about twice the bound.
func TestDropOldestFileStaysWithinMaxBytes(t *testing.T) {
	const maxBytes = 1 << 20
	path := filepath.Join(t.TempDir(), "spool.db")
	s := openTest(t, path, func(o *Options) { o.MaxBytes = maxBytes; o.WhenFull = DropOldest })
	ctx := context.Background()
	var largest int64
	const n = 60
	for i := 0; i < n; i++ {
		var batch [][]byte
		if i%4 == 3 {
			batch = evs(i*100, 50) // small events between the large ones
		} else {
			batch = [][]byte{append([]byte(fmt.Sprintf("%03d", i)), make([]byte, 100<<10)...)}
		}
		require.NoError(t, s.Append(ctx, "phc_a", false, batch), "append %d", i)
		fi, err := os.Stat(path)
		require.NoError(t, err)
		largest = max(largest, fi.Size())
	}
	t.Logf("largest file: %d bytes (max_bytes %d)", largest, maxBytes)
	st, _ := s.Stats()
	require.Positive(t, st.DroppedEvents)
	require.LessOrEqual(t, largest, int64(maxBytes), "the spool file stays within max_bytes")

	// Removals after delivery never fail for lack of room, and they too
	// keep the file within the bound (appends left them their reserve).
	events, _ := drain(t, s)
	require.EqualValues(t, n/4*50+(n-n/4)-int(st.DroppedEvents), len(events), "every event is kept or counted as dropped")
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.LessOrEqual(t, fi.Size(), int64(maxBytes))
}
