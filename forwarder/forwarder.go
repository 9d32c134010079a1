// Package forwarder drains the spool to PostHog's /batch/ endpoint.
//
// It sends the spool's head in batches bounded by event count and bytes,
// gzip-compressed, with each event exactly as it was stored (uuid, timestamp
// and distinct_id byte-identical on every attempt, so PostHog can drop
// repeats, and no sent_at, so PostHog does not shift spooled events by the
// time they waited). Records leave the spool only after a 2xx.
//
// Failures never give an acknowledged event up: 408, 429, 5xx and network
// errors are retried forever with capped exponential backoff and full jitter,
// with Retry-After as a floor; 413 splits the batch; a 400 bisects it to find
// the events PostHog refuses and moves only those to the dead-letter bucket;
// 401/403 keeps everything and retries rarely.
package forwarder

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/rs/zerolog"

	"github.com/hogrelay/hogrelay/internal/retryafter"
	"github.com/hogrelay/hogrelay/spool"
)

// Options tune the forwarder; config.ForwarderConfig maps onto them.
type Options struct {
	Host              string // PostHog host, e.g. https://us.i.posthog.com
	BatchMaxEvents    int
	BatchMaxBytes     int
	RequestTimeout    time.Duration
	BackoffInitial    time.Duration
	BackoffMax        time.Duration
	AuthRetryInterval time.Duration
	// CompactAbove: after the spool drains, compact a file larger than this.
	CompactAbove int64
	UserAgent    string
	HTTPClient   *http.Client
	Logger       zerolog.Logger
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

// Status is a snapshot for `hogrelay status` and /status.
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
}

// Forwarder is created with New and driven by Run.
type Forwarder struct {
	sp      *spool.Spool
	log     zerolog.Logger
	client  *http.Client
	metrics *metrics

	optMu sync.Mutex
	opts  Options

	mu     sync.Mutex
	status Status
	// wake is closed/replaced to cut a backoff short (hogrelay status --retry
	// or a config reload); buffered so a poke is never lost.
	wake chan struct{}
	// sleepFn waits d or until ctx/wake; tests replace it to record waits
	// instead of spending them.
	sleepFn func(ctx context.Context, d time.Duration) bool
}

// New builds a forwarder over sp.
func New(sp *spool.Spool, o Options) *Forwarder {
	o.Host = strings.TrimRight(o.Host, "/")
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			MaxIdleConnsPerHost: 4,
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
		metrics: newMetrics(),
	}
	f.status.State = StateIdle
	f.sleepFn = f.realSleep
	return f
}

// SetOptions applies new tuning (SIGHUP). Host and client stay as they were.
func (f *Forwarder) SetOptions(o Options) {
	f.optMu.Lock()
	o.Host, o.HTTPClient, o.Logger = f.opts.Host, f.opts.HTTPClient, f.opts.Logger
	f.opts = o
	f.optMu.Unlock()
	f.Wake()
}

func (f *Forwarder) options() Options {
	f.optMu.Lock()
	defer f.optMu.Unlock()
	return f.opts
}

// Wake cuts a current backoff or auth wait short.
func (f *Forwarder) Wake() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Status returns a snapshot.
func (f *Forwarder) Status() Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status
}

func (f *Forwarder) setState(s State, until time.Time) {
	f.mu.Lock()
	f.status.State, f.status.Until = s, until
	f.mu.Unlock()
}

// Run forwards until ctx is done. It returns nil on cancellation; records
// in flight at that moment stay in the spool and are sent again next time.
func (f *Forwarder) Run(ctx context.Context) error {
	defer f.setState(StateStopped, time.Time{})
	compactChecked := false
	for {
		o := f.options()
		recs, err := f.sp.Next(o.BatchMaxEvents, o.BatchMaxBytes)
		if err != nil {
			f.log.Error().Err(err).Msg("reading the spool failed; retrying")
			if !f.sleep(ctx, o.BackoffInitial) {
				return nil
			}
			continue
		}
		if len(recs) == 0 {
			f.setState(StateIdle, time.Time{})
			if !compactChecked && o.CompactAbove > 0 {
				compactChecked = true
				if _, _, err := f.sp.CompactIfLarger(o.CompactAbove); err != nil {
					f.log.Error().Err(err).Msg("compacting the drained spool failed")
				}
			}
			select {
			case <-ctx.Done():
				return nil
			case <-f.sp.Notify():
			case <-f.wake:
			}
			continue
		}
		compactChecked = false
		var events [][]byte
		seqs := make([]uint64, 0, len(recs))
		for _, r := range recs {
			seqs = append(seqs, r.Seq)
			events = append(events, r.Events...)
		}
		b := batch{token: recs[0].Token, historical: recs[0].Historical}
		dead, err := f.deliver(ctx, b, events)
		if err != nil { // only cancellation
			return nil
		}
		if !f.remove(ctx, o, seqs, dead) {
			return nil
		}
	}
}

// remove deletes what PostHog took from the spool, retrying with backoff
// when the spool cannot be written (a full disk fails deletes too, as bbolt
// writes new pages to free old ones). It retries the delete rather than
// moving on, because moving on would resend the same events every time. It
// returns false when ctx ends first; those events are sent again after the
// next start, which PostHog drops by uuid.
func (f *Forwarder) remove(ctx context.Context, o Options, seqs []uint64, dead []spool.DeadEvent) bool {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval, bo.MaxElapsedTime = o.BackoffInitial, o.BackoffMax, 0
	for attempt := 1; ; attempt++ {
		err := f.sp.Done(seqs, dead)
		if err == nil {
			if attempt > 1 {
				f.log.Info().Int("attempts", attempt).Msg("removed sent events from the spool")
			}
			return true
		}
		ev := f.log.Debug()
		if attempt == 1 {
			ev = f.log.Error()
		}
		ev.Err(err).Int("attempt", attempt).Msg("removing sent events from the spool failed (disk full?); retrying the removal, not the send")
		if !f.sleep(ctx, bo.NextBackOff()) {
			return false
		}
	}
}

// Drain waits until the spool is empty, the forwarder is waiting out a
// failure (more waiting would not help), or ctx is done. Shutdown uses it to
// flush for a bounded time.
func (f *Forwarder) Drain(ctx context.Context) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		st, err := f.sp.Stats()
		s := f.Status()
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

type batch struct {
	token      string
	historical bool
}

// deliver sends events until each one is accepted or dead. It returns the
// dead ones; the error is non-nil only when ctx ended first.
func (f *Forwarder) deliver(ctx context.Context, b batch, events [][]byte) ([]spool.DeadEvent, error) {
	var dead []spool.DeadEvent
	o := f.options()
	// Pre-split by the configured bounds: one spool record can hold more
	// than a batch when batch_max_events was lowered on a reload.
	for len(events) > 0 {
		n, size := 0, 0
		for n < len(events) && n < o.BatchMaxEvents && (n == 0 || size+len(events[n])+1 <= o.BatchMaxBytes) {
			size += len(events[n]) + 1
			n++
		}
		d, err := f.deliverChunk(ctx, b, events[:n])
		if err != nil {
			return nil, err
		}
		dead = append(dead, d...)
		events = events[n:]
	}
	return dead, nil
}

// deliverChunk sends one batch, splitting it on 413 and bisecting it on 400.
func (f *Forwarder) deliverChunk(ctx context.Context, b batch, events [][]byte) ([]spool.DeadEvent, error) {
	bo := backoff.NewExponentialBackOff()
	for attempt := 1; ; attempt++ {
		o := f.options()
		bo.InitialInterval, bo.MaxInterval = o.BackoffInitial, o.BackoffMax
		bo.Multiplier, bo.RandomizationFactor, bo.MaxElapsedTime = 2, 0, 0
		if attempt == 1 {
			bo.Reset()
		}
		f.setState(StateSending, time.Time{})
		res := f.send(ctx, o, b, events)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		switch {
		case res.ok():
			f.succeeded(len(events))
			return nil, nil
		case res.status == http.StatusRequestEntityTooLarge || res.status == http.StatusBadRequest:
			if len(events) == 1 {
				reason := fmt.Sprintf("PostHog answered %d: %s", res.status, res.message)
				f.noteError(res, "event refused by PostHog; moved to the dead-letter bucket")
				f.metrics.deadLettered.Inc()
				f.mu.Lock()
				f.status.DeadLettered++
				f.mu.Unlock()
				return []spool.DeadEvent{{Token: b.token, Historical: b.historical, Event: events[0], Reason: reason}}, nil
			}
			// Halve: for 413 the halves are small enough sooner or later;
			// for 400 this bisects down to the events PostHog refuses, and
			// the good halves go through.
			f.log.Debug().Int("status", res.status).Int("events", len(events)).Msg("batch refused; splitting it in two")
			mid := len(events) / 2
			d1, err := f.deliverChunk(ctx, b, events[:mid])
			if err != nil {
				return nil, err
			}
			d2, err := f.deliverChunk(ctx, b, events[mid:])
			if err != nil {
				return nil, err
			}
			return append(d1, d2...), nil
		case res.status == http.StatusUnauthorized || res.status == http.StatusForbidden:
			wait := o.AuthRetryInterval
			f.noteError(res, "PostHog refused the project API key; keeping every event and retrying rarely. Check [posthog] api_key / the token producers send")
			f.setState(StateAuthFailed, time.Now().Add(wait))
			if !f.sleep(ctx, wait) {
				return nil, ctx.Err()
			}
		default: // 408, 429, 5xx, network errors, and any unexpected answer
			wait := bo.NextBackOff()
			// Full jitter spreads a fleet of agents over the whole window;
			// the floor keeps a failing upstream from being retried in a
			// tight loop.
			wait = time.Duration(rand.Int64N(int64(wait) + 1))
			if floor := o.BackoffInitial / 2; wait < floor {
				wait = floor
			}
			if res.retryAfter > wait {
				wait = res.retryAfter
			}
			f.noteError(res, "sending to PostHog failed; will retry")
			f.metrics.retries.Inc()
			f.mu.Lock()
			f.status.Retries++
			f.mu.Unlock()
			f.log.Debug().Int("attempt", attempt).Dur("wait", wait).Int("status", res.status).Str("reason", res.message).Int("events", len(events)).Msg("retrying batch")
			f.setState(StateBackingOff, time.Now().Add(wait))
			if !f.sleep(ctx, wait) {
				return nil, ctx.Err()
			}
		}
	}
}

func (f *Forwarder) succeeded(events int) {
	f.mu.Lock()
	recovered := f.status.ConsecutiveFail > 0
	f.status.ConsecutiveFail = 0
	f.status.LastSuccess = time.Now()
	f.status.EventsForwarded += uint64(events)
	f.status.Batches++
	f.mu.Unlock()
	f.metrics.events.Add(float64(events))
	if recovered {
		f.log.Info().Msg("PostHog is accepting events again")
	}
}

// noteError records the failure for status and logs it: loudly at the start
// of a failure streak, at debug while it lasts, so a long outage does not
// flood the journal.
func (f *Forwarder) noteError(res result, msg string) {
	f.mu.Lock()
	f.status.ConsecutiveFail++
	first := f.status.ConsecutiveFail == 1
	f.status.LastError = res.message
	f.status.LastErrorStatus = res.status
	f.status.LastErrorAt = time.Now()
	f.mu.Unlock()
	ev := f.log.Debug()
	switch {
	case res.status == http.StatusUnauthorized || res.status == http.StatusForbidden:
		ev = f.log.Error()
	case res.status == http.StatusBadRequest || res.status == http.StatusRequestEntityTooLarge:
		ev = f.log.Warn()
	case res.status >= 300 && res.status < 400:
		ev = f.log.Error() // a configuration problem: it will not heal by waiting
	case first:
		ev = f.log.Warn()
	}
	ev.Int("status", res.status).Str("reason", res.message).Msg(msg)
}

func (f *Forwarder) sleep(ctx context.Context, d time.Duration) bool { return f.sleepFn(ctx, d) }

func (f *Forwarder) realSleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	case <-f.wake:
		return true
	}
}

type result struct {
	status     int // 0 for a network error
	message    string
	retryAfter time.Duration
}

func (r result) ok() bool { return r.status >= 200 && r.status < 300 }

var gzipPool = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
	return w
}}

// encode builds {"api_key":…,"historical_migration":…,"batch":[…]} around the
// stored events, byte for byte, and gzips it.
func encode(b batch, events [][]byte) ([]byte, int) {
	var raw bytes.Buffer
	size := 64 + len(b.token)
	for _, e := range events {
		size += len(e) + 1
	}
	raw.Grow(size)
	raw.WriteString(`{"api_key":`)
	raw.WriteString(strconv.Quote(b.token))
	if b.historical {
		raw.WriteString(`,"historical_migration":true`)
	}
	raw.WriteString(`,"batch":[`)
	for i, e := range events {
		if i > 0 {
			raw.WriteByte(',')
		}
		raw.Write(e)
	}
	raw.WriteString("]}")
	var out bytes.Buffer
	out.Grow(raw.Len() / 4)
	zw := gzipPool.Get().(*gzip.Writer)
	zw.Reset(&out)
	_, _ = zw.Write(raw.Bytes())
	_ = zw.Close()
	gzipPool.Put(zw)
	return out.Bytes(), raw.Len()
}

func (f *Forwarder) send(ctx context.Context, o Options, b batch, events [][]byte) result {
	body, rawLen := encode(b, events)
	rctx, cancel := context.WithTimeout(ctx, o.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, o.Host+"/batch/", bytes.NewReader(body))
	if err != nil {
		return result{message: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	if o.UserAgent != "" {
		req.Header.Set("User-Agent", o.UserAgent)
	}
	start := time.Now()
	resp, err := f.client.Do(req)
	took := time.Since(start)
	if err != nil {
		f.metrics.observe("network_error", took, len(events))
		return result{message: redactURL(err.Error())}
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	f.metrics.observe(strconv.Itoa(resp.StatusCode), took, len(events))
	f.log.Debug().Int("status", resp.StatusCode).Int("events", len(events)).Int("bytes", rawLen).
		Int("gzip_bytes", len(body)).Dur("took", took).Msg("batch sent")
	r := result{status: resp.StatusCode, message: strings.TrimSpace(string(msg))}
	if r.message == "" {
		r.message = http.StatusText(resp.StatusCode)
	}
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		r.message = fmt.Sprintf("HTTP %d: PostHog's /batch/ redirected to %q; hogrelay never follows redirects for capture (the events would be lost), so nothing was delivered and everything is kept: fix [posthog] host (e.g. use https://)",
			resp.StatusCode, redactURL(resp.Header.Get("Location")))
	case !r.ok():
		r.message = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, r.message)
	}
	r.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	return r
}

// maxRetryAfter caps what a Retry-After header can make us wait, so a
// misconfigured proxy cannot park the forwarder for days.
const maxRetryAfter = time.Hour

// parseRetryAfter is retryafter.Parse capped at maxRetryAfter.
func parseRetryAfter(v string, now time.Time) time.Duration {
	return min(retryafter.Parse(v, now), maxRetryAfter)
}

// redactURL keeps error strings free of query strings; ours carry none, but
// an error from a proxy might echo one.
func redactURL(s string) string {
	if i := strings.Index(s, "?"); i >= 0 {
		if j := strings.IndexAny(s[i:], "\" "); j >= 0 {
			return s[:i] + s[i+j:]
		}
		return s[:i]
	}
	return s
}
