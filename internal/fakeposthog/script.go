package fakeposthog

import (
	"context"
	"time"
)

// Response scripts the answer to one capture request. The zero value means
// "answer like PostHog would": validate the body, apply RejectEvent and
// SetMaxBatchEvents, and reply 200 {"status":1}.
type Response struct {
	// Status, when non-zero, replaces PostHog's own answer whatever the body
	// held. A 2xx status still records the request's events as accepted if
	// they decode, so a scripted 200 can accept a batch PostHog would refuse.
	Status int
	// RetryAfter, when set, is sent verbatim as the Retry-After header
	// (seconds or an HTTP date).
	RetryAfter string
	// Location, when set, is sent verbatim as the Location header: with a
	// 3xx Status it models a proxy or load balancer redirecting capture
	// (e.g. http:// to https://).
	Location string
	// ETag, when set, is sent verbatim as the ETag header (with SetAnswer on
	// the definitions routes, e.g. `"v1"` beside a 200 or a 304).
	ETag string
	// Body replaces the body of a scripted answer, or of PostHog's own 200
	// when Status is 0 (e.g. capture-rs's {"status":"Ok"}). "" means
	// {"status":1} for 2xx and the status text otherwise.
	Body string
	// Hang reads the request and never answers, until Close or until the
	// client hangs up. Models a stalled load balancer.
	Hang bool
	// Drop reads the request, then closes the TCP connection without a
	// response. Nothing is accepted. Models a crash before processing.
	Drop bool
	// Malformed reads the request, writes bytes that are not an HTTP
	// response and closes the connection. Nothing is accepted. Models a
	// broken proxy; unlike Drop, a client sees a malformed answer, which
	// net/http never retries on its own.
	Malformed bool
	// DropAfterAccept processes the request normally (recording its events if
	// the answer would be 2xx), then closes the connection instead of
	// answering. Models a response lost after PostHog ingested the batch,
	// which is what forces a sender to retry and PostHog to dedupe by uuid.
	DropAfterAccept bool
	// Delay waits this long before processing. If the client gives up or the
	// server closes first, nothing is accepted.
	Delay time.Duration
}

// rules are the PostHog-like checks in force when a request arrived.
type rules struct {
	rejects        []func(Event) bool
	maxBatchEvents int
}

// nextLocked pops the next scripted response (or the default) together with
// the rules in force, so a request sees one consistent configuration.
// A request the answer hook answered passes hooked, which keeps the queue.
func (c *captureState) nextLocked(hooked *Response) (Response, rules) {
	resp := c.def
	switch {
	case hooked != nil:
		resp = *hooked
	case len(c.script) > 0:
		resp = c.script[0]
		c.script = c.script[1:]
	}
	return resp, rules{rejects: c.rejects, maxBatchEvents: c.maxBatchEvents}
}

// Script queues responses for the next capture requests, in order; when the
// queue runs out the default applies again. Calls append to the queue.
func (s *Server) Script(rs ...Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.capture.script = append(s.capture.script, rs...)
}

// SetDefault sets the response used when no scripted one is queued. The
// initial default is Response{}: behave like PostHog and answer 200 {"status":1}.
func (s *Server) SetDefault(r Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.capture.def = r
}

// RejectEvent adds a "poison" predicate: any request containing an event for
// which pred returns true is answered 400, as PostHog refuses a batch holding
// an invalid event, and none of its events are accepted. Predicates
// accumulate; RejectEvent(nil) removes them all. Scripted statuses win over
// this check.
func (s *Server) RejectEvent(pred func(Event) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pred == nil {
		s.capture.rejects = nil
		return
	}
	// Copy on write: a request in flight keeps the slice it started with.
	s.capture.rejects = append(append([]func(Event) bool(nil), s.capture.rejects...), pred)
}

// SetMaxBatchEvents makes requests holding more than n events fail with 413,
// the answer that tells a sender to split its batch. 0 removes the limit
// (the 20 MiB body limit always applies).
func (s *Server) SetMaxBatchEvents(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.capture.maxBatchEvents = max(n, 0)
}

// pause waits for d, returning false if the client went away or the server
// is closing first.
func (s *Server) pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.done:
		return false
	}
}
