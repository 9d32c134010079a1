package forwarder

import (
	"context"
	"sync"
	"time"

	"github.com/hogrelay/hogrelay/internal/retry"
)

// gate is what every lane passes before each send. While PostHog is
// healthy it is open. After a failure it holds every lane until the wait is
// over (the backoff, at least Retry-After); then, while the failure streak
// lasts, it lets exactly one lane through with a small probe request, so a
// long outage costs PostHog one small request per interval per agent, and
// the first accepted probe reopens it for all. The interval grows from
// backoff_initial to backoff_max (seconds, so recovery is seen within
// seconds after an outage of any length), with full jitter so a fleet does
// not probe in step.
type gate struct {
	mu      sync.Mutex
	until   time.Time // no send starts before this (Retry-After, backoff)
	failing bool      // a failure streak: only probes go out
	probing bool      // a probe is in flight
	auth    bool      // the streak is PostHog refusing the key
	limited bool      // a 429 streak: lanes pause, then all resume
	bo      *retry.Backoff
	policy  retry.Policy
	changed changes
	clk     *clock
	// wake cuts the current wait short (Wake: an operator's retry, a reload).
	wake chan struct{}
}

func newGate(p retry.Policy, clk *clock) *gate {
	return &gate{policy: p, bo: p.Start(), changed: newChanges(), clk: clk, wake: make(chan struct{}, 1)}
}

// setPolicy applies reloaded backoff settings from the next streak on.
func (g *gate) setPolicy(p retry.Policy) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.policy = p
	if !g.failing {
		g.bo = p.Start()
	}
}

// pass blocks until this lane may send. probe reports that it is the one
// lane allowed through during a failure streak: it must send a small
// request and report back with ok or failed. The error is ctx's.
func (g *gate) pass(ctx context.Context) (probe bool, err error) {
	for {
		g.mu.Lock()
		now := g.clk.now()
		wait := g.until.Sub(now)
		switch {
		case wait <= 0 && !g.failing:
			g.mu.Unlock()
			return false, nil
		case wait <= 0 && !g.probing:
			g.probing = true
			g.mu.Unlock()
			return true, nil
		}
		changed := g.changed
		g.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-changed:
		case <-g.clk.timer(wait):
		case <-g.wake:
			g.mu.Lock()
			g.until = time.Time{}
			g.changed.broadcast()
			g.mu.Unlock()
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
	}
}

// ok reports an answer that shows PostHog is taking requests: the streak is
// over and every lane goes. A Retry-After still in force is kept.
func (g *gate) ok(probe bool) (recovered bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if probe {
		g.probing = false
	}
	recovered = g.failing
	if g.failing || g.limited {
		g.failing, g.auth, g.limited = false, false, false
		g.bo = g.policy.Start()
		g.changed.broadcast()
	}
	return recovered
}

// rateLimited reports a 429: PostHog is up and asks for less. Every lane
// pauses and then resumes, without probing (a one-event probe would spend
// a request of PostHog's rate on one event); the concurrency controller
// has already cut the limit. The pause is the Retry-After PostHog gave,
// plus up to a quarter more so a fleet told the same thing does not return
// in step; without one it is the streak's next backoff. A 429 to a probe
// ends a failure streak the same way: PostHog is answering again, and the
// limit, not one-event probes, is what paces a rate-limited agent (a
// second backoff on top of the cut limit left PostHog's capacity unused
// for seconds in the fleet benchmark). Refusals of requests that were in
// flight together count once. recovered reports that a failure streak
// ended.
func (g *gate) rateLimited(probe bool, retryAfter time.Duration) (wait time.Duration, recovered bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.clk.now()
	if probe {
		g.probing = false
		recovered = g.failing
		g.failing, g.auth = false, false
	}
	if recovered || !g.until.After(now) {
		g.limited = true
		var d time.Duration
		if retryAfter > 0 {
			d = retry.After(retryAfter)
		} else {
			d = g.bo.Next(0) // the streak's backoff only when PostHog gave no wait
		}
		g.until = laterOf(g.until, now.Add(d))
		g.changed.broadcast()
	}
	return g.until.Sub(now), recovered
}

// failed reports a retryable failure. The first failure of a streak, and
// each failed probe, takes the next backoff step; failures of requests that
// were already in flight only make Retry-After felt. It returns the wait.
func (g *gate) failed(probe bool, retryAfter time.Duration) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.clk.now()
	if probe {
		g.probing = false
	}
	if probe || !g.failing {
		g.failing = true
		g.until = laterOf(g.until, now.Add(g.bo.Next(retryAfter)))
	} else if retryAfter > 0 {
		g.until = laterOf(g.until, now.Add(min(retryAfter, retry.MaxRetryAfter)))
	}
	g.changed.broadcast()
	return g.until.Sub(now)
}

// authFailed holds every lane for d: PostHog refused the key, which no
// amount of retrying fixes soon.
func (g *gate) authFailed(probe bool, d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if probe {
		g.probing = false
	}
	g.failing, g.auth = true, true
	g.until = laterOf(g.until, g.clk.now().Add(d))
	g.changed.broadcast()
}

// state is for Status: whether a streak is on, whether it is auth, and
// until when lanes are held.
func (g *gate) state() (failing, auth bool, until time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.failing, g.auth, g.until
}

func laterOf(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
