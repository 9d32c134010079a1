// Package forwarder drains the spool to PostHog's /batch/ endpoint.
//
// It sends the spool's head in batches bounded by event count and bytes,
// gzip-compressed, with each event exactly as it was stored (uuid, timestamp
// and distinct_id byte-identical on every attempt, so PostHog can drop
// repeats, and no sent_at, so PostHog does not shift spooled events by the
// time they waited).
//
// Several batches may be in flight (pipeline.go): one goroutine reads the
// spool ahead, each batch is encoded and sent by its own lane, and an
// adaptive limit (controller.go) decides how many lanes may send at once,
// up to max_in_flight. A record leaves the spool only after every event in
// it was accepted (2xx) or dead-lettered, whatever order the lanes finish
// in.
//
// Failures never give an acknowledged event up (deliver.go): 408, 429, 5xx,
// 3xx and network errors are retried forever; while they last every lane is
// held and one small probe goes out per backoff interval (gate.go), with
// Retry-After as a floor; 413 splits a batch; a 400 bisects it to find the
// events PostHog refuses and moves only those to the dead-letter bucket,
// unless PostHog refuses every event alone, which is an upstream problem;
// 401/403 holds every lane, keeps everything and retries rarely.
package forwarder

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/hogrelay/hogrelay/internal/retry"
	"github.com/hogrelay/hogrelay/spool"
)

// Options tune the forwarder; config.ForwarderConfig maps onto them.
type Options struct {
	Host           string // PostHog host, e.g. https://us.i.posthog.com
	BatchMaxEvents int
	BatchMaxBytes  int
	// MaxInFlight bounds the adaptive number of /batch/ requests in flight;
	// 1 sends one batch at a time in strict spool order.
	MaxInFlight       int
	RequestTimeout    time.Duration
	BackoffInitial    time.Duration
	BackoffMax        time.Duration // also the longest gap between probes in an outage
	AuthRetryInterval time.Duration
	// CompactAbove: after the spool drains, compact a file larger than this.
	CompactAbove int64
	UserAgent    string
	HTTPClient   *http.Client
	Logger       zerolog.Logger
}

// DefaultMaxInFlight is max_in_flight's default. With 1,000-event batches
// and PostHog 100 ms away, 32 in flight allow 320,000 events/s; measured
// (README, Performance: the WAN drain of 200,000 events, slow start
// included) 16 gave 111,000-115,000 events/s and 32 gave 156,000-165,000,
// with the same fleet figures against a rate-limited PostHog (the limit,
// not this bound, paces a fleet). Memory stays bounded by maxHeldBytes.
const DefaultMaxInFlight = 32

// maxInFlightOrDefault is n, or DefaultMaxInFlight when n is unset.
func maxInFlightOrDefault(n int) int {
	if n < 1 {
		return DefaultMaxInFlight
	}
	return n
}

// policy is the one backoff policy for sends and spool removals: capped
// exponential, full jitter, never less than half of backoff_initial.
func (o Options) policy() retry.Policy {
	return retry.Policy{Initial: o.BackoffInitial, Max: o.BackoffMax, Jitter: 1, Floor: o.BackoffInitial / 2}
}

// State is what the forwarder is doing.
type State string

const (
	StateIdle       State = "idle"
	StateSending    State = "sending"
	StateBackingOff State = "backing_off"
	StateAuthFailed State = "auth_failed"
	StateStopped    State = "stopped"
)

// Status is a snapshot for `hogrelay status` and /hogrelay/v1/status.
type Status struct {
	State           State     `json:"state"`
	Until           time.Time `json:"until,omitzero"` // end of the current wait
	LastSuccess     time.Time `json:"last_success,omitzero"`
	LastError       string    `json:"last_error,omitempty"`
	LastErrorStatus int       `json:"last_error_status,omitempty"`
	LastErrorAt     time.Time `json:"last_error_at,omitzero"`
	EventsForwarded uint64    `json:"events_forwarded"`
	Batches         uint64    `json:"batches"`
	Retries         uint64    `json:"retries"`
	DeadLettered    uint64    `json:"dead_lettered"`
	ConsecutiveFail int       `json:"consecutive_failures"`
	// InFlight is the number of batches being sent now; Limit the adaptive
	// limit (below 1: one request paced to that share of the time), at most
	// MaxInFlight.
	InFlight    int     `json:"in_flight"`
	Limit       float64 `json:"concurrency_limit"`
	MaxInFlight int     `json:"max_in_flight"`
	// DrainRate is events accepted per second over the last minute;
	// EmptyIn the backlog divided by it (omitted while nothing drains).
	DrainRate float64 `json:"drain_events_per_second"`
	EmptyIn   float64 `json:"backlog_empty_in_seconds,omitempty"`
	// RefusingAll is set while PostHog (or something in front of it) refuses
	// every event even alone with one answer: the events are kept.
	RefusingAll bool `json:"upstream_refuses_everything,omitempty"`
}

// Forwarder is created with New and driven by Run.
type Forwarder struct {
	sp      *spool.Spool
	log     zerolog.Logger
	client  *http.Client
	metrics *metrics

	optMu sync.Mutex
	opts  Options

	gate    *gate
	limiter *limiter
	drained *rateWindow

	mu      sync.Mutex
	status  Status
	stopped bool
	refused refusalStreak

	// wake is a buffered poke for the reader when it waits for new records
	// (Wake: a config reload); the gate has its own for a backoff wait.
	wake chan struct{}
	clk  *clock
}

// New builds a forwarder over sp.
func New(sp *spool.Spool, o Options) *Forwarder {
	o.Host = strings.TrimRight(o.Host, "/")
	o.MaxInFlight = maxInFlightOrDefault(o.MaxInFlight)
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment,
			// One idle connection per lane, so a steady drain never pays
			// a new TLS handshake per batch.
			MaxIdleConnsPerHost: max(o.MaxInFlight, 4),
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second,
			// Compression is ours to do; Go's transparent gzip would also
			// ask for gzipped answers we do not want.
			DisableCompression: true,
		}}
	}
	// Never follow a redirect: Go would resend POST /batch/ as a body-less
	// GET after a 301/302, and a 2xx to that GET would count as delivered
	// while PostHog got nothing. A 3xx is a failure (see send).
	c := *o.HTTPClient
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	o.HTTPClient = &c
	f := &Forwarder{
		sp:      sp,
		log:     o.Logger.With().Str("component", "forwarder").Logger(),
		client:  o.HTTPClient,
		opts:    o,
		wake:    make(chan struct{}, 1),
		clk:     &clock{now: time.Now, after: time.After},
		drained: newRateWindow(time.Now()),
	}
	f.gate = newGate(o.policy(), f.clk)
	f.limiter = newLimiter(o.MaxInFlight, f.clk)
	f.metrics = newMetrics()
	return f
}

// SetOptions applies new tuning (SIGHUP). Host and client stay as they were.
func (f *Forwarder) SetOptions(o Options) {
	f.optMu.Lock()
	o.Host, o.HTTPClient, o.Logger = f.opts.Host, f.opts.HTTPClient, f.opts.Logger
	o.MaxInFlight = maxInFlightOrDefault(o.MaxInFlight)
	f.opts = o
	f.optMu.Unlock()
	f.gate.setPolicy(o.policy())
	f.limiter.setMax(o.MaxInFlight)
	f.Wake()
}

func (f *Forwarder) options() Options {
	f.optMu.Lock()
	defer f.optMu.Unlock()
	return f.opts
}

// Wake cuts a current backoff or auth wait short (POST
// /hogrelay/v1/forwarder/retry, a reload). Buffered, so a poke is never lost.
func (f *Forwarder) Wake() {
	for _, ch := range []chan struct{}{f.wake, f.gate.wake} {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Status returns a snapshot, with the estimate of when the spool will be
// empty (which reads the spool's depth).
func (f *Forwarder) Status() Status {
	s := f.snapshot()
	if s.DrainRate > 0 {
		if st, err := f.sp.Stats(); err == nil && st.PendingEvents > 0 {
			s.EmptyIn = float64(st.PendingEvents) / s.DrainRate
		}
	}
	return s
}

// snapshot is Status without EmptyIn: the forwarder's own state, no spool
// read, for callers that read the spool themselves or not at all.
func (f *Forwarder) snapshot() Status {
	now := f.clk.now()
	f.mu.Lock()
	s := f.status
	stopped := f.stopped
	s.RefusingAll = f.refused.holding
	f.mu.Unlock()
	failing, auth, until := f.gate.state()
	s.InFlight, s.Limit, s.MaxInFlight = f.limiter.snapshot()
	s.DrainRate = f.drained.rate(now)
	switch {
	case stopped:
		s.State = StateStopped
	case auth:
		s.State, s.Until = StateAuthFailed, until
	case failing || until.After(now):
		s.State, s.Until = StateBackingOff, until
	case s.InFlight > 0:
		s.State = StateSending
	default:
		s.State = StateIdle
	}
	return s
}

// Drain waits until the spool is empty, the forwarder is waiting out a
// failure (more waiting would not help), or ctx is done. Shutdown uses it to
// flush for a bounded time.
func (f *Forwarder) Drain(ctx context.Context) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		st, err := f.sp.Stats()
		s := f.snapshot()
		if err != nil || st.PendingEvents == 0 || s.State == StateBackingOff || s.State == StateAuthFailed || s.State == StateStopped {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
