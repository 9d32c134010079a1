package flags

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/flags/eval"
	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

// projectKeyOnly is the default PostHog setup: a project key, no personal key.
func projectKeyOnly(o *Options) { o.PersonalAPIKey = "" }

// perUser answers each distinct id with its own variant, so answers for
// different contexts cannot be confused.
func perUser(r *fakeposthog.Request) fakeposthog.Response {
	var body map[string]any
	_ = json.Unmarshal(r.Body, &body)
	id, _ := body["distinct_id"].(string)
	return fakeposthog.Response{Status: http.StatusOK, Body: fmt.Sprintf(`{"flags":{"checkout":{"key":"checkout","enabled":true,"variant":%q,"reason":{"code":"condition_match","condition_index":0,"description":"Matched condition set 1"},"metadata":{"id":9,"version":2,"payload":null,"has_experiment":true}}},"errorsWhileComputingFlags":false,"requestId":"req-%s","evaluatedAt":1767323045000}`, "v-"+id, id)}
}

func TestProjectKeyOnlyAsksPostHog(t *testing.T) {
	f := newFake(t)
	f.setFlags(perUser)
	h := newService(t, f.URL, t.TempDir(), projectKeyOnly)
	ans, err := h.svc.Flag(context.Background(), "checkout", Ask{Input: eval.Input{DistinctID: "u1"}})
	require.NoError(t, err)
	require.Equal(t, "v-u1", ans.Value())
	require.Equal(t, SourceRemote, ans.Source)
	require.Equal(t, "req-u1", ans.RequestID)
	require.EqualValues(t, 1767323045000, ans.EvaluatedAt)
	require.Zero(t, f.count("/flags/definitions"), "no personal key: no polling")
	req, body := f.last()
	require.Empty(t, req.Header.Get("Authorization"))
	require.JSONEq(t, `{"token":"phc_testproject","distinct_id":"u1","groups":{},"person_properties":{},"group_properties":{},
		"geoip_disable":true,"flag_keys_to_evaluate":["checkout"]}`, string(body))
	require.Equal(t, "remote", h.svc.Status().Answers)
}

func TestSDKBodyPassesThrough(t *testing.T) {
	cases := []struct{ name, sent, want string }{
		{"as sent, unknown fields too", `{"token":"phc_sdk","distinct_id":"u1","groups":{"company":"acme"},"geoip_disable":false,"x_new":{"a":[1,2]},"evaluation_contexts":["web"]}`,
			`{"token":"phc_sdk","distinct_id":"u1","groups":{"company":"acme"},"geoip_disable":false,"x_new":{"a":[1,2]},"evaluation_contexts":["web"]}`},
		{"groups default to {}", `{"token":"phc_sdk","distinct_id":"u1"}`, `{"groups":{},"token":"phc_sdk","distinct_id":"u1"}`},
		{"$groups counts as groups", `{"token":"phc_sdk","distinct_id":"u1","$groups":{}}`, `{"token":"phc_sdk","distinct_id":"u1","$groups":{}}`},
		{"empty object", `{}`, `{"groups":{}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.setFlags(perUser)
			h := newService(t, f.URL, t.TempDir(), projectKeyOnly)
			_, _ = h.svc.All(context.Background(), Ask{Input: eval.Input{DistinctID: "u1"}, Body: []byte(tc.sent), Token: "phc_sdk", UserAgent: "posthog-node/5.70.0"})
			req, body := f.last()
			require.Equal(t, tc.want, string(body), "byte for byte")
			require.Equal(t, "posthog-node/5.70.0", req.Header.Get("User-Agent"))
			require.Equal(t, "2", req.URL.Query().Get("v"))
		})
	}
}

func TestRemoteRetriesOnceOn502And504(t *testing.T) {
	cases := []struct {
		name     string
		statuses []int // answers before a 200
		requests int
		ok       bool
	}{
		{"502 then 200", []int{502}, 2, true},
		{"504 then 200", []int{504}, 2, true},
		{"502 twice", []int{502, 502}, 2, false},
		{"500 is not retried", []int{500}, 1, false},
		{"503 is not retried", []int{503}, 1, false},
		{"429 is not retried", []int{429}, 1, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			var n atomic.Int32
			f.setFlags(func(r *fakeposthog.Request) fakeposthog.Response {
				i := int(n.Add(1)) - 1
				if i < len(tc.statuses) {
					return fakeposthog.Response{Status: tc.statuses[i]}
				}
				return perUser(r)
			})
			h := newService(t, f.URL, t.TempDir(), projectKeyOnly)
			ans, err := h.svc.Flag(context.Background(), "checkout", Ask{Input: eval.Input{DistinctID: "u1"}})
			require.Equal(t, tc.requests, f.count("/flags/"))
			if tc.ok {
				require.NoError(t, err)
				require.Equal(t, "v-u1", ans.Value())
			} else {
				require.ErrorIs(t, err, ErrNoAnswer)
			}
		})
	}
}

func TestRemoteTimeoutIsBounded(t *testing.T) {
	f := newFake(t)
	f.setFlags(func(*fakeposthog.Request) fakeposthog.Response { return fakeposthog.Response{Hang: true} })
	h := newService(t, f.URL, t.TempDir(), func(o *Options) { projectKeyOnly(o); o.RemoteTimeout = 200 * time.Millisecond })
	start := time.Now()
	_, err := h.svc.Flag(context.Background(), "checkout", Ask{Input: eval.Input{DistinctID: "u1"}})
	require.ErrorIs(t, err, ErrNoAnswer)
	require.Less(t, time.Since(start), 2*time.Second, "the whole call, retry included, stays within remote_timeout")
}

func TestRedirectIsNotFollowed(t *testing.T) {
	f := newFake(t)
	f.setFlags(func(*fakeposthog.Request) fakeposthog.Response {
		return fakeposthog.Response{Status: http.StatusMovedPermanently, Location: "https://example.com/flags/?v=2"}
	})
	f.setDefs(func(*fakeposthog.Request) fakeposthog.Response {
		return fakeposthog.Response{Status: http.StatusFound, Location: "https://example.com/flags/definitions"}
	})
	h := newService(t, f.URL, t.TempDir(), nil)
	err := h.svc.Reload(context.Background())
	require.ErrorContains(t, err, "status 302 redirects to https://example.com/flags/definitions")
	require.ErrorContains(t, err, "[posthog] host")
	_, err = h.svc.Flag(context.Background(), "checkout", Ask{Input: eval.Input{DistinctID: "u1"}})
	require.ErrorContains(t, err, "status 301 redirects to https://example.com/flags/?v=2")
	require.ErrorContains(t, err, "[posthog] host")
	require.Equal(t, 1, f.count("/flags/"), "not followed, not retried")
}

func TestOfflineAnswersFromTheAnswerCache(t *testing.T) {
	f := newFake(t)
	f.setFlags(perUser)
	dir := t.TempDir()
	h := newService(t, f.URL, dir, projectKeyOnly)
	ctx := context.Background()
	u1 := Ask{Input: eval.Input{DistinctID: "u1", PersonProperties: map[string]any{"plan": "pro"}}}
	all, err := h.svc.All(ctx, u1)
	require.NoError(t, err)
	require.Equal(t, "v-u1", all.Flags["checkout"].Value())
	require.NoError(t, h.svc.Close()) // saves what is queued

	info, err := os.Stat(filepath.Join(dir, AnswerFile))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "it holds distinct ids")

	// Restart with PostHog gone.
	down := newFake(t)
	down.Close()
	h2 := newService(t, down.URL, dir, projectKeyOnly)
	h2.clock.Advance(time.Hour)
	all, err = h2.svc.All(ctx, u1)
	require.NoError(t, err)
	require.Equal(t, "v-u1", all.Flags["checkout"].Value())
	require.Equal(t, SourceCached, all.Source["checkout"])
	require.False(t, all.CachedAt.IsZero())
	require.Equal(t, "req-u1", all.RequestID)
	require.False(t, all.ErrorsWhileComputing, "the last complete answer for this context")
	require.Contains(t, string(all.Raw["checkout"]), `"has_experiment":true`, "PostHog's object, kept whole")
	ans, err := h2.svc.Flag(ctx, "checkout", u1)
	require.NoError(t, err)
	require.Equal(t, SourceCached, ans.Source)
	require.Equal(t, "cached", h2.svc.Status().Answers)

	// Another context was never seen: no value, never a guess.
	_, err = h2.svc.All(ctx, Ask{Input: eval.Input{DistinctID: "u2"}})
	require.ErrorIs(t, err, ErrNoAnswer)
	_, err = h2.svc.All(ctx, Ask{Input: eval.Input{DistinctID: "u1", PersonProperties: map[string]any{"plan": "free"}}})
	require.ErrorIs(t, err, ErrNoAnswer, "other properties are another context")
	st := h2.svc.Status().AnswerCache
	require.Equal(t, 1, st.Entries)
	require.EqualValues(t, 2, st.Hits)
	require.EqualValues(t, 2, st.Misses)

	// SDKs add distinct_id and $group_key themselves; the service does too,
	// so the context is the same.
	all, err = h2.svc.All(ctx, Ask{Input: eval.Input{DistinctID: "u1", PersonProperties: map[string]any{"plan": "pro", "distinct_id": "u1"}}})
	require.NoError(t, err)
	require.Equal(t, SourceCached, all.Source["checkout"])
}

func TestFreshAnswersReplaceCachedOnes(t *testing.T) {
	f := newFake(t)
	variant := atomic.Value{}
	variant.Store("old")
	up := atomic.Bool{}
	up.Store(true)
	f.setFlags(func(*fakeposthog.Request) fakeposthog.Response {
		if !up.Load() {
			return fakeposthog.Response{Status: http.StatusBadGateway}
		}
		return fakeposthog.Response{Status: http.StatusOK, Body: `{"flags":{"checkout":{"key":"checkout","enabled":true,"variant":"` + variant.Load().(string) + `","metadata":{"id":1,"version":1}}}}`}
	})
	h := newService(t, f.URL, t.TempDir(), projectKeyOnly)
	ctx := context.Background()
	ask := Ask{Input: eval.Input{DistinctID: "u1"}}
	ans, err := h.svc.Flag(ctx, "checkout", ask)
	require.NoError(t, err)
	require.Equal(t, "old", ans.Value())

	variant.Store("new")
	ans, err = h.svc.Flag(ctx, "checkout", ask)
	require.NoError(t, err)
	require.Equal(t, "new", ans.Value(), "while PostHog answers, every call asks it")
	require.Equal(t, SourceRemote, ans.Source)

	up.Store(false)
	require.Eventually(t, func() bool {
		ans, err = h.svc.Flag(ctx, "checkout", ask)
		return err == nil && ans.Source == SourceCached
	}, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, "new", ans.Value(), "the cache holds the freshest answer")
}

func TestAnswerCacheStaysWithinItsBounds(t *testing.T) {
	f := newFake(t)
	f.setFlags(perUser)
	dir := t.TempDir()
	h := newService(t, f.URL, dir, func(o *Options) {
		projectKeyOnly(o)
		o.AnswerCache = AnswerCacheOptions{MaxEntries: 5, MaxAge: 30 * 24 * time.Hour}
	})
	ctx := context.Background()
	for i := range 20 {
		_, err := h.svc.All(ctx, Ask{Input: eval.Input{DistinctID: fmt.Sprintf("u%d", i)}})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return h.svc.Status().AnswerCache.Entries == 5 }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, h.svc.Close())

	down := newFake(t)
	down.Close()
	h2 := newService(t, down.URL, dir, func(o *Options) {
		projectKeyOnly(o)
		o.AnswerCache = AnswerCacheOptions{MaxEntries: 5, MaxAge: 30 * 24 * time.Hour}
	})
	st := h2.svc.Status().AnswerCache
	require.Equal(t, 5, st.Entries)
	_, err := h2.svc.All(ctx, Ask{Input: eval.Input{DistinctID: "u19"}})
	require.NoError(t, err, "the most recent stay")
	_, err = h2.svc.All(ctx, Ask{Input: eval.Input{DistinctID: "u0"}})
	require.ErrorIs(t, err, ErrNoAnswer, "the least recently used went first")

	// Older than the age limit: never served.
	h2.clock.Advance(31 * 24 * time.Hour)
	_, err = h2.svc.All(ctx, Ask{Input: eval.Input{DistinctID: "u19"}})
	require.ErrorIs(t, err, ErrNoAnswer)

	// Bytes bound.
	h3dir := t.TempDir()
	h3 := newService(t, f.URL, h3dir, func(o *Options) {
		projectKeyOnly(o)
		o.AnswerCache = AnswerCacheOptions{MaxBytes: 2000}
	})
	for i := range 50 {
		_, err := h3.svc.All(ctx, Ask{Input: eval.Input{DistinctID: fmt.Sprintf("user-%d", i)}})
		require.NoError(t, err)
	}
	require.NoError(t, h3.svc.Close())
	h3b := newService(t, down.URL, h3dir, func(o *Options) { projectKeyOnly(o); o.AnswerCache = AnswerCacheOptions{MaxBytes: 2000} })
	st = h3b.svc.Status().AnswerCache
	require.LessOrEqual(t, st.Bytes, int64(2000))
	require.Positive(t, st.Entries)
}

func TestClearAnswers(t *testing.T) {
	f := newFake(t)
	f.setFlags(perUser)
	h := newService(t, f.URL, t.TempDir(), projectKeyOnly)
	ctx := context.Background()
	_, err := h.svc.All(ctx, Ask{Input: eval.Input{DistinctID: "u1"}})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return h.svc.Status().AnswerCache.Entries == 1 }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, h.svc.ClearAnswers())
	require.Zero(t, h.svc.Status().AnswerCache.Entries)
	f.setFlags(status(http.StatusBadGateway, ""))
	_, err = h.svc.All(ctx, Ask{Input: eval.Input{DistinctID: "u1"}})
	require.ErrorIs(t, err, ErrNoAnswer, "nothing left to answer from")
}

// "no answer for KEY: " + the error must read once: no "no answer" inside,
// and the flag named by the caller only.
func TestNoAnswerMessagesDoNotStutter(t *testing.T) {
	f := newFake(t)
	f.setFlags(status(http.StatusInternalServerError, ""))
	h := loaded(t, f, func(o *Options) { o.OnlyEvaluateLocally = false })
	for _, tc := range []struct {
		key string
		ask Ask
	}{
		{"needs-server", Ask{Input: eval.Input{DistinctID: "u"}, OnlyLocal: true}},
		{"needs-server", Ask{Input: eval.Input{DistinctID: "u"}}},
		{"no-such-flag", Ask{Input: eval.Input{DistinctID: "u"}}},
	} {
		_, err := h.svc.Flag(context.Background(), tc.key, tc.ask)
		require.ErrorIs(t, err, ErrNoAnswer)
		msg := err.Error()
		require.NotContains(t, msg, "no answer", msg)
		require.NotContains(t, msg, fmt.Sprintf("flag %q", tc.key), msg)
	}
}
