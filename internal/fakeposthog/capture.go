package fakeposthog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Event is one event of an accepted capture request, as PostHog read it.
type Event struct {
	// UUID is the uuid as sent; "" when the sender assigned none (PostHog
	// would assign a fresh one, which defeats dedupe on retry).
	UUID string
	// Event is the event name.
	Event string
	// DistinctID is resolved like capture does (top level, $distinct_id or
	// properties.distinct_id; non-strings stringified; cut to 200 chars).
	DistinctID string
	// Timestamp is passed through unparsed, as capture does.
	Timestamp string
	// Properties is the decoded properties object (never nil). Shared with
	// the server's record: read it, do not modify it.
	Properties map[string]any
	// Raw is the event's JSON exactly as it arrived (after decompression).
	Raw json.RawMessage
	// Token is the project token the request was accepted under.
	Token string
	// HistoricalMigration is the batch's historical_migration flag.
	HistoricalMigration bool
}

// BatchInfo summarises one accepted capture request for Options.OnBatch.
type BatchInfo struct {
	Path      string
	Token     string
	Events    int
	Gzipped   bool
	Status    int
	UserAgent string
}

// RequestLog describes one capture request, accepted or not. Entries appear
// when the request body has been read, before it is answered.
type RequestLog struct {
	Time   time.Time
	Method string
	Path   string
	// Query is the raw query string (e.g. "compression=gzip").
	Query  string
	Header http.Header
	// BodySize is the number of body bytes read off the wire (one past the
	// limit when the body was too large).
	BodySize int
	Gzipped  bool
	// Token is the project token, when the request got far enough to have one.
	Token string
	// Events is the number of events in the body (0 if it did not parse) and
	// UUIDs their non-empty uuids, also for refused requests.
	Events              int
	UUIDs               []string
	HistoricalMigration bool
	// SentAt reports that the request carried sent_at (body field, ?sent_at=
	// or ?_=), which makes PostHog re-skew event timestamps. SentAtValue is
	// what it said.
	SentAt      bool
	SentAtValue string
	// Status is the HTTP status the server decided on; 0 while the request is
	// in flight and for requests that were never answered.
	Status int
	// Error is why the request was refused, or what PostHog would have
	// refused it for when a scripted status overrode that.
	Error string
	// Scripted is true when a non-zero Response (script or default) applied.
	Scripted bool
	// Accepted is true when the request's events were recorded.
	Accepted bool
	// Hung, Dropped and Abandoned say how an exchange ended without an
	// answer: scripted Hang, scripted Drop/DropAfterAccept/Malformed, or a
	// scripted Delay or a Hold cut short by the client hanging up or by Close.
	Hung      bool
	Dropped   bool
	Abandoned bool
}

// captureState is the capture half of the server's state, guarded by Server.mu.
type captureState struct {
	events         []Event
	uuids          map[string]int
	requests       []RequestLog
	script         []Response
	def            Response
	rejects        []func(Event) bool
	maxBatchEvents int
	// inFlight counts requests between body read and answer; peak is its
	// highest value (PeakCaptureInFlight).
	inFlight, peak int
}

func newCaptureState() captureState {
	return captureState{uuids: map[string]int{}}
}

func (s *Server) handleCapture(w http.ResponseWriter, r *http.Request, limit int64) {
	switch r.Method {
	case http.MethodPost:
	case http.MethodOptions:
		w.Header().Set("Allow", "POST, OPTIONS")
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		// PostHog also takes GET ?data=; no server SDK or hogrelay sends it,
		// so the fake refuses it rather than half-implementing it.
		w.Header().Set("Allow", "POST, OPTIONS")
		http.Error(w, "fakeposthog: capture routes take POST only", http.StatusMethodNotAllowed)
		return
	}

	arrived := time.Now()
	raw, readErr := readLimited(r.Body, limit)
	tooLarge := errors.Is(readErr, errTooLarge)
	if readErr != nil && !tooLarge {
		// The client hung up mid-body; there is nobody to answer.
		s.logf("fakeposthog: %s %s: reading body: %v", r.Method, r.URL.Path, readErr)
		abortConn(w)
		return
	}
	dec := decodeCapture(r, raw, limit, tooLarge)

	entry := RequestLog{
		Time:                arrived,
		Method:              r.Method,
		Path:                r.URL.Path,
		Query:               r.URL.RawQuery,
		Header:              r.Header.Clone(),
		BodySize:            len(raw),
		Gzipped:             dec.gzipped,
		Token:               dec.token,
		Events:              dec.count,
		UUIDs:               dec.uuids,
		HistoricalMigration: dec.historical,
		SentAt:              dec.hasSentAt,
		SentAtValue:         dec.sentAt,
		Error:               dec.msg,
	}
	s.mu.Lock()
	idx := len(s.capture.requests)
	s.capture.requests = append(s.capture.requests, entry)
	s.capture.inFlight++
	s.capture.peak = max(s.capture.peak, s.capture.inFlight)
	s.broadcastLocked()
	s.mu.Unlock()
	// leave runs before the answer (or the abort) goes out: a client that has
	// its answer may send its next request at once, and must not find this
	// one still counted.
	leave := sync.OnceFunc(func() {
		s.mu.Lock()
		s.capture.inFlight--
		s.mu.Unlock()
	})
	defer leave()

	req := &Request{
		Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: entry.Header,
		Body: dec.body, Events: dec.events, Token: dec.token, N: idx + 1,
	}
	var hookedResp *Response
	if h, ok := s.hooked(req); ok {
		hookedResp = &h
	}
	s.mu.Lock()
	resp, rules := s.capture.nextLocked(hookedResp)
	scripted := resp != (Response{})
	s.capture.requests[idx].Scripted = scripted
	s.mu.Unlock()

	if !s.waitHolds(r.Context(), req) {
		s.updateRequest(idx, func(l *RequestLog) { l.Abandoned = true })
		s.logf("fakeposthog: %s %s: abandoned while held", r.Method, r.URL.Path)
		leave()
		abortConn(w)
		return
	}
	if resp.Delay > 0 && !s.pause(r.Context(), resp.Delay) {
		s.updateRequest(idx, func(l *RequestLog) { l.Abandoned = true })
		s.logf("fakeposthog: %s %s: abandoned during %v delay", r.Method, r.URL.Path, resp.Delay)
		leave()
		abortConn(w)
		return
	}
	if resp.Hang {
		s.updateRequest(idx, func(l *RequestLog) { l.Hung = true })
		s.logf("fakeposthog: %s %s: hanging (scripted)", r.Method, r.URL.Path)
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		leave()
		abortConn(w)
		return
	}
	if resp.Drop {
		s.updateRequest(idx, func(l *RequestLog) { l.Dropped = true })
		s.logf("fakeposthog: %s %s: dropping connection (scripted)", r.Method, r.URL.Path)
		leave()
		abortConn(w)
		return
	}

	if resp.Malformed {
		s.updateRequest(idx, func(l *RequestLog) { l.Dropped = true })
		s.logf("fakeposthog: %s %s: answering garbage (scripted)", r.Method, r.URL.Path)
		leave()
		writeGarbage(w)
		return
	}

	status, body, refusal := answer(resp, dec, rules)
	accepted := status >= 200 && status < 300 && dec.status == 0
	s.mu.Lock()
	l := &s.capture.requests[idx]
	l.Status, l.Accepted, l.Dropped = status, accepted, resp.DropAfterAccept
	if refusal != "" {
		l.Error = refusal
	}
	if accepted {
		s.capture.events = append(s.capture.events, dec.events...)
		for _, ev := range dec.events {
			if ev.UUID != "" {
				s.capture.uuids[ev.UUID]++
			}
		}
	}
	s.broadcastLocked()
	s.mu.Unlock()

	dropped := ""
	if resp.DropAfterAccept {
		dropped = ", answer dropped (scripted)"
	}
	s.logf("fakeposthog: %s %s -> %d (%d events, gzip=%t%s)%s",
		r.Method, r.URL.Path, status, dec.count, dec.gzipped, dropped, suffix(refusal, dec.msg))

	info := BatchInfo{
		Path:      r.URL.Path,
		Token:     dec.token,
		Events:    len(dec.events),
		Gzipped:   dec.gzipped,
		Status:    status,
		UserAgent: r.UserAgent(),
	}
	// OnBatch runs before the answer is written, so a client holding its
	// answer knows the callback has run.
	if accepted && s.onBatch != nil {
		s.onBatch(info)
	}
	if resp.DropAfterAccept {
		leave()
		abortConn(w)
		return
	}
	setHeaders(w, resp)
	leave()
	writeAnswer(w, status, body)
}

// answer decides status and body. A scripted status wins; otherwise PostHog's
// own verdict, then the test-configured limits. refusal explains a refusal
// that came from those limits, for the request log.
func answer(resp Response, dec *decoded, rules rules) (status int, body, refusal string) {
	if resp.Status != 0 {
		body = resp.Body
		if body == "" {
			if resp.Status >= 200 && resp.Status < 300 {
				body = `{"status":1}`
			} else {
				body = http.StatusText(resp.Status)
			}
		}
		return resp.Status, body, ""
	}
	if dec.status != 0 {
		return dec.status, dec.msg, ""
	}
	if rules.maxBatchEvents > 0 && len(dec.events) > rules.maxBatchEvents {
		return http.StatusRequestEntityTooLarge, msgEventTooBig,
			fmt.Sprintf("%d events exceed SetMaxBatchEvents(%d)", len(dec.events), rules.maxBatchEvents)
	}
	for _, ev := range dec.events {
		for _, pred := range rules.rejects {
			if pred(ev) {
				return http.StatusBadRequest, msgInvalidEvent,
					fmt.Sprintf("poison event %q uuid=%q rejected by RejectEvent", ev.Event, ev.UUID)
			}
		}
	}
	if resp.Body != "" {
		body = resp.Body
	} else {
		body = `{"status":1}`
	}
	if dec.beacon {
		return http.StatusNoContent, "", ""
	}
	return http.StatusOK, body, ""
}

func writeAnswer(w http.ResponseWriter, status int, body string) {
	h := w.Header()
	if body != "" {
		if strings.HasPrefix(body, "{") || strings.HasPrefix(body, "[") {
			h.Set("Content-Type", "application/json")
		} else {
			h.Set("Content-Type", "text/plain; charset=utf-8")
		}
	}
	w.WriteHeader(status)
	if body != "" && status != http.StatusNoContent && status != http.StatusNotModified {
		_, _ = w.Write([]byte(body))
	}
}

func suffix(msgs ...string) string {
	for _, m := range msgs {
		if m != "" {
			return ": " + m
		}
	}
	return ""
}

func (s *Server) updateRequest(idx int, f func(*RequestLog)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.capture.requests[idx])
	s.broadcastLocked()
}

// Events returns every event of every accepted capture request, in arrival
// order, repeats included: a batch accepted twice appears twice.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.capture.events...)
}

// UniqueUUIDs maps each accepted uuid to the number of times it was accepted.
// Events without a uuid are not counted.
func (s *Server) UniqueUUIDs() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.capture.uuids))
	for k, v := range s.capture.uuids {
		out[k] = v
	}
	return out
}

// Requests returns every capture request received so far, in arrival order.
func (s *Server) Requests() []RequestLog {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]RequestLog(nil), s.capture.requests...)
}

// WaitForUUIDs blocks until every uuid in uuids has been accepted at least
// once, ctx ends, or the server closes. It wakes on each change rather than
// polling.
func (s *Server) WaitForUUIDs(ctx context.Context, uuids []string) error {
	return s.waitFor(ctx, func() (bool, string) {
		missing, first := 0, ""
		for _, u := range uuids {
			if s.capture.uuids[u] == 0 {
				if missing == 0 {
					first = u
				}
				missing++
			}
		}
		if missing == 0 {
			return true, ""
		}
		return false, fmt.Sprintf("%d of %d uuids not accepted (first: %q)", missing, len(uuids), first)
	})
}

// WaitForRequests blocks until at least n capture requests have arrived (been
// read, whether or not answered yet), ctx ends, or the server closes. Tests
// use it to act while a scripted Hang or Delay is in progress.
func (s *Server) WaitForRequests(ctx context.Context, n int) error {
	return s.waitFor(ctx, func() (bool, string) {
		got := len(s.capture.requests)
		return got >= n, fmt.Sprintf("%d of %d capture requests arrived", got, n)
	})
}

// waitFor evaluates done under s.mu after every change. done returns whether
// the condition holds and, if not, a description for the error.
func (s *Server) waitFor(ctx context.Context, done func() (bool, string)) error {
	for {
		s.mu.Lock()
		ok, why := done()
		changed, closed := s.changed, s.closed
		s.mu.Unlock()
		if ok {
			return nil
		}
		if closed {
			return fmt.Errorf("fakeposthog: %s: %w", why, ErrClosed)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("fakeposthog: %s: %w", why, ctx.Err())
		}
	}
}
