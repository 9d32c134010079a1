package forwarder

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// step is one completed request fed to the controller: the round trip, the
// outcome, and whether every slot was taken when it started.
type step struct {
	rtt  time.Duration
	o    outcome
	full bool
}

func ok(ms int) step {
	return step{rtt: time.Duration(ms) * time.Millisecond, o: outcomeSuccess, full: true}
}
func okIdle(ms int) step { return step{rtt: time.Duration(ms) * time.Millisecond, o: outcomeSuccess} }
func pressure(ms int) step {
	return step{rtt: time.Duration(ms) * time.Millisecond, o: outcomeBackPressure, full: true}
}
func neutral(ms int) step {
	return step{rtt: time.Duration(ms) * time.Millisecond, o: outcomeNeutral, full: true}
}
func repeat(n int, s step) []step {
	out := make([]step, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// drive runs steps one after another, each a whole interval (the clock
// moves on by the round trip), as a lane that keeps the limit busy would.
func drive(c *controller, steps []step) {
	now := c.lastStart.Add(time.Hour) // after anything the controller has seen
	if c.lastStart.IsZero() {
		now = time.Unix(1_700_000_000, 0)
	}
	for _, s := range steps {
		if s.full {
			c.inFlight = c.slots() - 1
		} else {
			c.inFlight = 0
		}
		if w := c.wait(now); w > 0 { // paced below a limit of one
			now = now.Add(w)
		}
		c.started(now)
		now = now.Add(s.rtt)
		c.record(now, s.rtt, s.o, s.full)
		c.release()
	}
}

func TestControllerDecisions(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start float64
		max   int
		steps []step
		want  float64
		slow  bool // still in slow start (no decrease seen yet)
	}{
		{"slow start adds one per fast 2xx while batches wait", 1, 16, repeat(4, ok(100)), 5, true},
		{"slow start needs demand to grow", 2, 16, repeat(4, okIdle(100)), 2, true},
		{"slow start stops at max_in_flight", 1, 10, repeat(10, ok(100)), 10, true},
		{"back pressure ends slow start: then one at a time", 10, 16, append(append(repeat(1, ok(100)), pressure(100)), repeat(3, ok(100))...), 10, true},
		{"starts at one", 1, 16, nil, 1, false},
		{"grows by one per interval on fast 2xx at the limit", 1, 16, repeat(6, ok(100)), 6, false},
		{"never beyond max_in_flight", 1, 4, repeat(20, ok(100)), 4, false},
		{"max_in_flight 1 stays at one", 1, 1, repeat(20, ok(100)), 1, false},
		{"no growth without demand (limit not reached)", 2, 16, repeat(10, okIdle(100)), 2, false},
		{"429/503/timeouts take 30% off", 10, 16, append(repeat(1, ok(100)), pressure(100)), 7, false},
		{"repeated back pressure goes below one (pacing)", 1, 16, append(repeat(1, ok(100)), repeat(2, pressure(100))...), 0.49, false},
		{"back pressure bottoms out", 1, 16, append(repeat(1, ok(100)), repeat(50, pressure(100))...), minLimit, false},
		{"below one in slow start, fast 2xx double it back", 0.125, 16, repeat(4, ok(100)), 1, true},
		{"below one after congestion, fast 2xx add a sixteenth", 0.125, 16, repeat(4, ok(100)), 0.3125, false},
		{"a clear rise in latency takes 10% off", 10, 16, append(repeat(8, okIdle(100)), okIdle(400)), 9, false},
		{"a round trip just above the mean still grows (a steady link's noise)", 5, 16, []step{ok(100), ok(102), ok(102)}, 7, false},
		{"a round trip 5-10% above the mean holds", 5, 16, []step{ok(100), ok(107)}, 5, false},
		{"jitter within 10% of the mean is not congestion", 5, 16, []step{ok(100), okIdle(105), okIdle(95), okIdle(108), okIdle(100)}, 5, false},
		{"a 400 says nothing about load", 5, 16, append(repeat(1, ok(100)), repeat(5, neutral(100))...), 5, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newController(tc.max)
			c.limit, c.slowStart = tc.start, tc.slow
			drive(c, tc.steps)
			require.InDelta(t, tc.want, c.limit, 1e-9)
		})
	}
}

// TestControllerSlowStartDoublesPerRoundTrip drives whole windows, as a
// backlog does: every slot is taken, and all of a window's answers come in
// about one round trip later.
func TestControllerSlowStartDoublesPerRoundTrip(t *testing.T) {
	c := newController(16)
	now := time.Unix(1_700_000_000, 0)
	var limits []float64
	for range 5 {
		n := c.slots()
		for range n {
			c.started(now)
		}
		now = now.Add(100 * time.Millisecond)
		for range n {
			c.record(now, 100*time.Millisecond, outcomeSuccess, true)
			c.release()
		}
		limits = append(limits, c.limit)
	}
	require.Equal(t, []float64{2, 4, 8, 16, 16}, limits)
}

func TestControllerLatencyAloneNeverGoesBelowOne(t *testing.T) {
	c := newController(16)
	c.pastMean, c.havePast = 0.1, true
	c.decide(0.4, true)
	require.Equal(t, 1.0, c.limit)
	c.limit = 1.5
	c.decide(0.4, true)
	require.Equal(t, 1.35, c.limit)
}

func TestControllerSlotsAndPacing(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	c := newController(16)
	c.limit = 3.7
	require.Equal(t, 3, c.slots(), "a fractional limit rounds down")
	c.inFlight = 3
	require.Equal(t, time.Duration(-1), c.wait(now), "every slot taken")
	c.inFlight = 2
	require.Zero(t, c.wait(now))

	// Below one: one lane, and starts spaced RTT/limit apart.
	c = newController(16)
	c.started(now)
	c.record(now.Add(100*time.Millisecond), 100*time.Millisecond, outcomeSuccess, false)
	c.release()
	c.limit = 0.25
	c.started(now)
	c.release()
	require.Equal(t, 400*time.Millisecond, c.wait(now))
	require.Equal(t, 100*time.Millisecond, c.wait(now.Add(300*time.Millisecond)))
	require.Zero(t, c.wait(now.Add(400*time.Millisecond)))
}

func TestControllerRecoversToOneAfterAnOutage(t *testing.T) {
	c := newController(16)
	drive(c, append(repeat(1, ok(50)), repeat(30, pressure(50))...))
	require.Equal(t, minLimit, c.limit)
	c.recovered(false)
	require.Equal(t, 1.0, c.limit, "the first accepted probe restarts at one request in flight")
	require.True(t, c.slowStart, "an accepted probe slow-starts again")
	drive(c, repeat(3, ok(50)))
	require.Equal(t, 4.0, c.limit)
	c.setMax(2)
	require.Equal(t, 2.0, c.limit, "a lowered max_in_flight applies at once")
}

func TestControllerRecoveredByA429GrowsOneAtATime(t *testing.T) {
	c := newController(16)
	drive(c, append(repeat(1, ok(50)), repeat(30, pressure(50))...))
	c.recovered(true)
	require.Equal(t, 1.0, c.limit)
	require.False(t, c.slowStart, "PostHog answered, but asked for less")
	drive(c, repeat(3, ok(50)))
	require.Equal(t, 4.0, c.limit, "one per round trip")
	drive(c, repeat(1, pressure(50)))
	require.InDelta(t, 2.8, c.limit, 1e-9)
}
