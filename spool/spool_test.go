package spool

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/hogrelay/hogrelay/internal/testlog"
)

func openTest(t *testing.T, path string, mut ...func(*Options)) *Spool {
	t.Helper()
	o := Options{Path: path, Logger: testlog.New(t)}
	for _, m := range mut {
		m(&o)
	}
	s, err := Open(o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func ev(i int) []byte { return []byte(fmt.Sprintf(`{"uuid":"u%d","event":"e","distinct_id":"d"}`, i)) }

func evs(from, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = ev(from + i)
	}
	return out
}

// drain reads everything pending through Next/Done, as the forwarder does.
func drain(t *testing.T, s *Spool) (events []string, tokens []string) {
	t.Helper()
	for {
		recs, err := s.Next(1000, 5<<20)
		require.NoError(t, err)
		if len(recs) == 0 {
			return
		}
		var seqs []uint64
		for _, r := range recs {
			seqs = append(seqs, r.Seq)
			tokens = append(tokens, r.Token)
			for _, e := range r.Events {
				events = append(events, string(e))
			}
		}
		require.NoError(t, s.Done(seqs, nil))
	}
}

func TestAppendNextDoneKeepsOrderAndSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	s := openTest(t, path)
	ctx := context.Background()
	require.NoError(t, s.Append(ctx, "phc_a", false, evs(0, 3)))
	require.NoError(t, s.Append(ctx, "phc_b", true, evs(3, 2)))
	require.NoError(t, s.Append(ctx, "phc_a", false, evs(5, 1)))
	st, err := s.Stats()
	require.NoError(t, err)
	require.EqualValues(t, 6, st.PendingEvents)
	require.False(t, st.Oldest.IsZero())
	require.NoError(t, s.Close())

	s = openTest(t, path)
	st, err = s.Stats()
	require.NoError(t, err)
	require.EqualValues(t, 6, st.PendingEvents, "counters survive reopen")

	// Next never mixes tokens or the historical flag in one batch.
	recs, err := s.Next(1000, 5<<20)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Equal(t, "phc_a", recs[0].Token)
	require.False(t, recs[0].Historical)
	require.Len(t, recs[0].Events, 3)

	events, tokens := drain(t, s)
	want := []string{}
	for i := 0; i < 6; i++ {
		want = append(want, string(ev(i)))
	}
	require.Equal(t, want, events)
	require.Equal(t, []string{"phc_a", "phc_b", "phc_a"}, tokens)
	st, err = s.Stats()
	require.NoError(t, err)
	require.Zero(t, st.PendingEvents)
	require.Zero(t, st.PendingBytes)
}

func TestNextRespectsLimitsButAlwaysReturnsHead(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "spool.db"))
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		require.NoError(t, s.Append(ctx, "phc_a", false, evs(i*10, 10)))
	}
	cases := []struct {
		name                string
		maxEvents, maxBytes int
		wantRecords         int
	}{
		{"by events", 25, 5 << 20, 2},
		{"by bytes", 1000, 1, 1}, // head record alone is over the limit: still returned
		{"everything", 1000, 5 << 20, 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := s.Next(tc.maxEvents, tc.maxBytes)
			require.NoError(t, err)
			require.Len(t, recs, tc.wantRecords)
		})
	}
}

func TestLargeRequestIsSplitIntoRecords(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "spool.db"))
	require.NoError(t, s.Append(context.Background(), "phc_a", false, evs(0, 1200)))
	recs, err := s.Next(10000, 100<<20)
	require.NoError(t, err)
	require.Len(t, recs, 3) // 500 + 500 + 200
	require.Len(t, recs[2].Events, 200)
	events, _ := drain(t, s)
	require.Len(t, events, 1200)
	require.Equal(t, string(ev(1199)), events[1199])
}

func TestConcurrentProducersAllStoredInOrderPerProducer(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "spool.db"))
	const producers, each = 16, 50
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				e := []byte(fmt.Sprintf(`{"p":%d,"i":%d}`, p, i))
				require.NoError(t, s.Append(context.Background(), "phc_a", false, [][]byte{e}))
			}
		}()
	}
	wg.Wait()
	events, _ := drain(t, s)
	require.Len(t, events, producers*each)
	last := map[int]int{}
	for _, e := range events {
		var p, i int
		_, err := fmt.Sscanf(e, `{"p":%d,"i":%d}`, &p, &i)
		require.NoError(t, err)
		if prev, ok := last[p]; ok {
			require.Greater(t, i, prev, "producer %d out of order", p)
		}
		last[p] = i
	}
}

func TestFullSpoolPolicies(t *testing.T) {
	big := make([]byte, 100<<10)
	for i := range big {
		big[i] = 'x'
	}
	t.Run("reject refuses and keeps what is stored", func(t *testing.T) {
		s := openTest(t, filepath.Join(t.TempDir(), "spool.db"), func(o *Options) { o.MaxBytes = 1 << 20 })
		ctx := context.Background()
		stored := 0
		var err error
		for i := 0; i < 20; i++ {
			if err = s.Append(ctx, "phc_a", false, [][]byte{big}); err != nil {
				break
			}
			stored++
		}
		require.ErrorIs(t, err, ErrFull)
		// The file's pages in use count, not only the events' bytes: fewer
		// than ten 100 KiB events fit in 1 MiB.
		require.Positive(t, stored)
		require.Less(t, stored, 10)
		st, _ := s.Stats()
		require.EqualValues(t, stored, st.PendingEvents)
		require.Zero(t, st.DroppedEvents)
	})
	t.Run("drop_oldest makes room and counts", func(t *testing.T) {
		s := openTest(t, filepath.Join(t.TempDir(), "spool.db"), func(o *Options) { o.MaxBytes = 1 << 20; o.WhenFull = DropOldest })
		ctx := context.Background()
		for i := 0; i < 20; i++ {
			e := append([]byte(fmt.Sprintf("%03d", i)), big...)
			require.NoError(t, s.Append(ctx, "phc_a", false, [][]byte{e}))
		}
		st, _ := s.Stats()
		require.Positive(t, st.DroppedEvents)
		require.EqualValues(t, 20, int64(st.DroppedEvents)+st.PendingEvents, "every event is either kept or counted as dropped")
		events, _ := drain(t, s)
		require.Equal(t, fmt.Sprintf("%03d", st.DroppedEvents), events[0][:3], "the oldest were dropped, the newest kept")
		require.Equal(t, "019", events[len(events)-1][:3])
	})
	t.Run("a request larger than the bound is refused", func(t *testing.T) {
		s := openTest(t, filepath.Join(t.TempDir(), "spool.db"), func(o *Options) { o.MaxBytes = 1 << 20; o.WhenFull = DropOldest })
		err := s.Append(context.Background(), "phc_a", false, evsOfSize(12, 100<<10))
		require.ErrorIs(t, err, ErrFull)
	})
}

func evsOfSize(n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = make([]byte, size)
	}
	return out
}

func TestDeadLettersRequeueAndDrop(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "spool.db"))
	require.NoError(t, s.Append(context.Background(), "phc_a", false, evs(0, 3)))
	recs, err := s.Next(1000, 5<<20)
	require.NoError(t, err)
	require.NoError(t, s.Done([]uint64{recs[0].Seq}, []DeadEvent{{Token: "phc_a", Event: ev(1), Reason: "400: invalid uuid"}}))
	st, _ := s.Stats()
	require.Zero(t, st.PendingEvents)
	require.EqualValues(t, 1, st.DeadEvents)

	var dead []Record
	require.NoError(t, s.Each(DeadLetters, func(r Record) error { dead = append(dead, r); return nil }))
	require.Len(t, dead, 1)
	require.Equal(t, "400: invalid uuid", dead[0].Reason)
	require.Equal(t, string(ev(1)), string(dead[0].Events[0]))

	n, err := s.Requeue()
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	events, tokens := drain(t, s)
	require.Equal(t, []string{string(ev(1))}, events)
	require.Equal(t, []string{"phc_a"}, tokens)

	require.NoError(t, s.Append(context.Background(), "phc_a", false, evs(5, 1)))
	recs, _ = s.Next(1000, 5<<20)
	require.NoError(t, s.Done([]uint64{recs[0].Seq}, []DeadEvent{{Token: "phc_a", Event: ev(5), Reason: "x"}}))
	n, err = s.DropDeadLetters()
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	st, _ = s.Stats()
	require.Zero(t, st.DeadEvents)
	require.Zero(t, st.DeadBytes)
}

func TestDoneSkipsRecordsAlreadyGone(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "spool.db"))
	require.NoError(t, s.Append(context.Background(), "phc_a", false, evs(0, 2)))
	recs, _ := s.Next(1000, 5<<20)
	require.NoError(t, s.Done([]uint64{recs[0].Seq}, nil))
	require.NoError(t, s.Done([]uint64{recs[0].Seq, 999}, nil), "deleting twice is harmless")
	st, _ := s.Stats()
	require.Zero(t, st.PendingEvents)
	require.Zero(t, st.PendingBytes)
}

func TestCorruptFileIsMovedAsideAndSpoolStartsFresh(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "spool.db")
	garbage := make([]byte, 64<<10)
	for i := range garbage {
		garbage[i] = byte(i * 7)
	}
	require.NoError(t, os.WriteFile(path, garbage, 0o600))
	s := openTest(t, path)
	require.NoError(t, s.Append(context.Background(), "phc_a", false, evs(0, 1)))
	matches, err := filepath.Glob(path + ".corrupt-*")
	require.NoError(t, err)
	require.Len(t, matches, 1, "the damaged file is kept for inspection")
	kept, err := os.ReadFile(matches[0])
	require.NoError(t, err)
	require.Equal(t, garbage, kept)
}

func TestLockedFileIsReportedNotMoved(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	openTest(t, path)
	_, err := Open(Options{Path: path, Logger: testlog.New(t), LockTimeout: 50_000_000})
	require.ErrorIs(t, err, ErrLocked)
	require.ErrorContains(t, err, path)
	matches, _ := filepath.Glob(path + ".corrupt-*")
	require.Empty(t, matches)
}

func TestCompactShrinksDrainedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	s := openTest(t, path)
	for i := 0; i < 40; i++ {
		require.NoError(t, s.Append(context.Background(), "phc_a", false, evsOfSize(10, 50<<10)))
	}
	drain(t, s)
	before, _ := os.Stat(path)
	res, did, err := s.CompactIfLarger(1 << 20)
	require.NoError(t, err)
	require.True(t, did)
	after, _ := os.Stat(path)
	require.Less(t, after.Size(), before.Size()/4)
	require.Equal(t, after.Size(), res.After)
	// Still usable after the swap.
	require.NoError(t, s.Append(context.Background(), "phc_a", false, evs(0, 1)))
	events, _ := drain(t, s)
	require.Len(t, events, 1)
}

func TestCloseRefusesNewAppends(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "spool.db"))
	require.NoError(t, s.Close())
	require.ErrorIs(t, s.Append(context.Background(), "phc_a", false, evs(0, 1)), ErrClosed)
}

// The kill test runs a child process (this test binary) that appends as fast
// as it can and prints each acknowledged event; the parent SIGKILLs it
// mid-stream and checks that every acknowledged event is in the reopened file.
func TestKill9LosesNoAcknowledgedEvent(t *testing.T) {
	if os.Getenv("SPOOL_KILL_CHILD") != "" {
		// The child's stdout is the list of acknowledged events; its logs
		// go to stderr, which the parent shows when the test fails.
		s, err := Open(Options{Path: os.Getenv("SPOOL_KILL_CHILD"), Logger: zerolog.New(os.Stderr)})
		if err != nil {
			fmt.Println("open:", err)
			os.Exit(2)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		for p := 0; p < 4; p++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					id := p*1_000_000 + i
					if err := s.Append(context.Background(), "phc_a", false, [][]byte{ev(id)}); err != nil {
						return
					}
					mu.Lock()
					fmt.Println(id)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		return
	}
	path := filepath.Join(t.TempDir(), "spool.db")
	for round := 0; round < 3; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKill9LosesNoAcknowledgedEvent$")
		cmd.Env = append(os.Environ(), "SPOOL_KILL_CHILD="+path)
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		acked := map[string]bool{}
		sc := bufio.NewScanner(out)
		for sc.Scan() && len(acked) < 300*(round+1) {
			_, err := strconv.Atoi(sc.Text())
			require.NoError(t, err, "child said: %s", sc.Text())
			acked[sc.Text()] = true
		}
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		// Lines the child printed before dying were acknowledged too.
		for sc.Scan() {
			if _, err := strconv.Atoi(sc.Text()); err == nil {
				acked[sc.Text()] = true
			}
		}
		var exitErr *exec.ExitError
		require.True(t, errors.As(cmd.Wait(), &exitErr))

		s := openTest(t, path)
		found := map[string]bool{}
		require.NoError(t, s.Each(Pending, func(r Record) error {
			for _, e := range r.Events {
				var id int
				_, err := fmt.Sscanf(string(e), `{"uuid":"u%d"`, &id)
				require.NoError(t, err)
				found[strconv.Itoa(id)] = true
			}
			return nil
		}))
		for id := range acked {
			require.True(t, found[id], "round %d: acknowledged event %s lost after kill -9", round, id)
		}
		require.NoError(t, s.Close())
	}
}

// A record that cannot be decoded (damage inside an otherwise healthy file)
// must not block the head: it moves to the dead letters, bytes intact, and
// the events behind it flow.
func TestUndecodableRecordIsQuarantinedNotBlocking(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "spool.db"))
	ctx := context.Background()
	require.NoError(t, s.Append(ctx, "phc_a", false, evs(0, 2)))
	garbage := []byte{9, 9, 9, 9}
	require.NoError(t, s.db.Update(func(tx *bolt.Tx) error {
		// Overwrite the head record in place, as a torn or flipped page would.
		k, _ := tx.Bucket(bucketPending).Cursor().First()
		return tx.Bucket(bucketPending).Put(k, garbage)
	}))
	require.NoError(t, s.Append(ctx, "phc_a", false, evs(2, 2)))

	events, _ := drain(t, s)
	require.Equal(t, []string{string(ev(2)), string(ev(3))}, events, "events behind the damaged record still flow")
	var dead []Record
	require.NoError(t, s.Each(DeadLetters, func(r Record) error { dead = append(dead, r); return nil }))
	require.Len(t, dead, 1)
	require.Contains(t, dead[0].Reason, "corrupt record")
	require.Equal(t, len(garbage), dead[0].Size, "kept byte for byte for inspection")
	st, err := s.Stats()
	require.NoError(t, err)
	require.Zero(t, st.PendingEvents, "the damaged record's events are not counted as pending forever")
	require.Zero(t, st.PendingBytes)
}

// A file that dead letters fill has nothing to give back: CompactIfLarger
// leaves it alone however often the queue empties.
func TestCompactIfLargerSkipsAFileOfDeadLetters(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "spool.db"))
	for i := 0; i < 40; i++ {
		require.NoError(t, s.Append(context.Background(), "phc_a", false, evsOfSize(1, 50<<10)))
		recs, err := s.Next(10, 1<<20)
		require.NoError(t, err)
		require.NoError(t, s.Done([]uint64{recs[0].Seq}, []DeadEvent{{Token: "phc_a", Event: recs[0].Events[0], Reason: "400"}}))
	}
	st, err := s.Stats()
	require.NoError(t, err)
	require.Greater(t, st.FileBytes, int64(1<<20))
	for i := 0; i < 5; i++ {
		require.NoError(t, s.Append(context.Background(), "phc_a", false, evs(i, 1)))
		drain(t, s)
		_, did, err := s.CompactIfLarger(1 << 20)
		require.NoError(t, err)
		require.False(t, did, "free pages: %d of %d bytes", s.FreeBytes(), st.FileBytes)
	}
}
