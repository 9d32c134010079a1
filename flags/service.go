// Package flags keeps PostHog feature-flag definitions on this machine and
// answers flag questions from them.
//
// A poller fetches /flags/definitions with the personal API key and the last
// ETag, validates every new body by compiling it with flags/eval, swaps it in
// atomically and writes it to Dir/flag-definitions.json (tmp file, fsync,
// rename, dir fsync). New loads that file before anything else, so after a
// reboot with no network the agent answers from the last good set the moment
// it is up. A flag that cannot be decided locally is asked of PostHog's /flags
// when that is allowed — with only a project key, every flag is. PostHog's
// last answer for each evaluation context is kept on disk (answers.go), so a
// context seen before is answered when PostHog cannot be reached, even right
// after a restart; when nothing can answer, callers get ErrNoAnswer, never a
// guess.
//
// Data flows one way: poll.go (network) → cache.go (disk) → answer.go (local
// evaluation, then remote.go, then answers.go when PostHog is unreachable).
// called.go and properties.go turn answers into $feature_flag_called events
// and send_feature_flags properties.
package flags

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/hogrelay/hogrelay/capture"
	"github.com/hogrelay/hogrelay/flags/eval"
	"github.com/hogrelay/hogrelay/internal/retry"
)

// CacheFile is the name of the definitions cache inside Options.Dir.
const CacheFile = "flag-definitions.json"

const (
	// DefaultPollInterval matches posthog-python, -ruby and -node.
	DefaultPollInterval = 30 * time.Second
	// definitionsTimeout matches posthog-python and posthog-node (10 s for a
	// definitions request).
	definitionsTimeout = 10 * time.Second
	// DefaultRemoteTimeout bounds one remote evaluation, its retry included.
	// The SDKs give /flags 3 s (posthog-go, -python, -ruby, -node); the agent answers an SDK
	// within less, so the SDK gets the agent's answer (fresh, cached or
	// "errors while computing") rather than its own timeout.
	DefaultRemoteTimeout = 2500 * time.Millisecond
	// maxBackoff caps the wait after repeated failures. A larger poll
	// interval is never shortened by it.
	maxBackoff = 5 * time.Minute
	// remoteCooldown: after a transport failure on /flags, further remote
	// calls fail fast for this long instead of each waiting out the 3s
	// timeout, which matters right after a boot with no network.
	remoteCooldown = 5 * time.Second
	// persistCheckedEvery: a 304 does not change the body, but the time
	// PostHog last confirmed it is rewritten to disk at most this often, so
	// an offline restart reports an honest age without an fsync every poll.
	persistCheckedEvery = 10 * time.Minute
	// Response size limits: definitions with cohorts can be several MB.
	maxDefinitionsBytes = 64 << 20
	maxRemoteBytes      = 8 << 20
	userAgent           = "hogrelay"
)

// Options configures a Service. Zero values are usable where noted.
type Options struct {
	Host           string // PostHog host, e.g. "https://us.i.posthog.com"; "" = no network at all
	ProjectToken   string // phc_..., sent as ?token= for definitions and as token in /flags calls
	PersonalAPIKey string // phx_ or phs_, Bearer for definitions; "" disables polling and remote calls
	PollInterval   time.Duration
	Dir            string // data_dir; the cache file is Dir/flag-definitions.json
	// OnlyEvaluateLocally forbids remote /flags calls for every question.
	OnlyEvaluateLocally bool
	// GeoIPDisable is sent as geoip_disable on the agent's own /flags calls
	// (CLI, send_feature_flags): PostHog would locate the agent's server,
	// not the user. SDK requests keep what the SDK sent.
	GeoIPDisable bool
	// RemoteTimeout bounds one remote evaluation; 0 = DefaultRemoteTimeout.
	RemoteTimeout time.Duration
	// AnswerCache bounds the on-disk cache of PostHog's answers.
	AnswerCache AnswerCacheOptions
	HTTPClient  *http.Client // nil = a client with sensible dial/TLS timeouts
	Logger      zerolog.Logger
}

// Status is a snapshot for the status endpoint and the CLI.
type Status struct {
	Source string // "network", "disk" or "none"
	// FetchedAt is when PostHog last confirmed the definitions in use
	// (a 200 or a 304), or the time saved in the cache file when Source is "disk".
	FetchedAt      time.Time
	ETag           string
	SourceURL      string // the definitions URL the set came from
	FlagCount      int
	QuotaLimited   bool
	PollingEnabled bool
	// PollingOff says why polling is off ("" while it is on).
	PollingOff    string
	RemoteEnabled bool
	// RemoteOff says why remote evaluation is off ("" while it is on).
	RemoteOff string
	// Answers says what answers questions right now: "local" (definitions,
	// and PostHog for what they cannot decide when remote is on), "remote"
	// (PostHog's /flags), "cached" (PostHog cannot be reached: its last
	// answers from disk) or "none".
	Answers         string
	RemoteOKAt      time.Time
	RemoteLastError string
	RemoteErrorAt   time.Time
	AnswerCache     *AnswerCacheStats
	PollInterval    time.Duration
	LastError       string
	LastErrorAt     time.Time
	LastPollAt      time.Time
	Polls           uint64
	PollErrors      uint64
}

// definitions is one immutable set of flags. A 304 makes a copy with a new
// time and ETag that shares ev and raw.
type definitions struct {
	ev        *eval.Evaluator
	raw       []byte
	etag      string
	fetchedAt time.Time
	source    string // "network" or "disk"
	sourceURL string
}

// Service polls definitions, keeps the disk cache and answers flags.
// All methods are safe for concurrent use.
type Service struct {
	host         string // without trailing slash
	token        string
	key          string
	dir          string
	cachePath    string
	onlyLocal    bool
	geoIPDisable bool
	pollingOff   string // why definitions are not polled; "" when they are
	client       *http.Client
	answers      *answerCache // nil when it could not be opened
	log          zerolog.Logger

	defs  atomic.Pointer[definitions] // nil until something loaded
	quota atomic.Bool                 // PostHog said 402: answer nothing until a good fetch

	// fetchMu serialises definition fetches so Reload and Run never race
	// each other on the ETag or the cache file. Lock order: fetchMu, then mu.
	fetchMu sync.Mutex

	mu          sync.Mutex // guards the fields below
	interval    time.Duration
	endpoint    int           // index into definitionPaths that last worked
	failures    int           // consecutive failed polls; drives backoff
	failKind    string        // kind of the failure last logged; "" while healthy
	retryAfter  time.Duration // from the last 429/503, if any
	persistedAt time.Time     // fetched_at as last written to disk
	lastErr     string
	lastErrAt   time.Time
	lastPollAt  time.Time
	polls       uint64
	pollErrors  uint64
	remoteDown  time.Time // remote calls fail fast until then
	remoteErr   error     // why, for the fast failure
	// The last /flags outcome, for Status.
	remoteOKAt    time.Time
	remoteLastErr string
	remoteErrAt   time.Time

	wake chan struct{} // SetPollInterval nudges Run to re-plan its wait

	metrics *metrics

	// Seams for tests; real defaults set in New.
	remoteTimeout time.Duration
	now           func() time.Time
	after         func(time.Duration) <-chan time.Time
	jitter        func(time.Duration) time.Duration
}

// New builds a Service and loads the disk cache synchronously, so flags
// answer before the first network fetch. A missing or damaged cache file is
// logged and ignored; only bad Options are an error.
func New(o Options) (*Service, error) {
	if o.Dir == "" {
		return nil, errors.New("flags: Options.Dir is empty; the definitions cache needs a data directory")
	}
	host := strings.TrimRight(o.Host, "/")
	if host != "" {
		if err := capture.CheckHost(host); err != nil {
			return nil, fmt.Errorf("flags: host: %w", err)
		}
	}
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	client := o.HTTPClient
	if client == nil {
		client = defaultClient()
	}
	if o.RemoteTimeout <= 0 {
		o.RemoteTimeout = DefaultRemoteTimeout
	}
	s := &Service{
		host:          host,
		metrics:       newMetrics(),
		token:         o.ProjectToken,
		key:           o.PersonalAPIKey,
		dir:           o.Dir,
		cachePath:     filepath.Join(o.Dir, CacheFile),
		onlyLocal:     o.OnlyEvaluateLocally,
		geoIPDisable:  o.GeoIPDisable,
		client:        client,
		log:           o.Logger.With().Str("component", "flags").Logger(),
		interval:      o.PollInterval,
		wake:          make(chan struct{}, 1),
		now:           time.Now,
		remoteTimeout: o.RemoteTimeout,
		after:         time.After,
		jitter:        jitter10,
	}
	switch {
	case s.host == "":
		s.pollingOff = "there is no PostHog host ([posthog] host)"
	case s.token == "":
		s.pollingOff = "there is no project API key ([posthog] api_key; the definitions endpoint needs ?token=)"
	case s.key == "":
		s.pollingOff = "there is no personal API key ([posthog] personal_api_key), which local evaluation needs"
	}
	if !s.polling() {
		mode := "flags are answered from the definitions cache file only, if there is one"
		if why := s.remoteBlocked(false, ""); why == "" {
			mode = "flags are asked of PostHog's /flags (remote evaluation)"
		}
		s.log.Info().Msg("flag definitions polling is off: " + s.pollingOff + "; " + mode)
	}
	s.loadCache()
	var err error
	if s.answers, err = openAnswerCache(filepath.Join(o.Dir, AnswerFile), o.AnswerCache, func() time.Time { return s.now() }, s.log); err != nil {
		// Remote answers still work; only offline answers are lost.
		s.log.Error().Err(err).Msg("flag answers will not be kept for offline use")
		s.setError(err)
		s.answers = nil
	}
	return s, nil
}

// Close saves queued answers and closes the answer cache. Call it once,
// after the last question.
func (s *Service) Close() error {
	if s.answers == nil {
		return nil
	}
	return s.answers.close()
}

// ClearAnswers empties the answer cache (`hogrelay flags cache clear`).
func (s *Service) ClearAnswers() error {
	if s.answers == nil {
		return errors.New("flags: there is no answer cache (it could not be opened; see the log)")
	}
	return s.answers.clear()
}

// defaultClient bounds each phase of a connection; the whole request is
// bounded per call by a context deadline (10s definitions, 3s /flags).
func defaultClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 5 * time.Second
	t.ResponseHeaderTimeout = definitionsTimeout
	t.MaxIdleConnsPerHost = 4
	// Never follow a redirect: a POST would become a GET, and the personal
	// key would go wherever the Location points. A 3xx is an error that
	// names the Location (see redirectError).
	return &http.Client{Transport: t, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// jitter10 spreads waits by ±10% so many agents rebooted together (a fleet
// restart, a region outage) do not poll PostHog in lockstep.
func jitter10(d time.Duration) time.Duration {
	return retry.Jitter(d, 0.1)
}

// SetPollInterval changes the interval for the next wait (live config reload).
// Values below one second are raised to one second.
func (s *Service) SetPollInterval(d time.Duration) {
	d = max(d, time.Second)
	s.mu.Lock()
	s.interval = d
	s.mu.Unlock()
	s.nudge()
}

func (s *Service) nudge() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Status reports where the definitions came from and how polling is going.
func (s *Service) Status() Status {
	remoteOff := s.remoteBlocked(false, "")
	st := Status{
		Source:         "none",
		QuotaLimited:   s.quota.Load(),
		PollingEnabled: s.polling(),
		PollingOff:     s.pollingOff,
		RemoteEnabled:  remoteOff == "",
		RemoteOff:      remoteOff,
	}
	if s.answers != nil {
		cs := s.answers.stats()
		st.AnswerCache = &cs
	}
	if d := s.defs.Load(); d != nil {
		st.Source = d.source
		st.FetchedAt = d.fetchedAt
		st.ETag = d.etag
		st.SourceURL = d.sourceURL
		st.FlagCount = d.ev.Len()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st.PollInterval = s.interval
	st.LastError = s.lastErr
	st.LastErrorAt = s.lastErrAt
	st.LastPollAt = s.lastPollAt
	st.Polls = s.polls
	st.PollErrors = s.pollErrors
	st.RemoteOKAt, st.RemoteLastError, st.RemoteErrorAt = s.remoteOKAt, s.remoteLastErr, s.remoteErrAt
	switch {
	case st.QuotaLimited:
		st.Answers = "none"
	case st.FlagCount > 0 || st.Source != "none":
		st.Answers = "local"
	case !st.RemoteEnabled:
		st.Answers = "none"
	case s.remoteErrAt.After(s.remoteOKAt):
		st.Answers = "cached"
	default:
		st.Answers = "remote"
	}
	return st
}

// Definitions returns exactly the last good definitions body and its ETag,
// to serve SDKs that poll the agent. The slice is shared: do not modify it.
// ok is false when there is none, and also while PostHog reports the quota
// as exceeded, so SDKs behind the agent stop evaluating just as they would
// against PostHog (the api layer should answer 402 then; see Status).
func (s *Service) Definitions() (raw []byte, etag string, ok bool) {
	d := s.defs.Load()
	if d == nil || s.quota.Load() {
		return nil, "", false
	}
	return d.raw, d.etag, true
}

// setError records a failure for Status. The personal key is scrubbed in
// case some layer ever echoes a header back into an error.
func (s *Service) setError(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastErr = s.redact(err.Error())
	s.lastErrAt = s.now()
}

func (s *Service) redact(msg string) string {
	if s.key == "" {
		return msg
	}
	return strings.ReplaceAll(msg, s.key, "[redacted]")
}

// polling reports whether the definitions are polled (see pollingOff).
func (s *Service) polling() bool { return s.pollingOff == "" }
