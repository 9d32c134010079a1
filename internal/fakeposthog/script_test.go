package fakeposthog

import (
	"context"
	"errors"
	"io"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestScriptedStatuses(t *testing.T) {
	tests := []struct {
		name           string
		resp           Response
		body           func(t *testing.T) []byte
		wantStatus     int
		wantRetryAfter string
		wantBody       string
		wantAccepted   bool
	}{
		{
			name:           "503 with Retry-After seconds",
			resp:           Response{Status: 503, RetryAfter: "7"},
			wantStatus:     503,
			wantRetryAfter: "7",
			wantBody:       "Service Unavailable",
		},
		{
			name:           "429 with Retry-After date",
			resp:           Response{Status: 429, RetryAfter: "Wed, 21 Oct 2026 07:28:00 GMT"},
			wantStatus:     429,
			wantRetryAfter: "Wed, 21 Oct 2026 07:28:00 GMT",
			wantBody:       "Too Many Requests",
		},
		{
			name:       "500 with a custom body",
			resp:       Response{Status: 500, Body: "kafka unavailable"},
			wantStatus: 500,
			wantBody:   "kafka unavailable",
		},
		{
			name:       "400 on a valid batch",
			resp:       Response{Status: 400},
			wantStatus: 400,
			wantBody:   "Bad Request",
		},
		{
			name:         "scripted 200 accepts a batch PostHog would refuse",
			resp:         Response{Status: 200},
			body:         func(t *testing.T) []byte { return batch(t, ev(uuidA, "poison")) },
			wantStatus:   200,
			wantBody:     `{"status":1}`,
			wantAccepted: true,
		},
		{
			name:       "scripted 200 on garbage accepts nothing",
			resp:       Response{Status: 200},
			body:       func(*testing.T) []byte { return []byte("garbage") },
			wantStatus: 200,
			wantBody:   `{"status":1}`,
		},
		{
			name:         "status 0 with a body keeps PostHog's verdict",
			resp:         Response{Body: `{"status":"Ok"}`},
			wantStatus:   200,
			wantBody:     `{"status":"Ok"}`,
			wantAccepted: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, Options{})
			s.RejectEvent(func(e Event) bool { return e.Event == "poison" })
			s.Script(tc.resp)
			body := batch(t, ev(uuidA, "e"))
			if tc.body != nil {
				body = tc.body(t)
			}
			r := post(t, s, "/batch/", body, nil)
			require.Equal(t, tc.wantStatus, r.status)
			require.Equal(t, tc.wantRetryAfter, r.header.Get("Retry-After"))
			require.Equal(t, tc.wantBody, r.body)

			reqs := s.Requests()
			require.Len(t, reqs, 1)
			require.True(t, reqs[0].Scripted)
			require.Equal(t, tc.wantAccepted, reqs[0].Accepted)
			if tc.wantAccepted {
				require.Len(t, s.Events(), 1)
			} else {
				require.Empty(t, s.Events())
			}
		})
	}
}

func TestScriptRunsInOrderThenDefault(t *testing.T) {
	s := start(t, Options{})
	s.Script(Response{Status: 500}, Response{Status: 502})
	s.Script(Response{Status: 504})

	var got []int
	for range 4 {
		got = append(got, post(t, s, "/batch/", batch(t, ev(uuidA, "e")), nil).status)
	}
	require.Equal(t, []int{500, 502, 504, 200}, got)

	s.SetDefault(Response{Status: 503, RetryAfter: "1"})
	r := post(t, s, "/batch/", batch(t, ev(uuidA, "e")), nil)
	require.Equal(t, 503, r.status)
	require.Equal(t, "1", r.header.Get("Retry-After"))

	s.SetDefault(Response{})
	require.Equal(t, 200, post(t, s, "/batch/", batch(t, ev(uuidA, "e")), nil).status)
	require.Equal(t, map[string]int{uuidA: 2}, s.UniqueUUIDs())
}

func TestHangUntilClientTimesOut(t *testing.T) {
	s := start(t, Options{})
	s.Script(Response{Hang: true})

	// The timeout only bounds how long the test waits; nothing asserts on it.
	client := &http.Client{Timeout: 50 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	_, err := do(t, nil, client, http.MethodPost, s.URL()+"/batch/", batch(t, ev(uuidA, "e")), nil)
	require.Error(t, err)
	var timeout interface{ Timeout() bool }
	require.ErrorAs(t, err, &timeout)
	require.True(t, timeout.Timeout())

	// The hung exchange accepted nothing, and the server still answers.
	require.Equal(t, http.StatusOK, post(t, s, "/batch/", batch(t, ev(uuidB, "e")), nil).status)
	require.Equal(t, map[string]int{uuidB: 1}, s.UniqueUUIDs())
	reqs := s.Requests()
	require.Len(t, reqs, 2)
	require.True(t, reqs[0].Hung)
	require.Zero(t, reqs[0].Status)
	require.False(t, reqs[0].Accepted)
}

func TestHangIsReleasedByClose(t *testing.T) {
	s, err := New(Options{Logf: t.Logf})
	require.NoError(t, err)
	s.Script(Response{Hang: true})

	done := make(chan error, 1)
	go func() {
		_, err := do(t, nil, nil, http.MethodPost, s.URL()+"/batch/", batch(t, ev(uuidA, "e")), nil)
		done <- err
	}()
	require.NoError(t, s.WaitForRequests(context.Background(), 1))

	require.NoError(t, s.Close())
	require.Error(t, <-done, "a hung request gets no answer, not an empty 200")
	require.NoError(t, s.Close(), "Close is idempotent")

	_, err = do(t, nil, nil, http.MethodPost, s.URL()+"/batch/", batch(t, ev(uuidA, "e")), nil)
	require.Error(t, err, "nothing listens after Close")
}

func TestDropClosesTheConnection(t *testing.T) {
	s := start(t, Options{})
	s.Script(Response{Drop: true})

	_, err := do(t, nil, nil, http.MethodPost, s.URL()+"/batch/", batch(t, ev(uuidA, "e")), nil)
	require.Error(t, err)
	require.True(t, errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET),
		"want EOF or connection reset, got %v", err)

	require.Empty(t, s.Events())
	reqs := s.Requests()
	require.Len(t, reqs, 1, "the client must not have retried behind our back")
	require.True(t, reqs[0].Dropped)
	require.False(t, reqs[0].Accepted)
	require.Equal(t, []string{uuidA}, reqs[0].UUIDs)
}

func TestDropAfterAcceptLosesOnlyTheAnswer(t *testing.T) {
	var rec batchRecorder
	s := start(t, Options{OnBatch: rec.record})
	s.Script(Response{DropAfterAccept: true})

	_, err := do(t, nil, nil, http.MethodPost, s.URL()+"/batch/", batch(t, ev(uuidA, "e")), nil)
	require.Error(t, err)

	// A sender that retries produces the duplicate PostHog dedupes by uuid.
	require.Equal(t, http.StatusOK, post(t, s, "/batch/", batch(t, ev(uuidA, "e")), nil).status)
	require.Equal(t, map[string]int{uuidA: 2}, s.UniqueUUIDs())
	require.Len(t, rec.got(), 2)
	reqs := s.Requests()
	require.True(t, reqs[0].Accepted)
	require.True(t, reqs[0].Dropped)
}

func TestDelay(t *testing.T) {
	t.Run("completed delay answers normally", func(t *testing.T) {
		s := start(t, Options{})
		s.Script(Response{Delay: time.Millisecond})
		require.Equal(t, http.StatusOK, post(t, s, "/batch/", batch(t, ev(uuidA, "e")), nil).status)
		require.Equal(t, map[string]int{uuidA: 1}, s.UniqueUUIDs())
	})

	t.Run("client hanging up during the delay accepts nothing", func(t *testing.T) {
		s, err := New(Options{Logf: t.Logf})
		require.NoError(t, err)
		s.Script(Response{Delay: time.Hour})

		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := do(t, ctx, nil, http.MethodPost, s.URL()+"/batch/", batch(t, ev(uuidA, "e")), nil)
			done <- err
		}()
		require.NoError(t, s.WaitForRequests(context.Background(), 1))
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)

		// Close waits for the handler, so its record is final afterwards.
		require.NoError(t, s.Close())
		reqs := s.Requests()
		require.Len(t, reqs, 1)
		require.True(t, reqs[0].Abandoned)
		require.False(t, reqs[0].Accepted)
		require.Empty(t, s.Events())
	})
}

func TestScriptedRedirectSendsLocationAndAcceptsNothing(t *testing.T) {
	s := start(t, Options{})
	s.Script(Response{Status: http.StatusMovedPermanently, Location: "https://elsewhere.example/batch/"})
	client := &http.Client{
		Transport:     &http.Transport{DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	r, err := do(t, nil, client, http.MethodPost, s.URL()+"/batch/", batch(t, ev(uuidA, "e")), nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusMovedPermanently, r.status)
	require.Equal(t, "https://elsewhere.example/batch/", r.header.Get("Location"))
	require.Empty(t, s.Events())
}
