package forwarder

import (
	"context"
	"sync"
	"time"

	"github.com/hogrelay/hogrelay/spool"
)

// prefetch is how many batches beyond the concurrency limit are read and
// encoded ahead, so a lane that frees up finds its next batch gzipped.
const prefetch = 2

// maxHeldBytes bounds the events the forwarder holds in memory at once,
// read ahead or in flight (their gzipped bodies add a fraction more):
// max_in_flight batches of batch_max_bytes could otherwise reach gigabytes.
// At the defaults (1,000 events of ~1 KB per batch) the bound is far off;
// it bites only for batches of very large events, where it lowers the
// read-ahead and then the number in flight, never below one batch.
const maxHeldBytes = 64 << 20

// job is one read of the spool: whole records, so a record is removed
// exactly when every event in it is accepted or dead, whichever lanes
// carried its chunks and in whatever order they finished.
type job struct {
	seqs []uint64
	b    batch

	mu     sync.Mutex
	chunks int // chunks not yet finished
	dead   []spool.DeadEvent
}

// chunk is what one lane sends: at most batch_max_events and
// batch_max_bytes of one job.
type chunk struct {
	j      *job
	events [][]byte
	size   int    // the events' bytes
	ticket uint64 // its place in send order
}

// Run forwards until ctx is done. It returns nil on cancellation; records
// in flight at that moment stay in the spool and are sent again next time.
func (f *Forwarder) Run(ctx context.Context) error {
	var lanes sync.WaitGroup
	removals := make(chan removal, 64)
	removerDone := make(chan struct{})
	go func() { defer close(removerDone); f.remover(ctx, removals) }()
	defer func() {
		lanes.Wait()
		close(removals)
		<-removerDone
		f.mu.Lock()
		f.stopped = true
		f.mu.Unlock()
	}()
	var next, ticket uint64 // next seq to read; next chunk's place in send order
	compactChecked := false
	for {
		if err := f.limiter.awaitRoom(ctx); err != nil {
			return nil
		}
		o := f.options()
		recs, err := f.sp.NextFrom(next, o.BatchMaxEvents, o.BatchMaxBytes)
		if err != nil {
			f.log.Error().Err(err).Msg("reading the spool failed; retrying")
			if !f.sleep(ctx, o.BackoffInitial) {
				return nil
			}
			continue
		}
		if len(recs) == 0 {
			idle := f.limiter.idle()
			if idle && !compactChecked && o.CompactAbove > 0 {
				compactChecked = true
				if _, _, err := f.sp.CompactIfLarger(o.CompactAbove); err != nil {
					f.log.Error().Err(err).Msg("compacting the drained spool failed")
				}
			}
			select {
			case <-ctx.Done():
				return nil
			case <-f.sp.Notify():
			case <-f.wake:
			case <-f.limiter.changedWhile(!idle): // the last lane finishing: time to compact
			}
			continue
		}
		compactChecked = false
		next = recs[len(recs)-1].Seq + 1
		for _, c := range f.split(o, recs) {
			c.ticket = ticket
			ticket++
			f.limiter.addLane(c.size)
			lanes.Add(1)
			go func() {
				defer lanes.Done()
				f.lane(ctx, c, removals)
			}()
		}
	}
}

// split cuts a read into chunks by the configured bounds: one spool record
// can hold more than a batch when batch_max_events was lowered on a reload.
func (f *Forwarder) split(o Options, recs []spool.Record) []*chunk {
	j := &job{b: batch{token: recs[0].Token, historical: recs[0].Historical}}
	var events [][]byte
	for _, r := range recs {
		j.seqs = append(j.seqs, r.Seq)
		events = append(events, r.Events...)
	}
	var out []*chunk
	for len(events) > 0 {
		n, size := 0, 0
		for n < len(events) && n < o.BatchMaxEvents && (n == 0 || size+len(events[n])+1 <= o.BatchMaxBytes) {
			size += len(events[n]) + 1
			n++
		}
		out = append(out, &chunk{j: j, events: events[:n], size: size})
		events = events[n:]
	}
	j.chunks = len(out)
	return out
}

// lane encodes its chunk at once (while earlier lanes are still sending),
// waits for its turn and a free slot, delivers it, and when it was the
// job's last chunk hands the job's records to the remover.
func (f *Forwarder) lane(ctx context.Context, c *chunk, removals chan<- removal) {
	defer f.limiter.removeLane(c.size)
	body := encode(c.j.b, c.events)
	if err := f.limiter.acquire(ctx, c.ticket); err != nil {
		return
	}
	dead, err := f.deliverChunk(ctx, c.j.b, c.events, body)
	f.limiter.release()
	if err != nil { // cancelled: the records stay for the next start
		return
	}
	j := c.j
	j.mu.Lock()
	j.dead = append(j.dead, dead...)
	j.chunks--
	last := j.chunks == 0
	j.mu.Unlock()
	if last {
		select {
		case removals <- removal{seqs: j.seqs, dead: j.dead}:
		case <-ctx.Done(): // the records stay and are sent again next time
		}
	}
}

// removal is a finished job: its records leave the spool, its dead events
// go to the dead-letter bucket.
type removal struct {
	seqs []uint64
	dead []spool.DeadEvent
}

// remover deletes finished jobs from the spool, all that have queued up in
// one transaction: with several batches in flight they finish close
// together, and one commit (two fsyncs) for all of them keeps the removal
// from becoming the drain's bottleneck. It runs until removals is closed,
// so removals queued before a shutdown still happen.
func (f *Forwarder) remover(ctx context.Context, removals <-chan removal) {
	for r := range removals {
		seqs, dead := r.seqs, r.dead
	more:
		for {
			select {
			case next, ok := <-removals:
				if !ok {
					break more
				}
				seqs, dead = append(seqs, next.seqs...), append(dead, next.dead...)
			default:
				break more
			}
		}
		f.remove(ctx, seqs, dead)
	}
}

// remove deletes what PostHog took from the spool, retrying with backoff
// when the spool cannot be written (a full disk fails deletes too, as bbolt
// writes new pages to free old ones). It retries the delete rather than
// moving on, because moving on would resend the same events every time. It
// gives up when ctx ends first; those events are sent again after the next
// start, which PostHog drops by uuid.
func (f *Forwarder) remove(ctx context.Context, seqs []uint64, dead []spool.DeadEvent) {
	bo := f.options().policy().Start()
	for attempt := 1; ; attempt++ {
		err := f.sp.Done(seqs, dead)
		if err == nil {
			if attempt > 1 {
				f.log.Info().Int("attempts", attempt).Msg("removed sent events from the spool")
			}
			return
		}
		ev := f.log.Debug()
		if attempt == 1 {
			ev = f.log.Error()
		}
		ev.Err(err).Int("attempt", attempt).Msg("removing sent events from the spool failed (disk full?); retrying the removal, not the send")
		if !f.sleep(ctx, bo.Next(0)) {
			return
		}
	}
}

func (f *Forwarder) sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-f.clk.after(d):
		return true
	}
}

// limiter is the controller behind a lock, plus the lanes' bookkeeping:
// how many exist (read ahead, bounded by the limit plus prefetch, and by
// maxHeldBytes) and whose turn it is to start sending (send order is spool
// order).
type limiter struct {
	mu      sync.Mutex
	c       *controller
	lanes   int
	held    int // bytes of the lanes' events
	maxHeld int // maxHeldBytes; tests lower it
	turn    uint64
	changed changes
	clk     *clock
}

func newLimiter(maxInFlight int, clk *clock) *limiter {
	return &limiter{c: newController(maxInFlight), maxHeld: maxHeldBytes, changed: newChanges(), clk: clk}
}

// awaitRoom blocks while enough lanes exist for the current limit, or
// while they hold maxHeldBytes.
func (l *limiter) awaitRoom(ctx context.Context) error {
	for {
		l.mu.Lock()
		room := l.lanes == 0 || l.lanes < l.c.slots()+prefetch && l.held < l.maxHeld
		ch := l.changed
		l.mu.Unlock()
		if room {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

func (l *limiter) addLane(size int) {
	l.mu.Lock()
	l.lanes++
	l.held += size
	l.mu.Unlock()
}

func (l *limiter) removeLane(size int) {
	l.mu.Lock()
	l.lanes--
	l.held -= size
	l.changed.broadcast()
	l.mu.Unlock()
}

func (l *limiter) idle() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lanes == 0
}

// changedWhile returns the change channel when cond holds, else nil (a
// channel that never fires in a select).
func (l *limiter) changedWhile(cond bool) <-chan struct{} {
	if !cond {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

// acquire waits for ticket's turn and a slot (and, below a limit of one,
// for the pacing gap), then counts the lane in flight.
func (l *limiter) acquire(ctx context.Context, ticket uint64) error {
	for {
		l.mu.Lock()
		wait := time.Duration(-1)
		if ticket == l.turn {
			wait = l.c.wait(l.clk.now())
			if wait == 0 {
				l.c.started(l.clk.now())
				l.turn++
				l.changed.broadcast()
				l.mu.Unlock()
				return nil
			}
		}
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		case <-l.clk.timer(wait):
		}
	}
}

func (l *limiter) release() {
	l.mu.Lock()
	l.c.release()
	l.changed.broadcast()
	l.mu.Unlock()
}

// record feeds one answer to the controller.
func (l *limiter) record(rtt time.Duration, o outcome) {
	l.mu.Lock()
	l.c.record(l.clk.now(), rtt, o, l.lanes > l.c.inFlight)
	l.changed.broadcast()
	l.mu.Unlock()
}

func (l *limiter) recovered(limited bool) {
	l.mu.Lock()
	l.c.recovered(limited)
	l.changed.broadcast()
	l.mu.Unlock()
}

func (l *limiter) setMax(n int) {
	l.mu.Lock()
	l.c.setMax(n)
	l.changed.broadcast()
	l.mu.Unlock()
}

func (l *limiter) snapshot() (inFlight int, limit float64, maxInFlight int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.c.inFlight, l.c.limit, int(l.c.max)
}
