package forwarder

import (
	"math"
	"time"
)

// controller decides how many /batch/ requests may be in flight: additive
// increase, multiplicative decrease, judged once per interval (about one
// round trip), as Vector's adaptive request concurrency does:
//
//   - grow by one when, during the interval, the limit was reached (there
//     was demand for more), no answer signalled back pressure, and the mean
//     round trip was no worse than the long-run mean (an EWMA);
//   - shrink when an answer signalled back pressure (429, 503 and other 5xx,
//     timeouts, network errors), or when the mean round trip rose above the
//     long-run mean by more than 2.5 standard deviations.
//
// Two things differ from Vector, both for a fleet of agents sharing one
// PostHog that limits requests per second rather than concurrency: back
// pressure takes 30 % off (Vector takes 10 %; a rate limit needs the fleet
// to back off faster than it grows), and the limit may fall below one,
// which paces a single lane (one request per RTT/limit) instead of sending
// back to back; below one, growth adds a sixteenth per interval. The
// numbers come from the fleet benchmark (bench/fleet_test.go: 20 agents
// against a PostHog with a fixed request rate): halving the limit left a
// third of the capacity unused; 0.6 instead of 0.7 changed nothing; an
// eighth per interval had 24-26 % of requests refused, a sixteenth 18-21 %
// with the same drain time, a thirty-second no better. Growth also needs
// the round trip not to have risen (see growTolerance). The latency signal
// alone never takes the limit below one: slow answers are not a refusal.
//
// And like TCP, it starts in slow start: until the first decrease, every
// fast 2xx to a request that found every slot taken adds one (so the limit
// doubles per round trip, judged per answer rather than per interval: a
// decision that waits for the interval's end slips by a whole round trip
// while only one or two requests are in flight), and a backlog on a long
// link reaches its speed within log2(max_in_flight) round trips; the first
// sign of congestion (back pressure or a rise in latency) ends it.
//
// An interval ends after a round trip or once a window's worth of answers
// (the limit, rounded up) has come in, whichever is first, for the same
// reason.
//
// It holds no lock and reads no clock; the caller serialises calls and
// passes the time, so its decisions are table-tested.
type controller struct {
	max   float64 // [forwarder] max_in_flight
	limit float64

	inFlight     int
	slowStart    bool // no decrease yet: each fast answer adds one
	reachedLimit bool // a request started with every slot taken
	backPressure bool // an answer in this interval said "slow down"
	answers      int  // answers in this interval, of any kind

	// past is the EWMA of per-interval mean round trips; cur collects this
	// interval's successful round trips.
	pastMean, pastVar float64
	havePast          bool
	curSum            float64
	curN              int
	nextUpdate        time.Time
	lastStart         time.Time
}

const (
	ewmaAlpha            = 0.4 // Vector's default weight of a new interval
	rttDeviationScale    = 2.5 // Vector's default
	backPressureDecrease = 0.7
	latencyDecrease      = 0.9 // Vector's default decrease ratio
	minLimit             = 1.0 / 32
	pacedStep            = 1.0 / 16
	// A rise of less than this share of the mean is noise even when the
	// variance is tiny (a steady link makes the deviation near zero, and
	// then every scheduler hiccup would read as congestion).
	minRiseShare = 0.1
	// Growth needs the interval's mean round trip within this share of the
	// long-run mean (or one standard deviation, if larger). Vector asks
	// for no more than the mean, but on a steady link half the intervals
	// land just above it by chance, which halves the rate of growth for
	// nothing; a rise between this and minRiseShare holds the limit.
	growTolerance = 0.03
)

func newController(maxInFlight int) *controller {
	return &controller{max: float64(max(maxInFlight, 1)), limit: 1, slowStart: true}
}

// setMax applies a reloaded max_in_flight.
func (c *controller) setMax(maxInFlight int) {
	c.max = float64(max(maxInFlight, 1))
	c.limit = math.Min(c.limit, c.max)
}

// slots is how many requests may be in flight at once.
func (c *controller) slots() int { return max(1, int(c.limit)) }

// wait is how long a new request must wait before it may start: 0 when it
// may start now, -1 when every slot is taken (wait for a completion).
func (c *controller) wait(now time.Time) time.Duration {
	if c.inFlight >= c.slots() {
		return -1
	}
	if c.limit < 1 && c.havePast && !c.lastStart.IsZero() {
		// Paced: one request per RTT/limit, i.e. in flight limit of the time.
		gap := time.Duration(c.pastMean / c.limit * float64(time.Second))
		if d := c.lastStart.Add(gap).Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

func (c *controller) started(now time.Time) {
	c.inFlight++
	c.lastStart = now
	if c.inFlight >= c.slots() {
		c.reachedLimit = true
	}
}

// outcome is what an answer tells the controller.
type outcome int

const (
	outcomeSuccess      outcome = iota // 2xx: a valid round-trip sample
	outcomeBackPressure                // 429, 5xx, timeout, network error
	outcomeNeutral                     // answered, but says nothing about load (400, 413, 401, 3xx)
)

// release frees the slot of a lane that is done sending.
func (c *controller) release() { c.inFlight-- }

// record takes one answer (a lane holds its slot across its retries, so
// this is per request, not per slot) and, once per interval, decides.
// queued says whether batches are ready and waiting for a slot: in slow
// start that is the demand that lets an answer add one.
func (c *controller) record(now time.Time, rtt time.Duration, o outcome, queued bool) {
	c.answers++
	switch o {
	case outcomeSuccess:
		c.curSum += rtt.Seconds()
		c.curN++
		if c.slowStart && c.limit >= 1 && c.limit < c.max && (queued || c.reachedLimit) && !c.backPressure {
			c.limit = math.Min(c.max, math.Floor(c.limit)+1)
		}
	case outcomeBackPressure:
		c.backPressure = true
	}
	if !c.havePast {
		if c.curN > 0 {
			c.pastMean, c.havePast = c.curSum/float64(c.curN), true
			c.endInterval(now)
		} else if c.backPressure {
			c.decide(0, false)
			c.endInterval(now)
		}
		return
	}
	if now.Before(c.nextUpdate) && c.answers < int(math.Ceil(c.limit)) {
		return
	}
	var cur float64
	if c.curN > 0 {
		cur = c.curSum / float64(c.curN)
	}
	c.decide(cur, c.curN > 0)
	if c.curN > 0 {
		c.observe(cur)
	}
	c.endInterval(now)
}

// decide is one AIMD step.
func (c *controller) decide(cur float64, haveCur bool) {
	threshold := math.Max(math.Sqrt(c.pastVar)*rttDeviationScale, c.pastMean*minRiseShare)
	switch {
	case c.backPressure:
		c.limit = math.Max(minLimit, c.limit*backPressureDecrease)
		c.slowStart = false
	case haveCur && cur >= c.pastMean+threshold && c.limit > 1:
		c.limit = math.Max(1, c.limit*latencyDecrease)
		c.slowStart = false
	case c.slowStart && c.limit >= 1:
		// Grown per answer in record.
	case c.limit < c.max && c.reachedLimit && haveCur && cur <= c.pastMean+math.Max(math.Sqrt(c.pastVar), c.pastMean*growTolerance):
		switch {
		case c.limit < 1 && c.slowStart:
			c.limit = math.Min(1, c.limit*2)
		case c.limit < 1:
			// Paced, after congestion: the additive step in the same
			// units (a sixteenth of one request's time), so a fleet that
			// PostHog rate-limits converges instead of doubling past its
			// share and being refused again.
			c.limit = math.Min(1, c.limit+pacedStep)
		default:
			c.limit = math.Min(c.max, math.Floor(c.limit)+1)
		}
	}
}

// observe folds one interval's mean into the EWMA mean and variance.
func (c *controller) observe(x float64) {
	diff := x - c.pastMean
	incr := ewmaAlpha * diff
	c.pastMean += incr
	c.pastVar = (1 - ewmaAlpha) * (c.pastVar + diff*incr)
}

func (c *controller) endInterval(now time.Time) {
	c.curSum, c.curN, c.answers = 0, 0, 0
	c.backPressure, c.reachedLimit = false, false
	gap := c.pastMean
	if c.limit < 1 {
		gap /= c.limit // at least one paced request per interval
	}
	c.nextUpdate = now.Add(time.Duration(gap * float64(time.Second)))
}

// recovered restarts the flow after an outage at no less than one request
// in flight: what was learnt while PostHog was down says nothing about its
// capacity now. Recovered by an accepted request, it slow-starts again
// (like TCP after a timeout), so one agent back from an outage is at the
// link's speed within a few round trips; recovered by a 429 (PostHog is up
// but asks for less), it grows one request per round trip from one.
func (c *controller) recovered(limited bool) {
	c.limit = math.Max(c.limit, 1)
	c.slowStart = !limited
}
