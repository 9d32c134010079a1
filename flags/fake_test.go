package flags

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
	"github.com/hogrelay/hogrelay/internal/testclock"
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

// script answers one request to a fake PostHog route; r.N numbers the
// requests to the definitions routes (or to /flags) from 1.
type script func(r *fakeposthog.Request) fakeposthog.Response

// fakePostHog is internal/fakeposthog with the answers these tests script
// per request: defs for the definitions routes, flags for POST /flags/.
// Until a test scripts one, definitions answer 404 and /flags 500, so a
// test sees only the upstream it describes.
type fakePostHog struct {
	*fakeposthog.Server
	URL string

	mu       sync.Mutex
	defs     script
	flags    script
	requests []*fakeposthog.Request
}

func newFake(tb testing.TB) *fakePostHog {
	tb.Helper()
	srv, err := fakeposthog.New(fakeposthog.Options{})
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = srv.Close() })
	f := &fakePostHog{Server: srv, URL: srv.URL()}
	srv.SetAnswer(f.answer)
	return f
}

func (f *fakePostHog) answer(r *fakeposthog.Request) (fakeposthog.Response, bool) {
	f.mu.Lock()
	f.requests = append(f.requests, r)
	defs, flags := f.defs, f.flags
	f.mu.Unlock()
	switch {
	case r.Path == "/flags/definitions" || r.Path == "/api/feature_flag/local_evaluation":
		if defs == nil {
			return fakeposthog.Response{Status: http.StatusNotFound}, true
		}
		return defs(r), true
	case r.Path == "/flags/" && r.Method == http.MethodPost:
		if flags == nil {
			return fakeposthog.Response{Status: http.StatusInternalServerError, Body: `{"detail":"no script"}`}, true
		}
		return flags(r), true
	}
	return fakeposthog.Response{Status: http.StatusNotFound}, true
}

// count is the number of requests to path.
func (f *fakePostHog) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.requests {
		if r.Path == path {
			n++
		}
	}
	return n
}

// last is the latest request and its body (after gunzip).
func (f *fakePostHog) last() (*http.Request, []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.requests[len(f.requests)-1]
	return &http.Request{Method: r.Method, URL: &url.URL{Path: r.Path, RawQuery: r.Query}, Header: r.Header}, r.Body
}

func (f *fakePostHog) setDefs(s script) {
	f.mu.Lock()
	f.defs = s
	f.mu.Unlock()
}

func (f *fakePostHog) setFlags(s script) {
	f.mu.Lock()
	f.flags = s
	f.mu.Unlock()
}

// serveDefs answers like PostHog: the body with an ETag, or 304 when the
// client already has it.
func serveDefs(body, etag string) script {
	return func(r *fakeposthog.Request) fakeposthog.Response {
		if r.Header.Get("If-None-Match") == etag {
			return fakeposthog.Response{Status: http.StatusNotModified}
		}
		return fakeposthog.Response{Status: http.StatusOK, Body: body, ETag: etag}
	}
}

func status(code int, body string) script {
	return func(*fakeposthog.Request) fakeposthog.Response {
		return fakeposthog.Response{Status: code, Body: body}
	}
}

type harness struct {
	svc   *Service
	logs  *testlog.Buffer
	clock *testclock.Clock
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
	c := testclock.New(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC))
	// A new service on a directory in use is a restart: the old one stops
	// first, as an agent's does, and lets go of the answer cache.
	if prev, ok := openByDir.Load(dir); ok {
		_ = prev.(*Service).Close()
	}
	s, err := New(o)
	require.NoError(t, err)
	openByDir.Store(dir, s)
	t.Cleanup(func() { _ = s.Close() })
	s.now = c.Now
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
