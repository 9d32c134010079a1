package api

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// decodeBudget is a weighted semaphore on the bytes of request bodies being
// read and decoded at once: the wire buffer, every decompression layer and
// the normalised events (capture.Reserve). Peak memory then follows the
// budget instead of the number of producers and how well their bodies
// compress. A request that cannot get its bytes within wait is refused with
// 503 and Retry-After; nothing of it was stored.
type decodeBudget struct {
	size int64
	wait time.Duration

	mu    sync.Mutex
	used  int64
	freed chan struct{} // closed (and replaced) whenever bytes are given back
}

func newDecodeBudget(size int64, wait time.Duration) *decodeBudget {
	return &decodeBudget{size: size, wait: wait, freed: make(chan struct{})}
}

// errBudget is a request the budget could not take.
type errBudget struct {
	size   int64
	tooBig bool // the request alone needs more than the whole budget
}

func (e *errBudget) Error() string {
	if e.tooBig {
		return fmt.Sprintf("decoding this request needs more than the agent's decode budget of %d bytes ([ingest] max_decode_bytes); send smaller batches", e.size)
	}
	return fmt.Sprintf("the agent is decoding %d bytes of other requests already ([ingest] max_decode_bytes); retry shortly", e.size)
}

// claim is one request's share of the budget; release gives it all back.
type claim struct {
	b        *decodeBudget
	ctx      context.Context
	deadline time.Time
	held     int64
	// prepaid is reserved and not yet used: reserve spends it first. A
	// request whose size is known takes all it will need in one go, so
	// requests never hold part of the budget while waiting for the rest.
	prepaid int64
}

// prepay reserves n bytes that later reserve calls spend.
func (c *claim) prepay(n int64) error {
	if c == nil || c.b == nil || n <= 0 {
		return nil
	}
	n = min(n, c.b.size-c.held) // a large request may still have the whole budget
	if err := c.take(n); err != nil {
		return err
	}
	c.prepaid += n
	return nil
}

func (b *decodeBudget) claim(ctx context.Context) *claim {
	return &claim{b: b, ctx: ctx}
}

// reserve takes n more bytes, waiting (for at most the budget's wait over
// the whole request) while others hold them.
func (c *claim) reserve(n int64) error {
	if c == nil || c.b == nil || n <= 0 {
		return nil
	}
	if c.prepaid > 0 {
		used := min(n, c.prepaid)
		c.prepaid -= used
		n -= used
		if n == 0 {
			return nil
		}
	}
	return c.take(n)
}

func (c *claim) take(n int64) error {
	b := c.b
	if c.held+n > b.size {
		return &errBudget{size: b.size, tooBig: true}
	}
	if c.deadline.IsZero() {
		c.deadline = time.Now().Add(b.wait)
	}
	for {
		b.mu.Lock()
		if b.used+n <= b.size {
			b.used += n
			b.mu.Unlock()
			c.held += n
			return nil
		}
		freed := b.freed
		b.mu.Unlock()
		wait := time.Until(c.deadline)
		if wait <= 0 {
			return &errBudget{size: b.size}
		}
		t := time.NewTimer(wait)
		select {
		case <-freed:
			t.Stop()
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
			return c.ctx.Err()
		}
	}
}

// release gives back everything the request held.
func (c *claim) release() {
	if c == nil || c.b == nil || c.held == 0 {
		return
	}
	b := c.b
	b.mu.Lock()
	b.used -= c.held
	close(b.freed)
	b.freed = make(chan struct{})
	b.mu.Unlock()
	c.held, c.prepaid = 0, 0
}

// inUse is the bytes held right now (a metric).
func (b *decodeBudget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
