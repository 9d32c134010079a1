package forwarder

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/hogrelay/hogrelay/spool"
)

// probeEvents is the size of the request that tests the water while
// PostHog is failing: one event, so a fleet of probing agents costs PostHog
// little, and an accepted probe is still a delivery.
const probeEvents = 1

// refusedAloneLimit: this many refusals in a row with the same answer and
// nothing accepted in between, ending in a single event refused alone,
// mean PostHog (or a proxy, or a wrong host) refuses everything, not that
// the events are bad. Bisecting a 1,000-event batch where every event is
// refused takes 10 refusals to reach the first single event; a batch with
// a few bad events sees an accepted half at almost every step.
const refusedAloneLimit = 8

type batch struct {
	token      string
	historical bool
}

// action is what a lane does with an answer.
type action int

const (
	actAccepted   action = iota // 2xx: the events are PostHog's
	actSplit                    // 400/413 for several events: halve and send each half
	actDeadLetter               // 400/413 for one event alone: PostHog refuses it for good
	actRetry                    // 408, 429, 5xx, 3xx, network: keep, wait, send again
	actAuth                     // 401/403: the key is refused; hold every lane
)

// classify maps an answer for n events to an action.
func classify(res result, n int) action {
	switch {
	case res.ok():
		return actAccepted
	case res.status == http.StatusRequestEntityTooLarge || res.status == http.StatusBadRequest:
		if n == 1 {
			return actDeadLetter
		}
		return actSplit
	case res.status == http.StatusUnauthorized || res.status == http.StatusForbidden:
		return actAuth
	default:
		return actRetry
	}
}

// deliverChunk sends events until each one is accepted or dead; it returns
// the dead ones. body, when not nil, is events already encoded. The error
// is non-nil only when ctx ended first.
//
// An event refused alone is only a suspect until its batch is sorted out:
// if, meanwhile, PostHog turned out to refuse everything (holdRefused),
// the suspects were not poison and are sent again; otherwise they are
// dead-lettered. Without this, the first event of a batch would be
// dead-lettered before the second one, refused too, showed the pattern.
func (f *Forwarder) deliverChunk(ctx context.Context, b batch, events [][]byte, body []byte) ([]spool.DeadEvent, error) {
	for {
		var t tally
		if err := f.deliverPart(ctx, b, events, body, &t); err != nil {
			return nil, err
		}
		if !t.held || len(t.suspects) == 0 {
			dead := make([]spool.DeadEvent, 0, len(t.suspects))
			for _, s := range t.suspects {
				dead = append(dead, f.deadLetter(b, s.event, s.res))
			}
			return dead, nil
		}
		events, body = events[:0:0], nil
		for _, s := range t.suspects {
			events = append(events, s.event)
		}
	}
}

// tally is what one batch's bisection learnt.
type tally struct {
	suspects []suspect
	held     bool // PostHog refused everything at some point meanwhile
}

type suspect struct {
	event []byte
	res   result
}

func (f *Forwarder) deliverPart(ctx context.Context, b batch, events [][]byte, body []byte, t *tally) error {
	for len(events) > 0 {
		probe, err := f.gate.pass(ctx)
		if err != nil {
			return err
		}
		part := events
		if probe && len(part) > probeEvents {
			part, body = part[:probeEvents], nil
		}
		if body == nil {
			body = encode(b, part)
		}
		o := f.options()
		res := f.send(ctx, o, body, len(part))
		body = nil
		if ctx.Err() != nil {
			return ctx.Err()
		}
		switch classify(res, len(part)) {
		case actAccepted:
			f.accepted(probe, len(part))
		case actSplit:
			f.gate.ok(probe) // PostHog answered: it is up
			if f.noteRefusal(res) {
				t.held = true
			}
			f.log.Debug().Int("status", res.status).Int("events", len(part)).Msg("batch refused; splitting it in two")
			mid := len(part) / 2
			for _, half := range [][][]byte{part[:mid], part[mid:]} {
				if err := f.deliverPart(ctx, b, half, nil, t); err != nil {
					return err
				}
			}
		case actDeadLetter:
			if f.noteRefusal(res) {
				t.held = true
				f.holdRefused(probe, res)
				continue // keep it: the upstream is the problem
			}
			f.gate.ok(probe)
			t.suspects = append(t.suspects, suspect{event: part[0], res: res})
		case actRetry:
			f.retryLater(probe, res, len(part))
			continue
		case actAuth:
			f.authRefused(probe, res, o.AuthRetryInterval)
			continue
		}
		events = events[len(part):]
	}
	return nil
}

// accepted: PostHog took n events.
func (f *Forwarder) accepted(probe bool, n int) {
	recovered := f.gate.ok(probe)
	if recovered {
		f.limiter.recovered(false)
	}
	now := f.clk.now()
	f.drained.add(now, n)
	f.mu.Lock()
	recovered = recovered || f.status.ConsecutiveFail > 0
	f.status.ConsecutiveFail = 0
	f.status.LastSuccess = now
	f.status.EventsForwarded += uint64(n)
	f.status.Batches++
	wasHolding := f.refused.holding
	f.refused = refusalStreak{}
	f.mu.Unlock()
	f.metrics.events.Add(float64(n))
	if wasHolding {
		f.log.Warn().Msg("PostHog accepts events again after refusing every one; the events it refused were kept and are being sent")
	} else if recovered {
		f.log.Info().Msg("PostHog is accepting events again")
	}
}

func (f *Forwarder) deadLetter(b batch, event []byte, res result) spool.DeadEvent {
	f.noteError(res, "event refused by PostHog; moved to the dead-letter bucket")
	f.metrics.deadLettered.Inc()
	f.mu.Lock()
	f.status.DeadLettered++
	f.mu.Unlock()
	return spool.DeadEvent{Token: b.token, Historical: b.historical, Event: event,
		Reason: fmt.Sprintf("PostHog answered %d: %s", res.status, res.message)}
}

func (f *Forwarder) retryLater(probe bool, res result, n int) {
	var wait time.Duration
	if res.status == http.StatusTooManyRequests {
		var recovered bool
		if wait, recovered = f.gate.rateLimited(probe, res.retryAfter); recovered {
			f.limiter.recovered(true)
		}
	} else {
		wait = f.gate.failed(probe, res.retryAfter)
	}
	f.noteError(res, "sending to PostHog failed; will retry")
	f.countRetry()
	f.log.Debug().Dur("wait", wait).Int("status", res.status).Str("reason", res.message).Int("events", n).Bool("probe", probe).Msg("retrying batch")
}

func (f *Forwarder) authRefused(probe bool, res result, wait time.Duration) {
	f.noteError(res, "PostHog refused the project API key; keeping every event and retrying rarely. Check [posthog] api_key / the token producers send")
	f.gate.authFailed(probe, wait)
}

// refusalStreak counts 400/413 answers in a row with one answer and
// nothing accepted in between, across lanes.
type refusalStreak struct {
	answer  string
	n       int
	holding bool // the streak was judged an upstream problem
}

// noteRefusal counts a refusal and reports whether the refusals now look
// like an upstream that refuses everything.
func (f *Forwarder) noteRefusal(res result) bool {
	answer := fmt.Sprintf("%d %s", res.status, res.message)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refused.answer != answer {
		f.refused = refusalStreak{answer: answer}
	}
	f.refused.n++
	return f.refused.n >= refusedAloneLimit
}

// holdRefused keeps a refused event and backs off: PostHog refuses every
// event alone with the same answer, which no event can cause by itself.
func (f *Forwarder) holdRefused(probe bool, res result) {
	f.mu.Lock()
	first := !f.refused.holding
	f.refused.holding = true
	n := f.refused.n
	f.mu.Unlock()
	wait := f.gate.failed(probe, res.retryAfter)
	f.recordFailure(res.status, fmt.Sprintf("PostHog refuses every event, even alone (%d refusals in a row with %s, none accepted): "+
		"treating it as an upstream problem (a proxy? a wrong [posthog] host?), keeping the events and retrying; nothing is dead-lettered", n, res.message))
	f.countRetry()
	if first {
		f.log.Error().Int("status", res.status).Str("reason", res.message).Int("refusals", n).Dur("retry_in", wait).
			Msg("PostHog refuses every event, even alone: treating it as an upstream problem, keeping every event and retrying instead of dead-lettering the spool")
	}
}

// noteError records the failure for status and logs it: loudly at the start
// of a failure streak, at debug while it lasts, so a long outage does not
// flood the journal.
func (f *Forwarder) noteError(res result, msg string) {
	first := f.recordFailure(res.status, res.message)
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

// recordFailure counts one failure in status with its answer; first is the
// first of a streak.
func (f *Forwarder) recordFailure(status int, message string) (first bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status.ConsecutiveFail++
	f.status.LastError, f.status.LastErrorStatus, f.status.LastErrorAt = message, status, f.clk.now()
	return f.status.ConsecutiveFail == 1
}

// countRetry counts a send that will be retried, in status and metrics.
func (f *Forwarder) countRetry() {
	f.metrics.retries.Inc()
	f.mu.Lock()
	f.status.Retries++
	f.mu.Unlock()
}
