package fakeposthog

import (
	"context"
	"net/http"
	"sync"
)

// Request is what an answer hook (SetAnswer) or a hold (Hold) sees of one
// request on a capture, definitions or /flags route, once its body is read.
type Request struct {
	Method string
	// Path is the path as sent, e.g. "/batch/" or "/flags/definitions".
	Path  string
	Query string
	// Header is the request's headers; read them, do not modify them.
	Header http.Header
	// Body is the body as it arrived, after gunzip when it was compressed;
	// nil on the definitions routes, which take none.
	Body []byte
	// Events are a capture request's events as PostHog decoded them (nil on
	// other routes, and when the body would be refused before its events).
	Events []Event
	// Token is a capture request's project token ("" elsewhere).
	Token string
	// N numbers the requests of one kind — capture, definitions, flags —
	// from 1, in arrival order.
	N int
}

// Answer is a per-request answer hook: it returns the answer to give and
// true, or false to leave the request to the script, the default and
// PostHog's own logic. See SetAnswer.
type Answer func(*Request) (Response, bool)

// SetAnswer installs h as the answer hook for every capture, definitions and
// /flags request, or removes it when h is nil. It lets a test choose an
// answer from what a request holds (413 for batches over some size, 400 for
// a batch holding a given event, a 304 for a matching If-None-Match), which
// a queued Script cannot. A hooked answer takes precedence over Script and
// SetDefault (a request it answers does not use up a scripted response), and
// is applied like one: on capture routes a 2xx records the events; on the
// definitions and /flags routes Status and Body replace the answer the
// server would give, and a zero Status keeps that answer (after any Delay).
// h runs on the request's goroutine, outside the server's lock; it may
// block, though Hold says what is meant more plainly.
func (s *Server) SetAnswer(h Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answer = h
}

// hold is one Hold call: requests it matches wait until released is closed.
type hold struct {
	match    func(*Request) bool
	released chan struct{}
}

// Hold makes every request for which match returns true (nil matches all)
// wait once it has been read and logged, before it is answered, until the
// returned release is called. A held request whose client hangs up, or that
// is still held at Close, ends without an answer and accepts nothing, like
// an abandoned Delay. Requests arriving after release pass; release may be
// called more than once. Held reports how many requests are waiting.
func (s *Server) Hold(match func(*Request) bool) (release func()) {
	h := &hold{match: match, released: make(chan struct{})}
	s.mu.Lock()
	s.holds = append(s.holds, h)
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			for i, x := range s.holds {
				if x == h {
					s.holds = append(s.holds[:i:i], s.holds[i+1:]...)
					break
				}
			}
			close(h.released)
		})
	}
}

// Held is the number of requests waiting on a Hold right now.
func (s *Server) Held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}

// WaitForHeld blocks until at least n requests wait on a Hold, ctx ends, or
// the server closes.
func (s *Server) WaitForHeld(ctx context.Context, n int) error {
	return s.waitFor(ctx, func() (bool, string) {
		return s.held >= n, "fewer held requests than awaited"
	})
}

// hooked asks the answer hook about req. It must be called without s.mu.
func (s *Server) hooked(req *Request) (Response, bool) {
	s.mu.Lock()
	h := s.answer
	s.mu.Unlock()
	if h == nil {
		return Response{}, false
	}
	return h(req)
}

// intercept runs what comes before a definitions or /flags answer: the
// answer hook, any Hold that matches, and a hooked answer's delay, hang,
// drop or garbage. ok is false when the request has been dealt with (or
// abandoned) and the handler must not answer.
func (s *Server) intercept(w http.ResponseWriter, r *http.Request, req *Request) (resp Response, hooked, ok bool) {
	resp, hooked = s.hooked(req)
	if !s.waitHolds(r.Context(), req) {
		s.logf("fakeposthog: %s %s: abandoned while held", r.Method, r.URL.Path)
		abortConn(w)
		return resp, hooked, false
	}
	if hooked && !s.scripted(w, r, resp) {
		return resp, hooked, false
	}
	return resp, hooked, true
}

// waitHolds blocks while a Hold matches req, and returns false when the
// client hung up or the server closed first. It must be called without s.mu.
func (s *Server) waitHolds(ctx context.Context, req *Request) bool {
	s.mu.Lock()
	var waits []chan struct{}
	for _, h := range s.holds {
		if h.match == nil || h.match(req) {
			waits = append(waits, h.released)
		}
	}
	if len(waits) == 0 {
		s.mu.Unlock()
		return true
	}
	s.held++
	s.broadcastLocked()
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.held--
		s.broadcastLocked()
		s.mu.Unlock()
	}()
	for _, released := range waits {
		select {
		case <-released:
		case <-ctx.Done():
			return false
		case <-s.done:
			return false
		}
	}
	return true
}

// PeakCaptureInFlight is the most capture requests the server was handling
// at once, each counted from its body being read to its answer: what a
// sender's concurrency limit is checked against.
func (s *Server) PeakCaptureInFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.capture.peak
}

// scripted carries out the parts of a hooked answer that end an exchange
// without the route's own logic (Delay cut short, Hang, Drop) on the
// definitions and /flags routes. It returns false when the exchange is over.
func (s *Server) scripted(w http.ResponseWriter, r *http.Request, resp Response) bool {
	switch {
	case resp.Delay > 0 && !s.pause(r.Context(), resp.Delay):
		s.logf("fakeposthog: %s %s: abandoned during %v delay", r.Method, r.URL.Path, resp.Delay)
	case resp.Hang:
		s.logf("fakeposthog: %s %s: hanging (scripted)", r.Method, r.URL.Path)
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
	case resp.Drop || resp.DropAfterAccept:
		s.logf("fakeposthog: %s %s: dropping connection (scripted)", r.Method, r.URL.Path)
	case resp.Malformed:
		s.logf("fakeposthog: %s %s: answering garbage (scripted)", r.Method, r.URL.Path)
		writeGarbage(w)
		return false
	default:
		return true
	}
	abortConn(w)
	return false
}

// setHeaders sets the headers a scripted answer names.
func setHeaders(w http.ResponseWriter, resp Response) {
	h := w.Header()
	if resp.RetryAfter != "" {
		h.Set("Retry-After", resp.RetryAfter)
	}
	if resp.Location != "" {
		h.Set("Location", resp.Location)
	}
	if resp.ETag != "" {
		h.Set("ETag", resp.ETag)
	}
}

// writeGarbage answers with bytes that are not HTTP and closes the
// connection (Response.Malformed).
func writeGarbage(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_, _ = conn.Write([]byte("garbage\r\n\r\n"))
	_ = conn.Close()
}
