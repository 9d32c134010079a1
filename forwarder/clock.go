package forwarder

import "time"

// clock is shared by the forwarder, its gate and its limiter; tests replace
// it to skip waits and record them.
type clock struct {
	now   func() time.Time
	after func(time.Duration) <-chan time.Time
}

// timer fires after d, or never when d <= 0 (a nil channel in a select).
func (c *clock) timer(d time.Duration) <-chan time.Time {
	if d <= 0 {
		return nil
	}
	return c.after(d)
}

// changes is closed and replaced on every change of the state it goes
// with, so waiters select on it instead of polling. The owner's lock
// guards it.
type changes chan struct{}

func newChanges() changes { return make(changes) }

func (c *changes) broadcast() {
	close(*c)
	*c = make(changes)
}
