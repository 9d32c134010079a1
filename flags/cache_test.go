package flags

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/flags/eval"
)

// The point of the cache: fetch once, "reboot" with no network, and answer
// exactly as before, the moment New returns.
func TestRestartOfflineAnswersFromDisk(t *testing.T) {
	f := newFake(t)
	f.setDefs(serveDefs(testDefs, `"v1"`))
	h := newService(t, f.URL, t.TempDir(), nil)
	ctx := context.Background()
	require.NoError(t, h.svc.Reload(ctx))
	fetchedAt := h.clock.Now()
	in := Ask{Input: eval.Input{DistinctID: "user-1"}}
	want, err := h.svc.All(ctx, Ask{Input: in.Input, OnlyLocal: true})
	require.NoError(t, err)
	wantOn, err := h.svc.Flag(ctx, "always-on", in)
	require.NoError(t, err)
	require.True(t, wantOn.Enabled)
	require.JSONEq(t, `{"color":"blue"}`, string(wantOn.Payload))

	unreachable := newFake(t)
	unreachable.Close() // connection refused: the host is down
	h2 := newService(t, unreachable.URL, h.dir, nil)
	st := h2.svc.Status()
	require.Equal(t, "disk", st.Source)
	require.True(t, fetchedAt.Equal(st.FetchedAt), "age comes from the envelope")
	require.Equal(t, `"v1"`, st.ETag)
	require.Equal(t, 3, st.FlagCount)
	require.Empty(t, st.LastError)

	got, err := h2.svc.All(ctx, Ask{Input: in.Input, OnlyLocal: true})
	require.NoError(t, err)
	require.Equal(t, want, got)
	gotOn, err := h2.svc.Flag(ctx, "always-on", in)
	require.NoError(t, err)
	require.Equal(t, wantOn, gotOn)
	raw, etag, ok := h2.svc.Definitions()
	require.True(t, ok)
	require.Equal(t, testDefs, string(raw), "served byte for byte")
	require.Equal(t, `"v1"`, etag)

	// The failed poll keeps the disk set in use.
	err = h2.svc.Reload(ctx)
	require.Error(t, err)
	require.ErrorContains(t, err, unreachable.URL+"/flags/definitions")
	require.Equal(t, "disk", h2.svc.Status().Source)
	_, err = h2.svc.Flag(ctx, "always-on", in)
	require.NoError(t, err)
}

func TestCacheKeepsDefinitionBytesExactly(t *testing.T) {
	// HTML-ish characters and odd spacing that encoding/json would rewrite.
	body := `{"flags": [ {"id":9,"key":"a<b>&c","active":true,"filters":{"groups":[{"properties":[],"rollout_percentage":100}]}} ],
	  "group_type_mapping": {}, "cohorts": {}}`
	f := newFake(t)
	f.setDefs(serveDefs(body, `"e"`))
	h := newService(t, f.URL, t.TempDir(), nil)
	require.NoError(t, h.svc.Reload(context.Background()))

	h2 := newService(t, "http://127.0.0.1:1", h.dir, nil)
	raw, _, ok := h2.svc.Definitions()
	require.True(t, ok)
	require.Equal(t, body, string(raw))

	var env envelope
	b, err := os.ReadFile(filepath.Join(h.dir, CacheFile))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &env))
	require.Equal(t, cacheVersion, env.Version)
	require.Equal(t, testToken, env.Token)
	require.Contains(t, env.SourceURL, "/flags/definitions?token=")
	require.NotContains(t, string(b), testKey)
}

func TestDamagedCacheIsIgnored(t *testing.T) {
	good := func(t *testing.T) []byte {
		b, err := encodeEnvelope(envelope{
			envelopeHeader: envelopeHeader{Version: cacheVersion, ETag: `"v1"`, Token: testToken},
			Definitions:    json.RawMessage(testDefs),
		})
		require.NoError(t, err)
		return b
	}
	for _, tc := range []struct {
		name    string
		content func(t *testing.T) []byte
		errText string
	}{
		{"truncated", func(t *testing.T) []byte { b := good(t); return b[:len(b)/2] }, "is damaged"},
		{"not JSON", func(*testing.T) []byte { return []byte("\x00\x00\x00garbage") }, "is damaged"},
		{"empty file", func(*testing.T) []byte { return nil }, "is damaged"},
		{"no definitions", func(*testing.T) []byte { return []byte(`{"version":1,"token":"phc_testproject"}`) }, "no definitions"},
		{"future version", func(*testing.T) []byte {
			return []byte(`{"version":99,"token":"phc_testproject","definitions":{"flags":[]}}`)
		}, "has version 99"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, CacheFile)
			require.NoError(t, os.WriteFile(path, tc.content(t), 0o600))

			h := newService(t, "http://127.0.0.1:1", dir, nil) // never fatal
			st := h.svc.Status()
			require.Equal(t, "none", st.Source)
			require.Contains(t, st.LastError, path)
			require.Contains(t, st.LastError, tc.errText)
			logged := h.logs.Lines("ignoring the flag definitions cache")
			require.Len(t, logged, 1)
			require.Equal(t, path, logged[0]["path"])
			require.Equal(t, "error", logged[0]["level"])

			_, err := h.svc.Flag(context.Background(), "always-on", Ask{Input: eval.Input{DistinctID: "u"}, OnlyLocal: true})
			require.ErrorIs(t, err, ErrNoAnswer)

			// The next good fetch replaces the damaged file.
			f := newFake(t)
			f.setDefs(serveDefs(testDefs, `"v1"`))
			h2 := newService(t, f.URL, dir, nil)
			require.NoError(t, h2.svc.Reload(context.Background()))
			h3 := newService(t, "http://127.0.0.1:1", dir, nil)
			require.Equal(t, "disk", h3.svc.Status().Source)
		})
	}
}

func TestCacheOfAnotherProjectIsIgnored(t *testing.T) {
	f := newFake(t)
	f.setDefs(serveDefs(testDefs, `"v1"`))
	h := newService(t, f.URL, t.TempDir(), nil)
	require.NoError(t, h.svc.Reload(context.Background()))

	h2 := newService(t, "http://127.0.0.1:1", h.dir, func(o *Options) { o.ProjectToken = "phc_otherproject" })
	require.Equal(t, "none", h2.svc.Status().Source)
	require.Len(t, h2.logs.Lines("another project token"), 1)
}

func TestMissingCacheIsQuiet(t *testing.T) {
	h := newService(t, "http://127.0.0.1:1", filepath.Join(t.TempDir(), "not-yet"), nil)
	st := h.svc.Status()
	require.Equal(t, "none", st.Source)
	require.Empty(t, st.LastError)
	_, _, ok := h.svc.Definitions()
	require.False(t, ok)
}

func TestCacheSaveIsAtomicAndCleansTemps(t *testing.T) {
	f := newFake(t)
	f.setDefs(serveDefs(testDefs, `"v1"`))
	dir := filepath.Join(t.TempDir(), "data") // created on first save
	// A temp file from a crash mid-save is removed at start.
	require.NoError(t, os.MkdirAll(dir, 0o750))
	stale := filepath.Join(dir, "."+CacheFile+".123.tmp")
	require.NoError(t, os.WriteFile(stale, []byte("half"), 0o600))

	h := newService(t, f.URL, dir, nil)
	require.NoFileExists(t, stale)
	require.NoError(t, h.svc.Reload(context.Background()))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	require.ElementsMatch(t, []string{CacheFile, AnswerFile}, names, "no temp file is left")
}

func TestSaveFailureKeepsAnswering(t *testing.T) {
	f := newFake(t)
	f.setDefs(serveDefs(testDefs, `"v1"`))
	dir := t.TempDir()
	// A directory where the cache file should be makes the rename fail.
	require.NoError(t, os.Mkdir(filepath.Join(dir, CacheFile), 0o750))
	require.NoError(t, os.WriteFile(filepath.Join(dir, CacheFile, "x"), nil, 0o600))
	h := newService(t, f.URL, dir, nil)
	require.NoError(t, h.svc.Reload(context.Background()), "the fetch itself worked")
	st := h.svc.Status()
	require.Equal(t, "network", st.Source)
	require.Zero(t, st.PollErrors)
	require.Contains(t, st.LastError, filepath.Join(dir, CacheFile))
	require.Len(t, h.logs.Lines("could not save flag definitions"), 1)
}

func TestNotModifiedPersistsConfirmationTimeSparingly(t *testing.T) {
	f := newFake(t)
	f.setDefs(serveDefs(testDefs, `"v1"`))
	h := newService(t, f.URL, t.TempDir(), nil)
	ctx := context.Background()
	require.NoError(t, h.svc.Reload(ctx))
	first := h.clock.Now()
	diskTime := func() time.Time {
		h2 := newService(t, "http://127.0.0.1:1", h.dir, nil)
		return h2.svc.Status().FetchedAt
	}

	h.clock.Advance(time.Minute)
	require.NoError(t, h.svc.Reload(ctx)) // 304
	require.True(t, first.Equal(diskTime()), "a 304 soon after is not worth an fsync")

	h.clock.Advance(persistCheckedEvery)
	require.NoError(t, h.svc.Reload(ctx)) // 304
	require.True(t, h.clock.Now().Equal(diskTime()))
}
