// Package testclock is the manual clock tests hand to code that reads the
// time through an injected func (a forwarder's backoff waits, the flag
// cache's fetch times and cooldowns), so that no test sleeps or depends on
// the machine's speed.
package testclock

import (
	"sync"
	"time"
)

// Clock is a manual clock, safe for concurrent use. Its time moves only when
// Advance or After is called.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a clock that reads start until it is advanced.
func New(start time.Time) *Clock { return &Clock{t: start} }

// Now is the clock's time; pass the method value where code takes a
// func() time.Time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock d forward and returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// After is a wait of d that is over at once: it advances the clock by d and
// returns a channel that already holds the new time, in the shape of
// time.After.
func (c *Clock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	ch <- c.Advance(d)
	return ch
}
