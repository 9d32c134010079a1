package e2e

import (
	"bytes"
	bin "encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

// spoolWithBacklog starts an agent whose upstream refuses, stores n events
// in batches of 100, stops it cleanly and returns it with the uuids.
func spoolWithBacklog(t *testing.T, prefix string, n int) (*agentProc, *fakeposthog.Server, []string) {
	t.Helper()
	up := newUpstream(t)
	up.SetDefault(fakeposthog.Response{Status: 503})
	a := startAgent(t, up)
	var ids []string
	for i := 0; i < n; i += 100 {
		evs, batch := mkEvents(fmt.Sprintf("%s%04d", prefix, i), min(100, n-i))
		ans := a.postJSON("/batch/", batchBody(evs))
		require.Equal(t, 200, ans.status, ans.body)
		ids = append(ids, batch...)
	}
	require.NoError(t, a.stop())
	return a, up, ids
}

func (a *agentProc) spoolPath() string { return filepath.Join(a.dir, "data", "spool.db") }

// movedAside lists the spool files the agent renamed aside.
func (a *agentProc) movedAside() []string {
	m, _ := filepath.Glob(a.spoolPath() + ".corrupt-*")
	return m
}

// A truncated spool (half the file gone, as after a disk or copy failure)
// used to crash bbolt with SIGBUS on every start. Now the agent starts,
// moves the file aside, re-queues every event it could read from the intact
// half, and says how many in the log and in status; `spool stats --file`
// on the damaged file answers with an error instead of crashing.
func TestSpoolTruncatedFileStartsAndSalvagesWhatIsLeft(t *testing.T) {
	a, up, ids := spoolWithBacklog(t, "trunc", 2000)
	require.NoError(t, os.Truncate(a.spoolPath(), usedBytes(t, a.spoolPath())/2))

	_, errOut, code := runIn(t, "", "spool", "stats", "--file", a.spoolPath())
	require.Equal(t, 1, code, "a damaged file is an error, not a crash (exit 2): %s", errOut)
	require.Contains(t, errOut, "shorter than")
	require.Contains(t, errOut, "hogrelay spool salvage")

	up.SetDefault(fakeposthog.Response{})
	a.start()
	require.Len(t, a.movedAside(), 1, "the damaged file is kept")
	rec := a.status()["spool"].(map[string]any)["recovery"].(map[string]any)
	salvaged := int(rec["salvaged_events"].(float64))
	require.Greater(t, salvaged, 0, "the intact half holds events")
	require.LessOrEqual(t, salvaged, len(ids))
	require.Equal(t, a.movedAside()[0], rec["moved_to"])
	require.Contains(t, a.Logs.String(), fmt.Sprintf(`"salvaged_events":%d`, salvaged))
	out, errOut, code := a.cli("status")
	require.Zero(t, code, errOut)
	require.Contains(t, out, "SPOOL DAMAGED")
	require.Contains(t, out, fmt.Sprintf("salvaged %d events", salvaged))

	// Every salvaged event reaches PostHog, and nothing that was never
	// acknowledged does.
	known := map[string]bool{}
	for _, id := range ids {
		known[id] = true
	}
	require.Eventually(t, func() bool { return len(up.UniqueUUIDs()) >= salvaged }, 30*time.Second, 50*time.Millisecond)
	for id := range up.UniqueUUIDs() {
		require.True(t, known[id], "unknown uuid %s forwarded", id)
	}

	// No crash loop: the next start is an ordinary one.
	require.NoError(t, a.stop())
	a.start()
	require.Len(t, a.movedAside(), 1)
}

// usedBytes reads how much of a bbolt file its newest meta page says is in
// use (bbolt grows files in 16 MiB steps, so cutting the file's length in
// half can leave every used page in place).
func usedBytes(t *testing.T, path string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	le := bin.LittleEndian
	ps := int64(le.Uint32(b[24:]))
	var used int64
	var txid uint64
	for _, off := range []int64{0, ps} {
		m := b[off+16:]
		if tx := le.Uint64(m[48:]); tx >= txid {
			txid, used = tx, int64(le.Uint64(m[40:]))*ps
		}
	}
	require.Less(t, used, int64(len(b)))
	return used
}

// damageMetaPages overwrites both bbolt meta pages (the first two pages)
// with junk, leaving every data page intact.
func damageMetaPages(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	_, err = f.WriteAt(bytes.Repeat([]byte{0xa5}, 2*4096), 0)
	require.NoError(t, err)
}

// With both meta pages damaged bbolt refuses the file ("invalid database").
// The agent moves it aside and re-queues every event from its intact data
// pages into the fresh spool, so nothing acknowledged is lost.
func TestSpoolDamagedMetaPagesAreSalvagedAtStart(t *testing.T) {
	a, up, ids := spoolWithBacklog(t, "meta", 3000)
	damageMetaPages(t, a.spoolPath())

	up.SetDefault(fakeposthog.Response{})
	a.start()
	require.Len(t, a.movedAside(), 1)
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 60*time.Second), ids))
	rec := a.status()["spool"].(map[string]any)["recovery"].(map[string]any)
	require.EqualValues(t, len(ids), rec["salvaged_events"])
	require.Contains(t, a.Logs.String(), "salvaged")
}

// `hogrelay spool salvage FILE` re-queues every intact event of a damaged
// spool file: over the socket into a running agent, or directly into a
// stopped agent's spool file.
func TestSpoolSalvageCommandLiveAndOnAStoppedAgentsFile(t *testing.T) {
	a, up, ids := spoolWithBacklog(t, "cmd", 1200)
	damaged := filepath.Join(a.dir, "damaged.db")
	require.NoError(t, os.Rename(a.spoolPath(), damaged))
	damageMetaPages(t, damaged)

	// Stopped agent: the command writes into its spool file.
	out, errOut, code := a.cli("spool", "salvage", damaged)
	require.Zero(t, code, errOut)
	var res map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &res), out)
	require.EqualValues(t, len(ids), res["requeued_events"], out)
	st := opsCLIJSON(t, a, "spool", "stats")
	require.EqualValues(t, len(ids), st["pending_events"])

	// Running agent: over the socket, while it forwards.
	a.start()
	out, errOut, code = a.cli("spool", "salvage", damaged)
	require.Zero(t, code, errOut)
	require.NoError(t, json.Unmarshal([]byte(out), &res), out)
	require.EqualValues(t, len(ids), res["requeued_events"], out)
	require.Equal(t, true, res["live"])

	up.SetDefault(fakeposthog.Response{})
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 60*time.Second), ids))
	require.Eventually(t, func() bool { return a.spoolStat("pending_events") == 0 }, 30*time.Second, 50*time.Millisecond)

	// A file that is not a spool at all is refused by name.
	junk := filepath.Join(a.dir, "junk.db")
	require.NoError(t, os.WriteFile(junk, bytes.Repeat([]byte("not a spool "), 4096), 0o600))
	_, errOut, code = a.cli("spool", "salvage", junk)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, junk)
	require.Contains(t, errOut, "no spool records")
}

// Bytes flipped inside a stored record (bad sectors, a stray write) are
// caught by the record's checksum: the record is quarantined as a dead
// letter instead of being forwarded to PostHog as garbage.
func TestSpoolDamagedRecordIsQuarantinedNotForwarded(t *testing.T) {
	a, up, ids := spoolWithBacklog(t, "flip", 300)
	b, err := os.ReadFile(a.spoolPath())
	require.NoError(t, err)
	// Damage inside the events of the first batch, in every copy bbolt left
	// in the file: lengths stay as they were, only JSON bytes change.
	marker := []byte(`"user-flip0000"`)
	require.Positive(t, bytes.Count(b, marker))
	for at := bytes.Index(b, marker); at >= 0; at = bytes.Index(b, marker) {
		for i := at; i < at+64; i++ {
			b[i] ^= 0x80
		}
	}
	require.NoError(t, os.WriteFile(a.spoolPath(), b, 0o600))

	up.SetDefault(fakeposthog.Response{})
	a.start()
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 60*time.Second), ids[100:]))
	require.Eventually(t, func() bool { return a.spoolStat("pending_events") == 0 }, 30*time.Second, 50*time.Millisecond)
	require.Positive(t, a.spoolStat("dead_letter_events"), "the damaged record is kept as a dead letter")
	for _, ev := range up.Events() {
		require.NotContains(t, string(ev.Raw), "\ufffd", "no damaged bytes reach PostHog")
	}
	got := up.UniqueUUIDs()
	for _, id := range ids[:100] {
		require.Zero(t, got[id], "an event of the damaged record was forwarded")
	}
	out, errOut, code := a.cli("spool", "dead-letters", "list")
	require.Zero(t, code, errOut)
	require.Contains(t, out, "checksum")
}

// A spool file of zero bytes held events once and lost them (a filesystem
// that lost a file's data after a crash): that is said loudly, not taken
// for a new spool.
func TestSpoolZeroByteFileIsReported(t *testing.T) {
	a, up, _ := spoolWithBacklog(t, "zero", 100)
	require.NoError(t, os.Truncate(a.spoolPath(), 0))
	_ = up
	a.start()
	require.Contains(t, a.Logs.String(), "spool file is empty (0 bytes)")
	rec := a.status()["spool"].(map[string]any)["recovery"].(map[string]any)
	require.Contains(t, rec["problem"], "0 bytes")
	_, errOut, code := runIn(t, "", "spool", "stats", "--file", a.movedAside()[0])
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "0 bytes")
}
