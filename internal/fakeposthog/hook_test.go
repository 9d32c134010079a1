package fakeposthog

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestAnswerHookChoosesFromTheRequest(t *testing.T) {
	s := start(t, Options{})
	var mu sync.Mutex
	var seen []*Request
	s.SetAnswer(func(r *Request) (Response, bool) {
		mu.Lock()
		seen = append(seen, r)
		mu.Unlock()
		if len(r.Events) > 1 {
			return Response{Status: http.StatusRequestEntityTooLarge}, true
		}
		for _, e := range r.Events {
			if e.Event == "poison" {
				return Response{Status: http.StatusBadRequest, Body: "poison"}, true
			}
		}
		return Response{}, false
	})
	s.Script(Response{Status: http.StatusServiceUnavailable})

	require.Equal(t, 413, post(t, s, "/batch/", gzipped(t, batch(t, ev(uuidA, "a"), ev(uuidB, "b"))), nil).status)
	r := post(t, s, "/batch/", batch(t, ev(uuidC, "poison")), nil)
	require.Equal(t, 400, r.status)
	require.Equal(t, "poison", r.body)
	// The hook answered twice without using up the script; it declines
	// now, so the scripted 503 applies, then PostHog's own 200.
	require.Equal(t, 503, post(t, s, "/batch/", batch(t, ev(uuidA, "a")), nil).status)
	require.Equal(t, 200, post(t, s, "/batch/", batch(t, ev(uuidA, "a")), nil).status)
	require.Len(t, s.Events(), 1, "only the last request was accepted")

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, seen, 4)
	for i, r := range seen {
		require.Equal(t, i+1, r.N)
		require.Equal(t, "/batch/", r.Path)
		require.Equal(t, testToken, r.Token)
	}
	require.Len(t, seen[0].Events, 2)
	require.Equal(t, uuidA, seen[0].Events[0].UUID)
	require.JSONEq(t, string(batch(t, ev(uuidA, "a"), ev(uuidB, "b"))), string(seen[0].Body), "Body is gunzipped")
}

func TestAnswerHookTwoHundredAcceptsAndDropStillDrops(t *testing.T) {
	s := start(t, Options{})
	s.SetAnswer(func(r *Request) (Response, bool) {
		if r.N == 1 {
			return Response{Drop: true}, true
		}
		return Response{Status: 200}, true
	})
	_, err := do(t, nil, nil, http.MethodPost, s.URL()+"/batch/", batch(t, ev(uuidA, "a")), nil)
	require.Error(t, err, "dropped without an answer")
	require.Equal(t, 200, post(t, s, "/batch/", batch(t, ev(uuidA, "a")), nil).status)
	require.Equal(t, map[string]int{uuidA: 1}, s.UniqueUUIDs())
	reqs := s.Requests()
	require.True(t, reqs[0].Dropped)
	require.True(t, reqs[1].Scripted)

	s.SetAnswer(nil)
	s.SetDefault(Response{Status: 500})
	require.Equal(t, 500, post(t, s, "/batch/", batch(t, ev(uuidB, "b")), nil).status, "nil removes the hook")
}

func TestAnswerHookOnDefinitionsAndFlags(t *testing.T) {
	s := start(t, Options{})
	s.SetAnswer(func(r *Request) (Response, bool) {
		switch {
		case r.Path == "/flags/definitions" && r.Header.Get("If-None-Match") == `"v1"`:
			return Response{Status: http.StatusNotModified, ETag: `"v1"`}, true
		case r.Path == "/flags/definitions":
			return Response{Status: 200, Body: `{"flags":[]}`, ETag: `"v1"`}, true
		case r.Path == "/api/feature_flag/local_evaluation":
			return Response{Status: 429, RetryAfter: "30", Body: "slow down"}, true
		case r.Path == "/flags/" && r.N == 1:
			return Response{Status: 502, Location: "https://elsewhere.example"}, true
		}
		return Response{}, false
	})

	// No token, no key: PostHog would say 400; the hook decides instead.
	r, err := do(t, nil, nil, http.MethodGet, s.URL()+"/flags/definitions", nil, nil)
	require.NoError(t, err)
	require.Equal(t, 200, r.status)
	require.Equal(t, `{"flags":[]}`, r.body)
	require.Equal(t, `"v1"`, r.header.Get("ETag"))
	r, err = do(t, nil, nil, http.MethodGet, s.URL()+"/flags/definitions", nil, map[string]string{"If-None-Match": `"v1"`})
	require.NoError(t, err)
	require.Equal(t, 304, r.status)
	r, err = do(t, nil, nil, http.MethodGet, s.URL()+"/api/feature_flag/local_evaluation", nil, nil)
	require.NoError(t, err)
	require.Equal(t, 429, r.status)
	require.Equal(t, "30", r.header.Get("Retry-After"))
	require.Equal(t, "slow down", r.body)
	log := s.DefinitionLog()
	require.Len(t, log, 3, "hooked definitions requests are logged")
	require.Equal(t, []int{200, 304, 429}, []int{log[0].Status, log[1].Status, log[2].Status})

	body := []byte(`{"token":"phc_x","distinct_id":"u"}`)
	r = post(t, s, "/flags/", body, nil)
	require.Equal(t, 502, r.status)
	require.Equal(t, "https://elsewhere.example", r.header.Get("Location"))
	r = post(t, s, "/flags/", body, nil)
	require.Equal(t, 200, r.status, "declined: the server evaluates as usual")
	require.Contains(t, r.body, `"flags"`)
	require.Len(t, s.FlagsRequests(), 2)
}

func TestAnswerHookHangsFlagsUntilTheClientGivesUp(t *testing.T) {
	s := start(t, Options{})
	s.SetAnswer(func(*Request) (Response, bool) { return Response{Hang: true}, true })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := do(t, ctx, nil, http.MethodPost, s.URL()+"/flags/", []byte(`{"token":"phc_x","distinct_id":"u"}`), nil)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestHoldKeepsMatchingRequestsUntilReleased(t *testing.T) {
	s := start(t, Options{})
	release := s.Hold(func(r *Request) bool {
		return len(r.Events) > 0 && r.Events[0].UUID == uuidA
	})
	held := make(chan reply, 1)
	body := batch(t, ev(uuidA, "a"))
	go func() {
		r, _ := do(t, nil, nil, http.MethodPost, s.URL()+"/batch/", body, nil) // a transport error shows as status 0
		held <- r
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, s.WaitForHeld(ctx, 1))

	// Other requests pass while one is held.
	require.Equal(t, 200, post(t, s, "/batch/", batch(t, ev(uuidB, "b")), nil).status)
	require.Equal(t, map[string]int{uuidB: 1}, s.UniqueUUIDs(), "the held request is not accepted yet")
	require.Len(t, s.Requests(), 2, "the held request is logged")
	require.Equal(t, 1, s.Held())
	select {
	case <-held:
		t.Fatal("answered while held")
	default:
	}

	release()
	release() // idempotent
	require.Equal(t, 200, (<-held).status)
	require.Equal(t, map[string]int{uuidA: 1, uuidB: 1}, s.UniqueUUIDs())
	require.Zero(t, s.Held())
	require.Equal(t, 200, post(t, s, "/batch/", batch(t, ev(uuidA, "a")), nil).status, "released: later requests pass")
	require.Equal(t, 2, s.PeakCaptureInFlight(), "the held request and the one that passed it")
}

func TestHeldRequestAbandonedByItsClientAcceptsNothing(t *testing.T) {
	s := start(t, Options{})
	release := s.Hold(nil)
	defer release()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	body := batch(t, ev(uuidA, "a"))
	go func() {
		_, err := do(t, ctx, nil, http.MethodPost, s.URL()+"/batch/", body, nil)
		errc <- err
	}()
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	require.NoError(t, s.WaitForHeld(wctx, 1))
	cancel()
	require.ErrorIs(t, <-errc, context.Canceled)
	require.NoError(t, s.waitFor(wctx, func() (bool, string) {
		return s.held == 0 && s.capture.requests[0].Abandoned, "held request not abandoned"
	}))
	require.Empty(t, s.Events())
}

func TestHoldOnDefinitionsAndCloseEndsIt(t *testing.T) {
	s, err := New(Options{Logf: t.Logf})
	require.NoError(t, err)
	s.Hold(func(r *Request) bool { return r.Path == "/flags/definitions" })
	errc := make(chan error, 1)
	go func() {
		_, err := do(t, nil, nil, http.MethodGet, s.URL()+"/flags/definitions?token=phc_x", nil, nil)
		errc <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, s.WaitForHeld(ctx, 1))
	require.NoError(t, s.Close(), "Close does not wait for a release")
	require.Error(t, <-errc, "no answer")
}

func TestMalformedAnswerIsATransportError(t *testing.T) {
	s := start(t, Options{})
	s.SetAnswer(func(*Request) (Response, bool) { return Response{Malformed: true}, true })
	_, err := do(t, nil, nil, http.MethodGet, s.URL()+"/flags/definitions?token=phc_x", nil, nil)
	require.ErrorContains(t, err, "malformed HTTP")
	_, err = do(t, nil, nil, http.MethodPost, s.URL()+"/batch/", batch(t, ev(uuidA, "a")), nil)
	require.ErrorContains(t, err, "malformed HTTP")
	require.Empty(t, s.Events())
	require.True(t, s.Requests()[0].Dropped)
}
