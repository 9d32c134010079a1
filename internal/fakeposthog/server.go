// Package fakeposthog is a PostHog stand-in that behaves like PostHog Cloud at
// the network edge: the capture v0 routes (/batch/, /e, /i/v0/e, /capture, ...),
// the flag-definitions routes used for local evaluation (/flags/definitions,
// /api/feature_flag/local_evaluation) and remote evaluation (POST /flags),
// which it answers from the definitions it serves, evaluated per distinct id
// with flags/eval (see EvaluateFlags), unless a test scripts another answer.
//
// It has two callers. Integration tests start the real hogrelay binary, point
// it at this server and assert on what arrived; because those tests prove
// delivery guarantees, the server records every accepted event (repeats
// included) and can be scripted to fail the ways the real service and real
// networks fail: error statuses with Retry-After, requests that never get an
// answer, connections closed mid-request, poison events and size limits.
// `hogrelay dev` embeds it on loopback so a newcomer can try the agent without
// a PostHog account.
//
// Status codes, limits and error bodies follow PostHog's capture-rs and
// feature-flags services (rust/capture and rust/feature-flags in
// github.com/PostHog/posthog).
package fakeposthog

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// ErrClosed is returned by the Wait* methods when the server is closed before
// the awaited condition holds.
var ErrClosed = errors.New("fakeposthog: server closed")

// Options configures New. The zero value is a working loopback server.
type Options struct {
	// Addr is the TCP address to listen on; "" means "127.0.0.1:0" (a free
	// loopback port, so parallel tests never collide).
	Addr string
	// OnBatch, if set, is called for every accepted capture request, just
	// before its answer is written. Dev mode prints a line from it. It runs on
	// the request's goroutine: keep it short.
	OnBatch func(BatchInfo)
	// FlagDefinitions is the initial /flags/definitions body; nil means an
	// empty project ({"flags":[],"group_type_mapping":{},"cohorts":{}}).
	FlagDefinitions []byte
	// Logf, if set, receives one line per request and net/http's own errors.
	Logf func(format string, args ...any)
}

// Server is a running fake PostHog. All methods are safe for concurrent use.
type Server struct {
	onBatch func(BatchInfo)
	logf    func(format string, args ...any)
	url     string
	http    *http.Server
	served  chan struct{} // closed when http.Serve returns

	// done is closed by Close; handlers that hang or delay select on it so
	// that Close never waits on a client that will not hang up.
	done      chan struct{}
	handlers  sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	// mu guards everything below. It is never held while writing to a client
	// or calling a user callback.
	mu     sync.Mutex
	closed bool
	// changed is closed and replaced whenever requests or accepted events
	// change, waking Wait* callers without polling.
	changed chan struct{}

	capture captureState
	flags   flagsState
	// answer is SetAnswer's hook; holds are Hold's, held the requests
	// waiting on them.
	answer Answer
	holds  []*hold
	held   int
}

// New starts a server on opts.Addr and serves in the background until Close.
func New(opts Options) (*Server, error) {
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("fakeposthog: listen on %s: %w", addr, err)
	}
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	s := &Server{
		onBatch: opts.OnBatch,
		logf:    logf,
		url:     "http://" + ln.Addr().String(),
		served:  make(chan struct{}),
		done:    make(chan struct{}),
		changed: make(chan struct{}),
		capture: newCaptureState(),
	}
	defs := opts.FlagDefinitions
	if defs == nil {
		defs = []byte(emptyDefinitions)
	}
	s.setDefinitionsLocked(defs)

	s.http = &http.Server{
		Handler: s,
		// Slowloris protection is irrelevant on loopback, but an unbounded
		// header read would let a broken client pin a goroutine past Close.
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          log.New(logfWriter(logf), "fakeposthog: ", 0),
	}
	go func() {
		defer close(s.served)
		// Serve always returns a non-nil error; after Close it is
		// http.ErrServerClosed, which is the normal way out.
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logf("fakeposthog: serve: %v", err)
		}
	}()
	return s, nil
}

// URL is the base URL to configure as the PostHog host, e.g. "http://127.0.0.1:40123".
func (s *Server) URL() string { return s.url }

// Close stops the listener, closes every connection including hung and
// delayed ones, and waits for all handlers to return. It is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.broadcastLocked()
		s.mu.Unlock()
		close(s.done)
		s.closeErr = s.http.Close()
		<-s.served
		s.handlers.Wait()
	})
	return s.closeErr
}

// ServeHTTP routes a request the way PostHog's edge does: trailing slashes are
// optional everywhere, and unknown paths get 404.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Registering with the WaitGroup under mu, and refusing once closed, keeps
	// Add from racing with the Wait in Close.
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "fakeposthog: closed", http.StatusServiceUnavailable)
		return
	}
	s.handlers.Add(1)
	s.mu.Unlock()
	defer s.handlers.Done()

	path := strings.TrimSuffix(r.URL.Path, "/")
	if limit, ok := captureRoutes[path]; ok {
		s.handleCapture(w, r, limit)
		return
	}
	switch path {
	case "/flags/definitions", "/api/feature_flag/local_evaluation":
		s.handleDefinitions(w, r)
	case "/flags", "/decide":
		s.handleFlags(w, r)
	default:
		http.Error(w, "not found", http.StatusNotFound)
	}
}

// broadcastLocked wakes every Wait* caller. Callers hold s.mu.
func (s *Server) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// abortConn ends the exchange without an HTTP response. Returning from a
// handler without writing would make net/http send an empty 200, which is the
// opposite of what Hang and Drop promise.
func abortConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not hijackable (or the connection is already gone): let net/http
		// tear the connection down silently.
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

// logfWriter adapts Logf to the io.Writer that net/http's ErrorLog needs.
type logfWriter func(format string, args ...any)

func (f logfWriter) Write(p []byte) (int, error) {
	f("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var _ io.Writer = logfWriter(nil)
