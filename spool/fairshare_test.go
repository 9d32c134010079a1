package spool

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// One project filling a nearly full spool cannot refuse or delete the
// events of another: it is held to its share, the other keeps its events
// and can still store.
func TestFairShareWhenNearlyFull(t *testing.T) {
	big := []byte(`{"pad":"` + strings.Repeat("x", 20<<10) + `"}`)
	for _, policy := range []Policy{Reject, DropOldest} {
		t.Run(map[Policy]string{Reject: "reject", DropOldest: "drop_oldest"}[policy], func(t *testing.T) {
			s := openTest(t, filepath.Join(t.TempDir(), "spool.db"), func(o *Options) { o.MaxBytes = 1 << 20; o.WhenFull = policy })
			ctx := context.Background()
			// The quiet project's events arrive first, so they are the oldest.
			for i := 0; i < 10; i++ {
				require.NoError(t, s.Append(ctx, "phc_quiet", false, evs(i, 1)))
			}
			var filler error
			for i := 0; i < 200; i++ {
				if err := s.Append(ctx, "phc_filler", false, [][]byte{big}); err != nil {
					filler = err
					if policy == Reject {
						break
					}
				}
			}
			if policy == Reject {
				require.ErrorIs(t, filler, ErrFull)
				require.Contains(t, filler.Error(), "fair share")
			}
			// The quiet project can still store, and lost nothing.
			for i := 10; i < 20; i++ {
				require.NoError(t, s.Append(ctx, "phc_quiet", false, evs(i, 1)), "event %d of the quiet project", i)
			}
			st, err := s.Stats()
			require.NoError(t, err)
			require.LessOrEqual(t, st.PendingBytes+st.DeadBytes, int64(1<<20))
			events, _ := drain(t, s)
			var quietEvents []string
			for _, e := range events {
				if strings.Contains(e, `"uuid"`) {
					quietEvents = append(quietEvents, e)
				}
			}
			require.Len(t, quietEvents, 20, "every event of the quiet project is kept")
			for i, e := range quietEvents {
				require.Contains(t, e, fmt.Sprintf(`"u%d"`, i))
			}
			if policy == DropOldest {
				require.Greater(t, st.DroppedEvents, uint64(0), "the filler made room by dropping its own oldest")
			}
		})
	}
}

// The share counts stored bytes per project and follows what the forwarder
// removes, so a project that drained gets its room back.
func TestFairShareUsageFollowsTheSpool(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	s := openTest(t, path, func(o *Options) { o.MaxBytes = 1 << 20 })
	ctx := context.Background()
	require.NoError(t, s.Append(ctx, "phc_a", false, evsOfSize(3, 100<<10)))
	require.NoError(t, s.Append(ctx, "phc_b", false, evsOfSize(1, 100<<10)))
	s.ctrMu.Lock()
	a, b := s.usage["phc_a"], s.usage["phc_b"]
	s.ctrMu.Unlock()
	require.Greater(t, a, int64(300<<10))
	require.Greater(t, b, int64(100<<10))
	require.Less(t, b, a)

	require.NoError(t, s.Close())
	s = openTest(t, path, func(o *Options) { o.MaxBytes = 1 << 20 })
	s.ctrMu.Lock()
	require.Equal(t, a, s.usage["phc_a"], "rebuilt from the file at open")
	s.ctrMu.Unlock()

	drain(t, s)
	s.ctrMu.Lock()
	require.Empty(t, s.usage, "nothing pending, nothing held")
	s.ctrMu.Unlock()
}

// The file's overhead is mostly fixed (meta, freelist, branch pages): a
// nearly empty spool must still take a request of a good part of its bound.
// (Scaling the bound by content/file size left one small event's spool room
// for a few kilobytes.)
func TestNearlyEmptySpoolTakesLargeRequests(t *testing.T) {
	for _, policy := range []Policy{Reject, DropOldest} {
		s := openTest(t, filepath.Join(t.TempDir(), "spool.db"), func(o *Options) { o.MaxBytes = 16 << 20; o.WhenFull = policy })
		ctx := context.Background()
		require.NoError(t, s.Append(ctx, "phc_small", false, evs(0, 1)))
		require.NoError(t, s.Append(ctx, "phc_big", false, evsOfSize(4, 256<<10)), "policy %d", policy)
	}
}
