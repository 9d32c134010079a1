// Package retry is hogrelay's one backoff policy, used by the forwarder (its
// sends and its spool removals) and by the flag poller: capped exponential
// growth (github.com/cenkalti/backoff/v4), jitter, and a server's
// Retry-After as a floor that is itself capped. Each caller picks the
// numbers; the rules live here once.
package retry

import (
	"math/rand/v2"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// MaxRetryAfter caps how long a Retry-After header can park a caller, so a
// misconfigured proxy cannot silence the agent for days.
const MaxRetryAfter = 30 * time.Minute

// Policy describes the waits of one failure streak. The zero Jitter means
// none; 1 means full jitter (uniform in [0, d], which spreads a fleet of
// agents over the whole window); 0.1 means ±10 %.
type Policy struct {
	Initial time.Duration // the wait after the first failure, before jitter
	Max     time.Duration // cap on the exponential part (before jitter)
	Jitter  float64
	// Floor is the least wait after jitter, so full jitter never retries a
	// failing upstream in a tight loop.
	Floor time.Duration
}

// Backoff is one failure streak: each Next is longer (doubling up to Max)
// until Reset. Not safe for concurrent use; callers hold their own lock.
type Backoff struct {
	p    Policy
	exp  *backoff.ExponentialBackOff
	rand func() float64 // [0,1); tests fix it
}

// Start begins a streak.
func (p Policy) Start() *Backoff {
	exp := backoff.NewExponentialBackOff()
	// Jitter is applied here, in one place, not by the library.
	exp.InitialInterval, exp.MaxInterval, exp.Multiplier = min(p.Initial, p.Max), p.Max, 2
	exp.RandomizationFactor, exp.MaxElapsedTime = 0, 0
	exp.Reset()
	return &Backoff{p: p, exp: exp, rand: rand.Float64}
}

// Next is the wait before the next attempt: the exponential step, jittered,
// at least Floor, and at least retryAfter (capped at MaxRetryAfter).
func (b *Backoff) Next(retryAfter time.Duration) time.Duration {
	return b.finish(b.exp.NextBackOff(), retryAfter)
}

// Reset ends the streak: the next Next starts from Initial again.
func (b *Backoff) Reset() { b.exp.Reset() }

// Delay is the wait after the n-th consecutive failure (n ≥ 1), for callers
// that keep a failure count rather than a Backoff.
func (p Policy) Delay(n int, retryAfter time.Duration) time.Duration {
	b := p.Start()
	d := b.exp.NextBackOff()
	for i := 1; i < n && d < b.exp.MaxInterval; i++ {
		d = b.exp.NextBackOff()
	}
	return b.finish(d, retryAfter)
}

func (b *Backoff) finish(d, retryAfter time.Duration) time.Duration {
	d = jitter(d, b.p.Jitter, b.rand)
	d = max(d, b.p.Floor)
	return max(d, min(retryAfter, MaxRetryAfter))
}

// After is the wait a server's Retry-After asks for, capped at
// MaxRetryAfter, plus up to a quarter more (at most maxAfterSpread): agents
// told the same thing at the same moment (a rate-limited fleet) come back
// spread out, not in step, and never before the server asked.
func After(retryAfter time.Duration) time.Duration { return after(retryAfter, rand.Float64) }

// maxAfterSpread bounds After's spread, so a long Retry-After (an hour's
// maintenance) is not stretched by minutes.
const maxAfterSpread = 30 * time.Second

func after(retryAfter time.Duration, r func() float64) time.Duration {
	d := min(retryAfter, MaxRetryAfter)
	if d <= 0 {
		return 0
	}
	return d + time.Duration(r()*float64(min(d/4, maxAfterSpread)))
}

// Jitter spreads d by ±frac (frac < 1) or over [0, d] (frac ≥ 1).
func Jitter(d time.Duration, frac float64) time.Duration { return jitter(d, frac, rand.Float64) }

func jitter(d time.Duration, frac float64, r func() float64) time.Duration {
	switch {
	case frac <= 0 || d <= 0:
		return d
	case frac >= 1:
		return time.Duration(r() * float64(d+1))
	default:
		return d + time.Duration((r()*2-1)*frac*float64(d))
	}
}
