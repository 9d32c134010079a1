package spool

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// damage overwrites the byte range [from, to) of a file.
func damage(t testing.TB, path string, from, to int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	_, err = f.WriteAt(bytes.Repeat([]byte{0x5a}, int(to-from)), from)
	require.NoError(t, err)
}

// A spool whose head has been delivered (Done) and that holds dead
// letters: what salvage must give back is exactly what is still stored.
func salvageFixture(t *testing.T) (path string, pending, dead []string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "spool.db")
	s := openTest(t, path)
	ctx := t.Context()
	for i := 0; i < 40; i++ {
		require.NoError(t, s.Append(ctx, fmt.Sprintf("tok%d", i%3), i%5 == 0, evs(i*50, 50)))
	}
	// Deliver the first 10 records; dead-letter one event of the 11th.
	recs, err := s.Next(500, 50<<20)
	require.NoError(t, err)
	var seqs []uint64
	for _, r := range recs {
		seqs = append(seqs, r.Seq)
	}
	require.NoError(t, s.Done(seqs, []DeadEvent{{Token: "tok0", Event: ev(99999), Reason: "PostHog answered 400"}}))
	require.NoError(t, s.Each(Pending, func(r Record) error {
		for _, e := range r.Events {
			pending = append(pending, string(e))
		}
		return nil
	}))
	require.NotEmpty(t, pending)
	dead = []string{string(ev(99999))}
	require.NoError(t, s.Close())
	return path, pending, dead
}

func salvageAll(t *testing.T, path string) (SalvageReport, []string, []string, []Record) {
	t.Helper()
	var pending, dead []string
	var recs []Record
	rep, err := Salvage(path, func(r Record) error {
		recs = append(recs, r)
		for _, e := range r.Events {
			if r.Reason != "" {
				dead = append(dead, string(e))
			} else {
				pending = append(pending, string(e))
			}
		}
		return nil
	})
	require.NoError(t, err)
	return rep, pending, dead, recs
}

func TestSalvageReadsWhatIsStoredFromADamagedFile(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string)
		method string
	}{
		{"intact file", func(*testing.T, string) {}, "tree"},
		{"both meta pages overwritten", func(t *testing.T, p string) { damage(t, p, 0, 2*int64(os.Getpagesize())) }, "tree"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, pending, dead := salvageFixture(t)
			tc.damage(t, path)
			rep, gotPending, gotDead, recs := salvageAll(t, path)
			require.Equal(t, tc.method, rep.Method)
			require.Equal(t, pending, gotPending, "exactly the undelivered events, in order; nothing already delivered")
			require.Equal(t, dead, gotDead)
			require.Zero(t, rep.DamagedRecords)
			require.EqualValues(t, len(pending), rep.PendingEvents)
			for _, r := range recs {
				require.NotEmpty(t, r.Token, "records keep their token")
			}
		})
	}
}

func TestOpenSalvagesADamagedFileIntoTheFreshSpool(t *testing.T) {
	path, pending, dead := salvageFixture(t)
	damage(t, path, 0, 2*int64(os.Getpagesize()))
	s := openTest(t, path)
	st, err := s.Stats()
	require.NoError(t, err)
	require.NotNil(t, st.Recovery)
	require.EqualValues(t, len(pending), st.Recovery.SalvagedEvents)
	require.EqualValues(t, len(dead), st.Recovery.SalvagedDeadLetters)
	require.EqualValues(t, len(pending), st.PendingEvents)
	require.EqualValues(t, len(dead), st.DeadEvents)
	got, _ := drain(t, s)
	require.Equal(t, pending, got)
	_, err = os.Stat(st.Recovery.MovedTo)
	require.NoError(t, err, "the damaged file is kept")
}

func TestTruncatedFileIsDamageNotACrash(t *testing.T) {
	path, _, _ := salvageFixture(t)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	// Cut into the used pages (bbolt grows files ahead of use).
	f, err := os.Open(path)
	require.NoError(t, err)
	m0, _ := readMeta(f, 0)
	m1, _ := readMeta(f, int64(m0.pageSize))
	f.Close()
	used := int64(max(m0.pgid, m1.pgid)) * int64(m0.pageSize)
	require.Less(t, used, fi.Size()+1)
	require.NoError(t, os.Truncate(path, used/2))

	_, err = Open(Options{Path: path, ReadOnly: true})
	require.ErrorIs(t, err, ErrDamaged)
	require.ErrorContains(t, err, "shorter than")
	s := openTest(t, path)
	st, err := s.Stats()
	require.NoError(t, err)
	require.NotNil(t, st.Recovery)
	require.Contains(t, st.Recovery.Problem, "truncated")
}

func TestRecordChecksumCatchesFlippedBytes(t *testing.T) {
	v := encodeRecord("tok", false, nowFunc(), "", evs(0, 3))
	_, err := decodeRecord(1, v)
	require.NoError(t, err)
	v[len(v)-5] ^= 0x01
	_, err = decodeRecord(1, v)
	require.ErrorIs(t, err, errChecksum)
	require.EqualValues(t, 3, eventCount(v), "the header still says how many events were stored")
}

func TestRecordsFramesRoundTripAndRefuseDamage(t *testing.T) {
	in := []Record{
		{Token: "a", Events: evs(0, 2), ReceivedAt: nowFunc().Truncate(1e6)},
		{Token: "b", Historical: true, Reason: "refused", Events: evs(5, 1), ReceivedAt: nowFunc().Truncate(1e6)},
	}
	b := EncodeRecords(in)
	out, err := DecodeRecords(b)
	require.NoError(t, err)
	require.Len(t, out, 2)
	for i := range in {
		require.Equal(t, in[i].Token, out[i].Token)
		require.Equal(t, in[i].Events, out[i].Events)
		require.Equal(t, in[i].Reason, out[i].Reason)
		require.Equal(t, in[i].Historical, out[i].Historical)
	}
	b[len(b)-3] ^= 0x40
	_, err = DecodeRecords(b)
	require.ErrorIs(t, err, errChecksum)
}

// A writer stuck in one commit (here: behind a held compaction lock) is
// reported by Health, and the report clears once it commits.
func TestHealthReportsAStalledWriter(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "spool.db"))
	require.NoError(t, s.Health())
	old := stallAfter
	stallAfter = 50 * time.Millisecond
	t.Cleanup(func() { stallAfter = old })
	s.compactMu.Lock()
	done := make(chan error, 1)
	go func() { done <- s.Append(t.Context(), "tok", false, evs(0, 1)) }()
	require.Eventually(t, func() bool { return s.Health() != nil }, 5*time.Second, 10*time.Millisecond)
	require.ErrorContains(t, s.Health(), "spool writer stalled")
	s.compactMu.Unlock()
	require.NoError(t, <-done)
	require.Eventually(t, func() bool { return s.Health() == nil }, 5*time.Second, 10*time.Millisecond)
}

// BenchmarkSalvage50kEvents: a damaged spool of 50,000 events (500 records
// of 100) read back by page scan, without bbolt.
func BenchmarkSalvage50kEvents(b *testing.B) {
	path := filepath.Join(b.TempDir(), "spool.db")
	s, err := Open(Options{Path: path})
	require.NoError(b, err)
	for i := 0; i < 500; i++ {
		require.NoError(b, s.Append(b.Context(), "phc_a", false, evs(i*100, 100)))
	}
	require.NoError(b, s.Close())
	damage(b, path, 0, 2*int64(os.Getpagesize()))
	b.ResetTimer()
	for b.Loop() {
		n := 0
		_, err := Salvage(path, func(r Record) error { n += len(r.Events); return nil })
		require.NoError(b, err)
		require.Equal(b, 50_000, n)
	}
}
