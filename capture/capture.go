// Package capture speaks PostHog's capture wire formats: it turns one HTTP
// request into normalised events, accepting and refusing exactly what
// PostHog's capture service (capture-rs) would, with the same HTTP status.
// Decode reads v0 (/batch, /e, /i/v0/e, /capture, /track, /engage);
// DecodeV1 reads Capture v1 (/i/v1/analytics/events, see v1.go). It also
// holds the rules for what PostHog accepts that the agent's config reuses:
// a project token's shape (CheckToken) and the PostHog host URL (CheckHost).
//
// It is a pure library: no server, no disk. The api package bounds and reads
// the request, calls Decode, stores Batch.Events in the spool, and answers
// the producer; the forwarder later sends the stored events upstream
// byte-for-byte. Because that send may happen hours after receipt, each
// event leaves here with its final uuid and its clock-skew-corrected
// timestamp, and without the producer's sent_at or offset: PostHog would
// otherwise shift every event by the spool delay, and retries would not be
// byte-identical (which PostHog's uuid+timestamp deduplication relies on).
//
// The rules follow capture-rs, rust/capture in github.com/PostHog/posthog.
package capture

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Body limits of capture-rs (router.rs): /batch takes large server-SDK
// batches, every other route a browser-sized payload.
const (
	BatchBodyLimit = 20 << 20
	EventBodyLimit = 2 << 20
)

// DefaultMaxEventBytes is used when Options.MaxEventBytes is zero: PostHog's
// Kafka producer refuses messages over 1 MB, so bigger events would be
// accepted here only to be dropped upstream.
const DefaultMaxEventBytes = 1_000_000

// Route reports whether path is a capture endpoint (with or without a
// trailing slash) and the body limit PostHog applies to it.
func Route(path string) (limit int64, ok bool) {
	switch strings.TrimSuffix(path, "/") {
	case "/batch":
		return BatchBodyLimit, true
	case "/e", "/i/v0/e", "/capture", "/track", "/engage":
		return EventBodyLimit, true
	}
	return 0, false
}

// Request is the part of one HTTP request that capture needs.
type Request struct {
	Method string // POST or GET (GET carries ?data=)
	Path   string
	Query  url.Values
	Header http.Header // Content-Encoding, Content-Type
	Body   []byte      // raw body as received, already bounded by the route limit
	Now    time.Time   // server receive time, for clock-skew correction
	// Reserve, when set, is told of every allocation decoding makes that
	// grows with the payload (decompression, the normalised events), before
	// it is made; its error is returned as is.
	Reserve Reserve
}

// Options is the agent's ingest policy.
type Options struct {
	// DefaultToken is the configured project key, used when the request
	// carries none ("" = none, and such a request gets 401).
	DefaultToken string
	// AllowedTokens, when non-empty, is the only set of tokens accepted.
	AllowedTokens map[string]bool
	// MaxEventBytes bounds each normalised event; 0 means DefaultMaxEventBytes.
	MaxEventBytes int
	// FlagProperties, when set, is asked for the feature-flag properties of
	// events that carry "send_feature_flags": true (the SDKs' capture
	// option): it gets the event's distinct id and $groups and returns
	// properties to add ($feature/<key>, $active_feature_flags) as the inside
	// of a JSON object ("" adds nothing). The agent answers it as the SDKs'
	// send_feature_flags does: local evaluation, else PostHog's /flags
	// (bounded by [flags] remote_timeout, failing fast while PostHog is
	// unreachable), else PostHog's last answer from the answer cache.
	FlagProperties func(distinctID string, groups map[string]string) string
}

// Batch is an accepted request. It may hold zero events when every event was
// one PostHog drops silently ($performance_event); the producer still gets
// success, as from PostHog.
type Batch struct {
	Token               string
	HistoricalMigration bool
	// Events are normalised JSON objects, ready to send upstream as they
	// are. They share one backing array; each has its capacity capped, so
	// appending to one cannot overwrite the next.
	Events [][]byte
	// DuplicateUUIDs counts events left out of a v0 batch because an
	// earlier event of the same batch has their uuid (see firstOfEachUUID).
	DuplicateUUIDs int
}

// Error is a refusal, with the status PostHog would answer (400, 401, 404
// for a path that is not a capture route, 413) and a message naming the
// problem and the input.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

func errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Message: fmt.Sprintf(format, args...)}
}

// Decode decodes, validates and normalises the events of one request.
// Every error it returns is an *Error, except r.Reserve's, returned as is.
func Decode(r Request, opt Options) (Batch, error) {
	limit, ok := Route(r.Path)
	if !ok {
		return Batch{}, errorf(http.StatusNotFound, "%q is not a capture endpoint (use /batch/, /e/, /i/v0/e/, /capture/, /track/ or /engage/)", r.Path)
	}
	payload, err := payloadOf(r, limit)
	if err != nil {
		return Batch{}, err
	}
	if err := r.Reserve.take(DecodeCopies * int64(len(payload))); err != nil {
		return Batch{}, err
	}
	req, err := parseRequest(payload, isEngagePath(r.Path))
	if err != nil {
		return Batch{}, err
	}
	if len(req.events) == 0 {
		return Batch{}, errorf(http.StatusBadRequest, "empty batch: the request has no events")
	}
	// capture-rs filters $performance_event before it looks at tokens, so
	// a request of only those succeeds whatever its token.
	kept := req.events[:0]
	for i := range req.events {
		if !req.events[i].isPerformanceEvent() {
			kept = append(kept, req.events[i])
		}
	}
	req.events = kept
	if len(req.events) == 0 {
		return Batch{HistoricalMigration: req.historical}, nil
	}
	var dups int
	req.events, dups = firstOfEachUUID(req.events)
	token, err := resolveToken(&req, opt)
	if err != nil {
		return Batch{}, err
	}
	now := r.now()
	if !req.hasSentAt {
		req.sentAt, req.hasSentAt = querySentAt(r.Query)
	}
	events, err := normalise(&req, now, opt)
	if err != nil {
		return Batch{}, err
	}
	return Batch{Token: token, HistoricalMigration: req.historical, Events: events, DuplicateUUIDs: dups}, nil
}

// now is the receive time, the clock's when the caller gave none.
func (r Request) now() time.Time {
	if r.Now.IsZero() {
		return time.Now()
	}
	return r.Now
}

func (o Options) maxEventBytes() int {
	if o.MaxEventBytes <= 0 {
		return DefaultMaxEventBytes
	}
	return o.MaxEventBytes
}

func isEngagePath(path string) bool {
	return strings.TrimSuffix(path, "/") == "/engage"
}
