package fakeposthog

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCaptureAcceptsEveryBodyShapeOnEveryRoute(t *testing.T) {
	tests := []struct {
		name     string
		path     string
		body     string
		wantDID  string
		wantUUID string
	}{
		{
			name:     "batch object with api_key",
			path:     "/batch/",
			body:     `{"api_key":"phc_a","batch":[{"uuid":"` + uuidA + `","event":"e","distinct_id":"u1","properties":{"x":1}}]}`,
			wantDID:  "u1",
			wantUUID: uuidA,
		},
		{
			name:    "batch object with token, no trailing slash",
			path:    "/batch",
			body:    `{"token":"phc_a","batch":[{"event":"e","distinct_id":"u1"}]}`,
			wantDID: "u1",
		},
		{
			name:     "array of events carrying their own token",
			path:     "/e/",
			body:     `[{"token":"phc_a","uuid":"` + uuidA + `","event":"e","distinct_id":"u1"}]`,
			wantDID:  "u1",
			wantUUID: uuidA,
		},
		{
			name:    "single event with $token and $distinct_id",
			path:    "/i/v0/e/",
			body:    `{"$token":"phc_a","event":"e","$distinct_id":"u2"}`,
			wantDID: "u2",
		},
		{
			name:    "single event, token and distinct_id in properties",
			path:    "/capture",
			body:    `{"event":"e","properties":{"token":"phc_a","distinct_id":"u3"}}`,
			wantDID: "u3",
		},
		{
			name:    "numeric distinct_id is stringified",
			path:    "/track/",
			body:    `{"api_key":"phc_a","event":"e","distinct_id":42}`,
			wantDID: "42",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, Options{})
			r := post(t, s, tc.path, []byte(tc.body), map[string]string{"Content-Type": "application/json"})
			require.Equal(t, http.StatusOK, r.status, r.body)
			require.JSONEq(t, `{"status":1}`, r.body)

			events := s.Events()
			require.Len(t, events, 1)
			require.Equal(t, "e", events[0].Event)
			require.Equal(t, tc.wantDID, events[0].DistinctID)
			require.Equal(t, tc.wantUUID, events[0].UUID)
			require.Equal(t, "phc_a", events[0].Token)
			require.NotNil(t, events[0].Properties)
			require.NotEmpty(t, events[0].Raw)
		})
	}
}

func TestCaptureCompression(t *testing.T) {
	plain := func(t *testing.T) []byte { return batch(t, ev(uuidA, "e")) }
	tests := []struct {
		name       string
		path       string
		body       func(t *testing.T) []byte
		header     map[string]string
		wantStatus int
		wantGzip   bool
		wantBody   string
	}{
		{
			name:       "uncompressed",
			path:       "/batch/",
			body:       plain,
			wantStatus: http.StatusOK,
		},
		{
			name:       "gzip announced by Content-Encoding",
			path:       "/batch/",
			body:       func(t *testing.T) []byte { return gzipped(t, plain(t)) },
			header:     map[string]string{"Content-Encoding": "gzip"},
			wantStatus: http.StatusOK,
			wantGzip:   true,
		},
		{
			name:       "gzip found by magic bytes only",
			path:       "/e/",
			body:       func(t *testing.T) []byte { return gzipped(t, plain(t)) },
			header:     map[string]string{"Content-Type": "text/plain"},
			wantStatus: http.StatusOK,
			wantGzip:   true,
		},
		{
			name:       "gzip announced by ?compression=gzip-js",
			path:       "/e/?compression=gzip-js",
			body:       func(t *testing.T) []byte { return gzipped(t, plain(t)) },
			wantStatus: http.StatusOK,
			wantGzip:   true,
		},
		{
			name:       "Content-Encoding gzip on a plain body",
			path:       "/batch/",
			body:       plain,
			header:     map[string]string{"Content-Encoding": "gzip"},
			wantStatus: http.StatusBadRequest,
			wantBody:   msgInvalidGzip,
		},
		{
			name:       "truncated gzip",
			path:       "/batch/",
			body:       func(t *testing.T) []byte { b := gzipped(t, plain(t)); return b[:len(b)-10] },
			wantStatus: http.StatusBadRequest,
			wantBody:   msgInvalidGzip,
		},
		{
			name:       "lz64 is refused by name",
			path:       "/e/?compression=lz64",
			body:       plain,
			wantStatus: http.StatusBadRequest,
			wantBody:   "lz64",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, Options{})
			r := post(t, s, tc.path, tc.body(t), tc.header)
			require.Equal(t, tc.wantStatus, r.status, r.body)
			require.Contains(t, r.body, tc.wantBody)

			reqs := s.Requests()
			require.Len(t, reqs, 1)
			require.Equal(t, tc.wantStatus, reqs[0].Status)
			if tc.wantStatus == http.StatusOK {
				require.Equal(t, tc.wantGzip, reqs[0].Gzipped)
				require.Equal(t, map[string]int{uuidA: 1}, s.UniqueUUIDs())
			} else {
				require.Empty(t, s.Events())
			}
		})
	}
}

func TestCaptureRefusals(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantStatus int
		wantBody   string
	}{
		{"not JSON", `{"api_key":`, http.StatusBadRequest, "failed to parse request"},
		{"empty body", ``, http.StatusBadRequest, "failed to parse request"},
		{"empty batch", `{"api_key":"phc_a","batch":[]}`, http.StatusBadRequest, msgNoEvent},
		{"batch is not an array", `{"api_key":"phc_a","batch":{}}`, http.StatusBadRequest, "failed to parse request"},
		{"missing event name", `{"api_key":"phc_a","batch":[{"distinct_id":"u"}]}`, http.StatusBadRequest, "missing field `event`"},
		{"empty event name", `{"api_key":"phc_a","batch":[{"event":"","distinct_id":"u"}]}`, http.StatusBadRequest, msgEmptyEventName},
		{"missing distinct_id", `{"api_key":"phc_a","batch":[{"event":"e"}]}`, http.StatusBadRequest, msgNoDistinctID},
		{"empty distinct_id", `{"api_key":"phc_a","batch":[{"event":"e","distinct_id":""}]}`, http.StatusBadRequest, msgEmptyDistinctID},
		{"malformed uuid", `{"api_key":"phc_a","batch":[{"uuid":"not-a-uuid","event":"e","distinct_id":"u"}]}`, http.StatusBadRequest, "invalid uuid"},
		{"no token anywhere", `{"batch":[{"event":"e","distinct_id":"u"}]}`, http.StatusUnauthorized, msgNoToken},
		{"personal API key", `{"api_key":"phx_secret","batch":[{"event":"e","distinct_id":"u"}]}`, http.StatusUnauthorized, "API key is not valid: personal_api_key"},
		{"token too long", `{"api_key":"` + strings.Repeat("x", 65) + `","batch":[{"event":"e","distinct_id":"u"}]}`, http.StatusUnauthorized, "too_long"},
		{"events disagree on token", `[{"token":"phc_a","event":"e","distinct_id":"u"},{"token":"phc_b","event":"e","distinct_id":"u"}]`, http.StatusUnauthorized, msgMultipleTokens},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var rec batchRecorder
			s := start(t, Options{OnBatch: rec.record})
			r := post(t, s, "/batch/", []byte(tc.body), nil)
			require.Equal(t, tc.wantStatus, r.status)
			require.Contains(t, r.body, tc.wantBody)
			require.Equal(t, "text/plain; charset=utf-8", r.header.Get("Content-Type"))

			require.Empty(t, s.Events())
			require.Empty(t, s.UniqueUUIDs())
			require.Empty(t, rec.got(), "OnBatch is for accepted batches only")
			reqs := s.Requests()
			require.Len(t, reqs, 1)
			require.Equal(t, tc.wantStatus, reqs[0].Status)
			require.False(t, reqs[0].Accepted)
			require.Contains(t, reqs[0].Error, tc.wantBody)
		})
	}
}

func TestCaptureBodyLimits(t *testing.T) {
	// A decompressed body over 20 MiB, from a small gzip body.
	bomb := func(t *testing.T) []byte {
		pad := strings.Repeat("a", batchBodyLimit)
		return gzipped(t, batch(t, map[string]any{"event": "e", "distinct_id": "u", "properties": map[string]any{"pad": pad}}))
	}
	tests := []struct {
		name     string
		path     string
		body     func(t *testing.T) []byte
		wantBody string
	}{
		{"single-event route over 2 MiB", "/e/", func(*testing.T) []byte { return bytes.Repeat([]byte("a"), eventBodyLimit+1) }, msgBodyTooLarge},
		{"batch route over 20 MiB", "/batch/", func(*testing.T) []byte { return bytes.Repeat([]byte("a"), batchBodyLimit+1) }, msgBodyTooLarge},
		{"gzip that inflates past 20 MiB", "/batch/", bomb, msgEventTooBig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, Options{})
			r := post(t, s, tc.path, tc.body(t), nil)
			require.Equal(t, http.StatusRequestEntityTooLarge, r.status)
			require.Equal(t, tc.wantBody, r.body)
			require.Empty(t, s.Events())
		})
	}

	t.Run("a batch just under 2 MiB is fine on /batch", func(t *testing.T) {
		s := start(t, Options{})
		pad := strings.Repeat("a", eventBodyLimit)
		r := post(t, s, "/batch/", batch(t, map[string]any{"event": "e", "distinct_id": "u", "properties": map[string]any{"pad": pad}}), nil)
		require.Equal(t, http.StatusOK, r.status)
	})
}

func TestCaptureRecordsSentAt(t *testing.T) {
	tests := []struct {
		name      string
		path      string
		body      string
		wantSent  bool
		wantValue string
	}{
		{"none", "/batch/", `{"api_key":"phc_a","batch":[{"event":"e","distinct_id":"u"}]}`, false, ""},
		{"body field", "/batch/", `{"api_key":"phc_a","sent_at":"2026-08-01T00:00:00Z","batch":[{"event":"e","distinct_id":"u"}]}`, true, "2026-08-01T00:00:00Z"},
		{"query sent_at", "/batch/?sent_at=1785542400000", `{"api_key":"phc_a","batch":[{"event":"e","distinct_id":"u"}]}`, true, "1785542400000"},
		{"browser cache buster", "/e/?_=1785542400000", `{"api_key":"phc_a","event":"e","distinct_id":"u"}`, true, "1785542400000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, Options{})
			r := post(t, s, tc.path, []byte(tc.body), nil)
			require.Equal(t, http.StatusOK, r.status, r.body)
			reqs := s.Requests()
			require.Len(t, reqs, 1)
			require.Equal(t, tc.wantSent, reqs[0].SentAt)
			require.Equal(t, tc.wantValue, reqs[0].SentAtValue)
		})
	}
}

func TestCaptureRecordsRepeatsAndCallsOnBatch(t *testing.T) {
	var rec batchRecorder
	s := start(t, Options{OnBatch: rec.record})
	body := gzipped(t, batch(t, ev(uuidA, "a"), ev(uuidB, "b")))
	hdr := map[string]string{"Content-Encoding": "gzip", "User-Agent": "hogrelay/test"}

	for range 2 {
		r := post(t, s, "/batch/", body, hdr)
		require.Equal(t, http.StatusOK, r.status)
	}

	events := s.Events()
	require.Len(t, events, 4, "a batch accepted twice is recorded twice")
	require.Equal(t, []string{"a", "b", "a", "b"}, []string{events[0].Event, events[1].Event, events[2].Event, events[3].Event})
	require.Equal(t, map[string]int{uuidA: 2, uuidB: 2}, s.UniqueUUIDs())
	require.Equal(t, []BatchInfo{
		{Path: "/batch/", Token: testToken, Events: 2, Gzipped: true, Status: 200, UserAgent: "hogrelay/test"},
		{Path: "/batch/", Token: testToken, Events: 2, Gzipped: true, Status: 200, UserAgent: "hogrelay/test"},
	}, rec.got())

	reqs := s.Requests()
	require.Len(t, reqs, 2)
	require.Equal(t, []string{uuidA, uuidB}, reqs[0].UUIDs)
	require.Equal(t, "gzip", reqs[0].Header.Get("Content-Encoding"))
	require.Equal(t, len(body), reqs[0].BodySize)
	require.True(t, reqs[0].Accepted)
	require.False(t, reqs[0].SentAt)
}

func TestCaptureHistoricalMigration(t *testing.T) {
	s := start(t, Options{})
	body := `{"api_key":"phc_a","historical_migration":true,"batch":[{"event":"e","distinct_id":"u"}]}`
	require.Equal(t, http.StatusOK, post(t, s, "/batch/", []byte(body), nil).status)
	require.True(t, s.Events()[0].HistoricalMigration)
	require.True(t, s.Requests()[0].HistoricalMigration)
}

func TestCaptureBeaconAnswers204(t *testing.T) {
	s := start(t, Options{})
	r := post(t, s, "/e/?beacon=1", []byte(`{"api_key":"phc_a","event":"e","distinct_id":"u"}`), nil)
	require.Equal(t, http.StatusNoContent, r.status)
	require.Len(t, s.Events(), 1)
}

func TestRejectEventPoisonsTheWholeBatch(t *testing.T) {
	s := start(t, Options{})
	s.RejectEvent(func(e Event) bool { return e.Event == "poison" })

	r := post(t, s, "/batch/", batch(t, ev(uuidA, "fine"), ev(uuidB, "poison")), nil)
	require.Equal(t, http.StatusBadRequest, r.status)
	require.Equal(t, msgInvalidEvent, r.body)
	require.Empty(t, s.Events(), "no event of a poisoned batch is accepted")
	require.Contains(t, s.Requests()[0].Error, uuidB)

	r = post(t, s, "/batch/", batch(t, ev(uuidA, "fine")), nil)
	require.Equal(t, http.StatusOK, r.status)

	s.RejectEvent(nil)
	r = post(t, s, "/batch/", batch(t, ev(uuidB, "poison")), nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, map[string]int{uuidA: 1, uuidB: 1}, s.UniqueUUIDs())
}

func TestSetMaxBatchEvents(t *testing.T) {
	s := start(t, Options{})
	three := batch(t, ev(uuidA, "e"), ev(uuidB, "e"), ev(uuidC, "e"))

	s.SetMaxBatchEvents(2)
	r := post(t, s, "/batch/", three, nil)
	require.Equal(t, http.StatusRequestEntityTooLarge, r.status)
	require.Equal(t, msgEventTooBig, r.body)
	require.Empty(t, s.Events())

	r = post(t, s, "/batch/", batch(t, ev(uuidA, "e"), ev(uuidB, "e")), nil)
	require.Equal(t, http.StatusOK, r.status)

	s.SetMaxBatchEvents(0)
	r = post(t, s, "/batch/", three, nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Len(t, s.Events(), 5)
}

func TestWaitForUUIDs(t *testing.T) {
	t.Run("returns once every uuid is accepted", func(t *testing.T) {
		s := start(t, Options{})
		done := make(chan error, 1)
		go func() { done <- s.WaitForUUIDs(context.Background(), []string{uuidA, uuidB}) }()

		// The first batch satisfies only half the wait; a refused batch
		// with the other uuid must not count.
		require.Equal(t, http.StatusOK, post(t, s, "/batch/", batch(t, ev(uuidA, "e")), nil).status)
		s.Script(Response{Status: http.StatusServiceUnavailable})
		require.Equal(t, http.StatusServiceUnavailable, post(t, s, "/batch/", batch(t, ev(uuidB, "e")), nil).status)
		select {
		case err := <-done:
			t.Fatalf("WaitForUUIDs returned before uuidB was accepted: %v", err)
		default:
		}

		require.Equal(t, http.StatusOK, post(t, s, "/batch/", batch(t, ev(uuidB, "e")), nil).status)
		require.NoError(t, <-done)
	})

	t.Run("names what is missing when ctx ends", func(t *testing.T) {
		s := start(t, Options{})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := s.WaitForUUIDs(ctx, []string{uuidA})
		require.ErrorIs(t, err, context.Canceled)
		require.Contains(t, err.Error(), uuidA)
	})

	t.Run("Close releases waiters", func(t *testing.T) {
		s, err := New(Options{})
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() { done <- s.WaitForUUIDs(context.Background(), []string{uuidA}) }()
		require.NoError(t, s.Close())
		require.ErrorIs(t, <-done, ErrClosed)
	})
}

func TestRoutingAndMethods(t *testing.T) {
	s := start(t, Options{})
	tests := []struct {
		method, path string
		wantStatus   int
	}{
		{http.MethodGet, "/batch/", http.StatusMethodNotAllowed},
		{http.MethodOptions, "/batch/", http.StatusNoContent},
		{http.MethodPost, "/nope", http.StatusNotFound},
		{http.MethodPost, "/engage/", http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r, err := do(t, nil, nil, tc.method, s.URL()+tc.path, []byte(`{"api_key":"phc_a","event":"e","distinct_id":"u"}`), nil)
			require.NoError(t, err)
			require.Equal(t, tc.wantStatus, r.status)
		})
	}
}
