package flags

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/flags/eval"
	"github.com/hogrelay/hogrelay/internal/fakeposthog"
	"github.com/hogrelay/hogrelay/internal/retry"
)

func TestFetchSendsAuthTokenAndETag(t *testing.T) {
	f := newFake(t)
	f.setDefs(serveDefs(testDefs, `"v1"`))
	h := newService(t, f.URL+"/", t.TempDir(), nil) // trailing slash tolerated
	ctx := context.Background()

	require.NoError(t, h.svc.Reload(ctx))
	r, _ := f.last()
	require.Equal(t, "/flags/definitions", r.URL.Path)
	require.Equal(t, testToken, r.URL.Query().Get("token"))
	require.True(t, r.URL.Query().Has("send_cohorts"))
	require.Equal(t, "Bearer "+testKey, r.Header.Get("Authorization"))
	require.Empty(t, r.Header.Get("If-None-Match"))

	st := h.svc.Status()
	require.Equal(t, "network", st.Source)
	require.Equal(t, `"v1"`, st.ETag)
	require.Equal(t, 3, st.FlagCount)
	require.Equal(t, h.clock.Now(), st.FetchedAt)
	raw, etag, ok := h.svc.Definitions()
	require.True(t, ok)
	require.Equal(t, testDefs, string(raw))
	require.Equal(t, `"v1"`, etag)

	// The second poll sends the ETag and gets a 304 with no body; the set
	// stays and the confirmation time moves.
	h.clock.Advance(time.Minute)
	require.NoError(t, h.svc.Reload(ctx))
	r, _ = f.last()
	require.Equal(t, `"v1"`, r.Header.Get("If-None-Match"))
	st = h.svc.Status()
	require.Equal(t, h.clock.Now(), st.FetchedAt)
	require.Equal(t, uint64(2), st.Polls)
	require.Zero(t, st.PollErrors)
	raw2, _, _ := h.svc.Definitions()
	require.Equal(t, raw, raw2)
}

func TestNotModifiedUpdatesETag(t *testing.T) {
	f := newFake(t)
	f.setDefs(func(r *fakeposthog.Request) fakeposthog.Response {
		if r.N == 1 {
			return serveDefs(testDefs, `"a"`)(r)
		}
		return fakeposthog.Response{Status: http.StatusNotModified, ETag: `"b"`}
	})
	h := newService(t, f.URL, t.TempDir(), nil)
	require.NoError(t, h.svc.Reload(context.Background()))
	require.NoError(t, h.svc.Reload(context.Background()))
	require.Equal(t, `"b"`, h.svc.Status().ETag)

	// The new ETag is on disk too, so a restart does not re-download.
	h2 := newService(t, "http://127.0.0.1:1", h.dir, nil)
	require.Equal(t, `"b"`, h2.svc.Status().ETag)
}

func TestFallsBackToLocalEvaluationEndpointOn404(t *testing.T) {
	f := newFake(t)
	legacy := serveDefs(testDefs, `"x"`)
	f.setDefs(func(r *fakeposthog.Request) fakeposthog.Response {
		if r.Path == "/flags/definitions" {
			return fakeposthog.Response{Status: http.StatusNotFound} // an older self-hosted PostHog
		}
		return legacy(r)
	})
	h := newService(t, f.URL, t.TempDir(), nil)
	ctx := context.Background()

	require.NoError(t, h.svc.Reload(ctx))
	require.Equal(t, 1, f.count("/flags/definitions"))
	require.Equal(t, 1, f.count("/api/feature_flag/local_evaluation"))
	require.Contains(t, h.svc.Status().SourceURL, "/api/feature_flag/local_evaluation?token=")

	// Remembered: the next poll goes straight to the endpoint that worked.
	require.NoError(t, h.svc.Reload(ctx))
	require.Equal(t, 1, f.count("/flags/definitions"))
	require.Equal(t, 2, f.count("/api/feature_flag/local_evaluation"))
	require.Zero(t, h.svc.Status().PollErrors)
}

func TestBothEndpoints404NamesBoth(t *testing.T) {
	f := newFake(t)
	f.setDefs(status(http.StatusNotFound, "404 page not found"))
	h := newService(t, f.URL, t.TempDir(), nil)
	err := h.svc.Reload(context.Background())
	require.ErrorContains(t, err, "/flags/definitions?token=")
	require.ErrorContains(t, err, "/api/feature_flag/local_evaluation?token=")
	require.ErrorContains(t, err, "status 404")
}

// Failures keep the last good set and back off: interval×2^n, capped at
// 5 min, and a longer Retry-After wins. Counting polls, not time.
func TestFailuresKeepLastSetAndBackOff(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fail    script
		delays  []time.Duration
		errText string
	}{
		{"401", status(401, `{"type":"authentication_error","detail":"Invalid personal API key."}`),
			[]time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 300 * time.Second, 300 * time.Second},
			"status 401: Invalid personal API key."},
		{"403", status(403, `{"detail":"missing scope feature_flag:read"}`),
			[]time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 300 * time.Second, 300 * time.Second},
			"status 403"},
		{"500", status(500, `oops`),
			[]time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 300 * time.Second, 300 * time.Second},
			"status 500"},
		{"429 with Retry-After", func(*fakeposthog.Request) fakeposthog.Response {
			return fakeposthog.Response{Status: http.StatusTooManyRequests, RetryAfter: "120"}
		}, []time.Duration{10 * time.Second, 120 * time.Second, 120 * time.Second, 120 * time.Second, 160 * time.Second, 300 * time.Second, 300 * time.Second},
			"status 429"},
		{"JSON without a flags list", status(200, `{"detail":"maintenance"}`),
			[]time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 300 * time.Second, 300 * time.Second},
			`no "flags" list`},
		{"body that is not JSON", status(200, `<html>captive portal</html>`),
			[]time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 300 * time.Second, 300 * time.Second},
			"not JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			good := serveDefs(testDefs, `"v1"`)
			f.setDefs(func(r *fakeposthog.Request) fakeposthog.Response {
				if r.N == 1 {
					return good(r)
				}
				return tc.fail(r)
			})
			h := newService(t, f.URL, t.TempDir(), nil)

			delays := runPolls(t, h.svc, len(tc.delays))
			require.Equal(t, tc.delays, delays)
			require.Equal(t, len(tc.delays), f.count("/flags/definitions"), "one request per planned wait, no retry storm")

			st := h.svc.Status()
			require.Equal(t, uint64(len(tc.delays)), st.Polls)
			require.Equal(t, uint64(len(tc.delays)-1), st.PollErrors)
			require.Contains(t, st.LastError, tc.errText)
			require.Equal(t, "network", st.Source)
			require.Equal(t, 3, st.FlagCount)
			raw, _, ok := h.svc.Definitions()
			require.True(t, ok)
			require.Equal(t, testDefs, string(raw))

			// Logged once at warn when the failure started, repeats at debug.
			failed := h.logs.Lines("flag definitions fetch failed")
			require.Len(t, failed, len(tc.delays)-1)
			require.Equal(t, "warn", failed[0]["level"])
			for _, l := range failed[1:] {
				require.Equal(t, "debug", l["level"])
			}
		})
	}
}

func TestNetworkErrorBacksOffAndRecoveryIsLogged(t *testing.T) {
	f := newFake(t)
	good := serveDefs(testDefs, `"v1"`)
	f.setDefs(func(r *fakeposthog.Request) fakeposthog.Response {
		if r.N == 2 || r.N == 3 {
			// A broken response: a transport error, not a status. (A bare
			// close would be retried by net/http on a reused connection.)
			return fakeposthog.Response{Malformed: true}
		}
		return good(r)
	})
	h := newService(t, f.URL, t.TempDir(), nil)
	delays := runPolls(t, h.svc, 5)
	require.Equal(t, []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 10 * time.Second, 10 * time.Second}, delays)
	require.Equal(t, 5, f.count("/flags/definitions"))
	require.Len(t, h.logs.Lines("flag definitions fetch recovered"), 1)
	require.Equal(t, uint64(2), h.svc.Status().PollErrors)
}

func TestSetPollInterval(t *testing.T) {
	f := newFake(t)
	f.setDefs(serveDefs(testDefs, `"v1"`))
	h := newService(t, f.URL, t.TempDir(), nil)
	h.svc.SetPollInterval(time.Minute)
	<-h.svc.wake // the nudge is for a running loop; this one has not started
	require.Equal(t, []time.Duration{time.Minute, time.Minute}, runPolls(t, h.svc, 2))
	h.svc.SetPollInterval(time.Millisecond)
	require.Equal(t, time.Second, h.svc.Status().PollInterval, "raised to the 1s floor")
}

func TestQuotaLimitedStopsAnswersAndRecovers(t *testing.T) {
	f := newFake(t)
	var quota bool
	good := serveDefs(testDefs, `"v1"`)
	f.setDefs(func(r *fakeposthog.Request) fakeposthog.Response {
		if quota {
			return status(402, `{"type":"quota_limited","detail":"billing limit"}`)(r)
		}
		return good(r)
	})
	h := newService(t, f.URL, t.TempDir(), nil)
	ctx := context.Background()
	require.NoError(t, h.svc.Reload(ctx))
	_, err := h.svc.Flag(ctx, "always-on", Ask{Input: eval.Input{DistinctID: "u1"}})
	require.NoError(t, err)

	quota = true
	err = h.svc.Reload(ctx)
	require.ErrorIs(t, err, ErrQuotaLimited)
	require.ErrorContains(t, err, "status 402")

	_, err = h.svc.Flag(ctx, "always-on", Ask{Input: eval.Input{DistinctID: "u1"}})
	require.ErrorIs(t, err, ErrNoAnswer)
	require.ErrorIs(t, err, ErrQuotaLimited)
	all, err := h.svc.All(ctx, Ask{Input: eval.Input{DistinctID: "u1"}})
	require.ErrorIs(t, err, ErrNoAnswer)
	require.True(t, all.QuotaLimited)
	require.Empty(t, all.Flags)
	st := h.svc.Status()
	require.True(t, st.QuotaLimited)
	_, _, ok := h.svc.Definitions()
	require.False(t, ok, "SDKs behind the agent must stop evaluating too")
	_, err = h.svc.Flag(ctx, "needs-server", Ask{Input: eval.Input{DistinctID: "u1"}})
	require.ErrorIs(t, err, ErrQuotaLimited)
	require.Zero(t, f.count("/flags/"), "no remote /flags calls while quota limited")
	require.Len(t, h.logs.Lines("flag definitions fetch failed"), 1)

	// The good set stays on disk, marked: an offline restart still does not answer.
	h2 := newService(t, "http://127.0.0.1:1", h.dir, nil)
	require.True(t, h2.svc.Status().QuotaLimited)
	require.Equal(t, 3, h2.svc.Status().FlagCount)
	_, err = h2.svc.Flag(ctx, "always-on", Ask{Input: eval.Input{DistinctID: "u1"}})
	require.ErrorIs(t, err, ErrQuotaLimited)

	// Quota lifted: PostHog answers 304 to our ETag and answers resume.
	quota = false
	require.NoError(t, h.svc.Reload(ctx))
	require.False(t, h.svc.Status().QuotaLimited)
	r, err := h.svc.Flag(ctx, "always-on", Ask{Input: eval.Input{DistinctID: "u1"}})
	require.NoError(t, err)
	require.True(t, r.Enabled)
	h3 := newService(t, "http://127.0.0.1:1", h.dir, nil)
	require.False(t, h3.svc.Status().QuotaLimited, "the quota mark is cleared on disk too")
}

func TestPollingDisabled(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mod    func(*Options)
		remote bool // with a project key, /flags still answers
		why    string
	}{
		{"no personal key", func(o *Options) { o.PersonalAPIKey = "" }, true, "no personal API key"},
		{"no project token", func(o *Options) { o.ProjectToken = "" }, false, "no project API key"},
		{"no host", func(o *Options) { o.Host = "" }, false, "no PostHog host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.setDefs(serveDefs(testDefs, `"v1"`))
			h := newService(t, f.URL, t.TempDir(), tc.mod)
			require.ErrorIs(t, h.svc.Reload(context.Background()), ErrPollingDisabled)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			h.svc.Run(ctx) // returns once ctx is done, without polling
			require.Zero(t, f.count("/flags/definitions"))
			st := h.svc.Status()
			require.False(t, st.PollingEnabled)
			require.Contains(t, st.PollingOff, tc.why)
			require.Equal(t, tc.remote, st.RemoteEnabled)
			require.Equal(t, "none", st.Source)
			if tc.remote {
				require.Equal(t, "remote", st.Answers)
			} else {
				require.Equal(t, "none", st.Answers)
			}
		})
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	_, err := New(Options{Host: "https://us.i.posthog.com"})
	require.ErrorContains(t, err, "Dir is empty")
	_, err = New(Options{Host: "us.i.posthog.com", Dir: t.TempDir()})
	require.ErrorContains(t, err, `"us.i.posthog.com" is not an http(s) URL`)
}

// The personal key must never reach a log line or Status, even when the
// server echoes it back in an error detail.
func TestKeyNeverLogged(t *testing.T) {
	f := newFake(t)
	steps := []script{
		serveDefs(testDefs, `"v1"`),
		func(r *fakeposthog.Request) fakeposthog.Response {
			return status(401, `{"detail":"invalid key `+strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")+`"}`)(r)
		},
		status(500, ``),
		status(402, ``),
		status(200, `not json`),
		serveDefs(testDefs, `"v2"`),
	}
	f.setDefs(func(r *fakeposthog.Request) fakeposthog.Response { return steps[min(r.N, len(steps))-1](r) })
	f.setFlags(status(http.StatusBadGateway, ""))
	h := newService(t, f.URL, t.TempDir(), nil)
	runPolls(t, h.svc, len(steps))
	_, err := h.svc.Flag(context.Background(), "needs-server", Ask{Input: eval.Input{DistinctID: "u"}})
	require.Error(t, err)

	logs := h.logs.String()
	require.Contains(t, logs, "invalid key [redacted]", "the echo was logged, scrubbed")
	require.NotContains(t, logs, testKey)
	require.NotContains(t, logs, strings.TrimPrefix(testKey, "phx_"))
	require.NotContains(t, h.svc.Status().LastError, testKey)
	require.NotContains(t, err.Error(), testKey)
}

func TestReloadDuringShutdownIsNotAFailure(t *testing.T) {
	f := newFake(t)
	f.setDefs(serveDefs(testDefs, `"v1"`))
	h := newService(t, f.URL, t.TempDir(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := h.svc.Reload(ctx)
	require.True(t, errors.Is(err, context.Canceled), err)
	require.Zero(t, h.svc.Status().PollErrors)
}

func TestNextDelay(t *testing.T) {
	for _, tc := range []struct {
		name       string
		interval   time.Duration
		failures   int
		retryAfter time.Duration
		want       time.Duration
	}{
		{"healthy", 30 * time.Second, 0, 0, 30 * time.Second},
		{"healthy ignores an old Retry-After", 30 * time.Second, 0, time.Hour, 30 * time.Second},
		{"first failure doubles", 30 * time.Second, 1, 0, time.Minute},
		{"capped at 5 min", 30 * time.Second, 4, 0, 5 * time.Minute},
		{"many failures stay capped", 30 * time.Second, 1000, 0, 5 * time.Minute},
		{"an interval above the cap is never shortened", 10 * time.Minute, 3, 0, 10 * time.Minute},
		{"Retry-After wins when longer", 30 * time.Second, 1, 7 * time.Minute, 7 * time.Minute},
		{"Retry-After is bounded", 30 * time.Second, 1, 24 * time.Hour, retry.MaxRetryAfter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newService(t, "http://127.0.0.1:1", t.TempDir(), func(o *Options) { o.PollInterval = tc.interval })
			h.svc.failures, h.svc.retryAfter = tc.failures, tc.retryAfter
			require.Equal(t, tc.want, h.svc.nextDelay())
		})
	}
}

func TestJitterStaysWithinTenPercent(t *testing.T) {
	for range 1000 {
		d := jitter10(time.Minute)
		require.GreaterOrEqual(t, d, 54*time.Second)
		require.LessOrEqual(t, d, 66*time.Second)
	}
}
