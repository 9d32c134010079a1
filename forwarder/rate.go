package forwarder

import (
	"sync"
	"time"
)

// rateWindow counts accepted events per second over the last minute, for
// the drain rate and the backlog estimate in status.
type rateWindow struct {
	mu      sync.Mutex
	start   time.Time
	buckets [60]uint64
	secs    [60]int64 // which second each bucket holds
}

func newRateWindow(now time.Time) *rateWindow { return &rateWindow{start: now} }

func (w *rateWindow) add(now time.Time, n int) {
	sec := now.Unix()
	i := sec % 60
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.secs[i] != sec {
		w.secs[i], w.buckets[i] = sec, 0
	}
	w.buckets[i] += uint64(n)
}

// rate is events per second over the last minute (or since start, if that
// is shorter), not counting the second in progress.
func (w *rateWindow) rate(now time.Time) float64 {
	sec := now.Unix()
	w.mu.Lock()
	defer w.mu.Unlock()
	var sum uint64
	for i := range w.buckets {
		if s := w.secs[i]; s < sec && s >= sec-60 {
			sum += w.buckets[i]
		}
	}
	span := min(60, now.Sub(w.start).Seconds())
	if span < 1 {
		return 0
	}
	return float64(sum) / span
}
