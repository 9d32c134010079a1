package logging

import (
	"sync"
	"time"
)

// Burst lets one log line through per window and counts the rest, so a
// condition that repeats on every request (a full disk refusing every
// producer) shows as one line per burst saying how many were left out, not
// as a line per request. The zero value lets every line through; set Window.
type Burst struct {
	Window time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// Allow reports whether to log now and, if so, how many lines were left out
// since the last one let through (log it as suppressed_since_last).
func (b *Burst) Allow() (ok bool, suppressed int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if !b.last.IsZero() && now.Sub(b.last) < b.Window {
		b.suppressed++
		return false, 0
	}
	b.last = now
	suppressed, b.suppressed = b.suppressed, 0
	return true, suppressed
}
