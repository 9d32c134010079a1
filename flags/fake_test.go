package flags

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/testlog"
)

const (
	testToken = "phc_testproject"
	testKey   = "phx_SuperSecretPersonalKey42"
)

// testDefs (testdata/definitions.json) has one flag that is on for everyone (with a payload), one that
// is off, and one that needs the server (experience continuity).
var testDefs = readTestdata("definitions.json")

// readTestdata returns testdata/name as a string, without the file's final
// newline (tests compare served bytes); a missing fixture panics at init,
// which fails every test in the package with the file's name.
func readTestdata(name string) string {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		panic(err)
	}
	return strings.TrimSuffix(string(b), "\n")
}

// fakePostHog is the network edge: a real HTTP server on an ephemeral port
// whose answers tests script through func fields.
type fakePostHog struct {
	*httptest.Server

	mu sync.Mutex
	// defs answers GET /flags/definitions and /api/feature_flag/local_evaluation;
	// n counts requests to that path, starting at 1.
	defs func(w http.ResponseWriter, r *http.Request, n int)
	// flags answers POST /flags/.
	flags    func(w http.ResponseWriter, r *http.Request)
	requests []*http.Request
	bodies   [][]byte
	counts   map[string]int
}

func newFake(t *testing.T) *fakePostHog {
	t.Helper()
	f := &fakePostHog{counts: map[string]int{}}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakePostHog) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body)) // scripts may read it too
	f.mu.Lock()
	f.counts[r.URL.Path]++
	n := f.counts[r.URL.Path]
	f.requests = append(f.requests, r)
	f.bodies = append(f.bodies, body)
	defs, flags := f.defs, f.flags
	f.mu.Unlock()
	switch {
	case r.URL.Path == "/flags/definitions" || r.URL.Path == "/api/feature_flag/local_evaluation":
		if defs == nil {
			http.NotFound(w, r)
			return
		}
		defs(w, r, n)
	case r.URL.Path == "/flags/" && r.Method == http.MethodPost:
		if flags == nil {
			http.Error(w, `{"detail":"no script"}`, http.StatusInternalServerError)
			return
		}
		flags(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakePostHog) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[path]
}

func (f *fakePostHog) last() (*http.Request, []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[len(f.requests)-1], f.bodies[len(f.bodies)-1]
}

func (f *fakePostHog) setDefs(h func(w http.ResponseWriter, r *http.Request, n int)) {
	f.mu.Lock()
	f.defs = h
	f.mu.Unlock()
}

func (f *fakePostHog) setFlags(h func(w http.ResponseWriter, r *http.Request)) {
	f.mu.Lock()
	f.flags = h
	f.mu.Unlock()
}

// serveDefs answers like PostHog: the body with an ETag, or 304 when the
// client already has it.
func serveDefs(body, etag string) func(http.ResponseWriter, *http.Request, int) {
	return func(w http.ResponseWriter, r *http.Request, _ int) {
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}
}

func status(code int, body string) func(http.ResponseWriter, *http.Request, int) {
	return func(w http.ResponseWriter, _ *http.Request, _ int) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}
}

// clock is a manual clock for fetch times and the remote cooldown.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type harness struct {
	svc   *Service
	logs  *testlog.Buffer
	clock *clock
	dir   string
}

var openByDir sync.Map // dir -> *Service

// newService builds a Service against host with a manual clock, no jitter,
// and debug logs captured. mod adjusts the Options first.
func newService(t *testing.T, host, dir string, mod func(*Options)) harness {
	t.Helper()
	log, logs := testlog.Capture(t)
	o := Options{
		Host:           host,
		ProjectToken:   testToken,
		PersonalAPIKey: testKey,
		PollInterval:   10 * time.Second,
		Dir:            dir,
		GeoIPDisable:   true,
		Logger:         log,
	}
	if mod != nil {
		mod(&o)
	}
	c := &clock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	// A new service on a directory in use is a restart: the old one stops
	// first, as an agent's does, and lets go of the answer cache.
	if prev, ok := openByDir.Load(dir); ok {
		_ = prev.(*Service).Close()
	}
	s, err := New(o)
	require.NoError(t, err)
	openByDir.Store(dir, s)
	t.Cleanup(func() { _ = s.Close() })
	s.now = c.now
	s.jitter = func(d time.Duration) time.Duration { return d }
	return harness{svc: s, logs: logs, clock: c, dir: dir}
}

// runPolls runs the poll loop until it has planned n waits, returning every
// planned delay. The waits fire at once, so no test sleeps.
func runPolls(t *testing.T, s *Service, n int) []time.Duration {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var delays []time.Duration
	s.after = func(d time.Duration) <-chan time.Time {
		delays = append(delays, d)
		if len(delays) == n {
			cancel()
			return nil // never fires; Run sees ctx done
		}
		ch := make(chan time.Time, 1)
		ch <- time.Time{}
		return ch
	}
	s.Run(ctx)
	return delays
}

func ptr[T any](v T) *T { return &v }
