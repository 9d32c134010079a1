package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	berrors "go.etcd.io/bbolt/errors"

	bolt "go.etcd.io/bbolt"
)

type writeReq struct {
	token   string // the project all records belong to (fair share)
	records [][]byte
	events  []int64 // events per record
	bytes   int64
	done    chan error
}

// maxGroupBytes bounds one group commit, so a burst of huge requests does not
// build one enormous transaction (and one long wait for everyone in it).
const maxGroupBytes = 16 << 20

// writer is the only goroutine that appends. It takes every request that is
// already waiting and commits them in one transaction: one fsync for all.
func (s *Spool) writer() {
	defer s.wg.Done()
	group := make([]*writeReq, 0, 256)
	for {
		select {
		case req := <-s.writes:
			group = append(group[:0], req)
		case <-s.closing:
			// Commit whatever producers queued before Close, then exit.
			for {
				select {
				case req := <-s.writes:
					s.commit([]*writeReq{req})
				default:
					return
				}
			}
		}
		size := group[0].bytes
	gather:
		for size < maxGroupBytes {
			select {
			case req := <-s.writes:
				group = append(group, req)
				size += req.bytes
			default:
				break gather
			}
		}
		s.commit(group)
	}
}

// commit stores the group in one transaction (through update, like every
// other write) and answers every request. Requests that do not fit get
// ErrFull without failing the others.
//
// Admission (fairshare.go) counts records' bytes against a limit that is
// max_bytes less the file's overhead: page rounding, branch
// pages, the freelist and copy-on-write make the file larger than the
// records it holds, and it is the file that fills the disk. Under reject the
// file's high-water mark is the measure, which keeps the file near
// max_bytes; under drop_oldest its pages in use (high-water mark less free
// pages) are, so dropping makes room. Pages a transaction frees are reusable
// only after it commits, so an append is also held to appendStop (open.go,
// under either policy): one that would grow the file past it fails, and
// under drop_oldest commit drops the oldest events in a transaction of
// their own and stores the group again, into the pages that drop freed.
func (s *Spool) commit(group []*writeReq) {
	s.commitSince.Store(time.Now().UnixNano())
	defer s.commitSince.Store(0)
	results := make([]error, len(group))
	d, err := s.store(group, results)
	if s.opts.WhenFull == DropOldest {
		var need int64
		for _, req := range group {
			need += req.bytes
		}
		// Each round drops at least one record, so this ends: stored, or
		// nothing left to drop (what is left is dead letters).
		for errors.Is(err, berrors.ErrMaxSizeReached) {
			d1, derr := s.dropForRoom(need)
			if derr != nil || d1.events+d1.inFlight == 0 {
				break
			}
			var d2 drop
			d2, err = s.store(group, results)
			d = drop{events: d.events + d1.events + d2.events, inFlight: d.inFlight + d1.inFlight + d2.inFlight}
		}
	}
	s.finish(group, results, d, err)
}

// dropForRoom deletes the oldest pending records of the heaviest project
// worth at least need bytes in a transaction of its own (drop_oldest at
// appendStop). A drop writes fresh pages too: a leaf that keeps some records
// is rewritten whole, and a leaf holds at least two records, so deleting one
// 100 KiB record can rewrite its 100 KiB neighbour. The drop is held to
// max_bytes; one that would pass it deletes more (whole leaves are freed, not
// rewritten), and only a drop of everything the project holds may use the
// hard stop, so a drop never fails for lack of room.
func (s *Spool) dropForRoom(need int64) (drop, error) {
	for {
		var d drop
		all := false
		try := func(tx *bolt.Tx, c *counters) error {
			victim := s.heaviest(c)
			all = need >= s.usageOf(c, victim)
			var err error
			d, err = s.dropOldestOf(tx.Bucket(bucketPending), c, need, victim)
			return err
		}
		err := s.updateWithin(int(s.opts.MaxBytes), try)
		if errors.Is(err, berrors.ErrMaxSizeReached) && !all {
			need *= 2
			continue
		}
		if errors.Is(err, berrors.ErrMaxSizeReached) {
			err = s.update(try)
		}
		return d, err
	}
}

// store is one attempt at committing the group; results gets each request's
// answer, and d says what drop_oldest deleted (zero when it failed).
func (s *Spool) store(group []*writeReq, results []error) (d drop, err error) {
	// Appends never grow the file past appendStop, under either policy:
	// admission estimates the file's overhead from the transaction's start,
	// and a large group's new pages (page rounding, splits) can pass that
	// estimate; bbolt's own limit then refuses the group (ErrFull) instead.
	bound, stop := s.admissionBound(), s.appendStop()
	if s.opts.WhenFull == DropOldest {
		bound -= s.removalReserve()
	}
	err = s.updateWithin(stop, func(tx *bolt.Tx, c *counters) error {
		d = drop{}
		fileUsed := tx.Size()
		if s.opts.WhenFull == DropOldest {
			fileUsed -= int64(s.db.Stats().FreeAlloc)
		}
		pending := tx.Bucket(bucketPending)
		for i, req := range group {
			results[i] = nil
			// The room for records' bytes is the bound less the file's
			// overhead, so fair share and drop_oldest work on what fills
			// the disk. The overhead is taken off, not scaled: much of it is fixed
			// (meta, freelist and branch pages), so scaling by
			// content/file would leave a nearly empty spool room for a
			// few kilobytes.
			limit := bound
			if overhead := fileUsed - (c.PendingBytes + c.DeadBytes); overhead > 0 {
				limit = bound - overhead
			}
			victim, need, err := s.admit(c, req, limit) // fairshare.go
			if err != nil {
				results[i] = err
				continue
			}
			over := func() int64 { return c.PendingBytes + c.DeadBytes + req.bytes - limit }
			for need > 0 {
				n, err := s.dropOldestOf(pending, c, need, victim)
				if err != nil {
					return err
				}
				d.events += n.events
				d.inFlight += n.inFlight
				fileUsed -= n.bytes
				need = 0
				// Room made from the heaviest project may still be short
				// when it held less than needed: the next heaviest then.
				if victim != req.token && n.bytes > 0 && over() > 0 {
					victim, need = s.heaviest(c), over()
				}
			}
			if over() > 0 {
				// What is left is dead letters (never dropped silently) or
				// other projects' fair shares.
				results[i] = fmt.Errorf("%w: %d of %d bytes used, %d of them dead letters (requeue or drop them)", ErrFull, max(c.PendingBytes+c.DeadBytes, fileUsed), s.opts.MaxBytes, c.DeadBytes)
				continue
			}
			for j, rec := range req.records {
				if err := pending.Put(seqKey(c.NextSeq), rec); err != nil {
					return err
				}
				c.NextSeq++
				c.PendingEvents += req.events[j]
				c.PendingBytes += int64(len(rec))
				c.tokenDelta(req.token, int64(len(rec)))
				fileUsed += int64(len(rec))
			}
		}
		return nil
	})
	if err != nil {
		return drop{}, err
	}
	return d, nil
}

// finish logs the outcome and answers every request of the group.
func (s *Spool) finish(group []*writeReq, results []error, d drop, err error) {
	if err != nil {
		if errors.Is(err, berrors.ErrMaxSizeReached) {
			err = fmt.Errorf("%w: the spool file %s reached its size limit: %v", ErrFull, s.opts.Path, err)
		} else {
			err = fmt.Errorf("spool: write to %s failed: %w", s.opts.Path, err)
		}
		// A full disk fails every commit while it lasts: one line per burst.
		if ok, n := s.commitFailures.Allow(); ok {
			s.log.Error().Err(err).Int("requests", len(group)).Int("suppressed_since_last", n).
				Msg("spool commit failed; producers were refused, nothing acknowledged")
		}
		for i := range results {
			results[i] = err
		}
	}
	// Drops committed in transactions of their own (dropForRoom) count even
	// when the group could not be stored after them: they are gone.
	if d.events > 0 || d.inFlight > 0 {
		s.dropped.Add(uint64(d.events))
		s.log.Warn().Int64("dropped_events", d.events).Int64("dropped_in_flight", d.inFlight).Int64("max_bytes", s.opts.MaxBytes).
			Msg("spool full: dropped the oldest pending events to make room (when_full = \"drop_oldest\"); " +
				"events that were being sent are counted as dropped only if their delivery fails")
	}
	stored := false
	for i, req := range group {
		req.done <- results[i]
		stored = stored || results[i] == nil
	}
	if stored {
		s.signal()
	}
}

// admissionBound is max_bytes less one growth step of the file, so the file
// stays within max_bytes when it grows.
func (s *Spool) admissionBound() int64 {
	return s.opts.MaxBytes - int64(s.allocSize())
}

// allocSize is how much bbolt grows the file by at a time: its 16 MiB
// default, less for a small bound so the step does not eat the bound.
func (s *Spool) allocSize() int {
	return int(min(max(s.opts.MaxBytes/32, 64<<10), 16<<20))
}

// drop is what drop_oldest deleted: events counted as dropped, events that
// were in flight (counted only if their delivery fails), and bytes.
type drop struct{ events, inFlight, bytes int64 }

func putCounters(tx *bolt.Tx, c counters) error {
	b := make([]byte, 0, 5*binary.MaxVarintLen64)
	b = binary.AppendVarint(b, c.PendingEvents)
	b = binary.AppendVarint(b, c.PendingBytes)
	b = binary.AppendVarint(b, c.DeadEvents)
	b = binary.AppendVarint(b, c.DeadBytes)
	b = binary.AppendUvarint(b, c.NextSeq)
	return tx.Bucket(bucketMeta).Put(keyCounters, b)
}

func getCounters(tx *bolt.Tx) (counters, bool) {
	v := tx.Bucket(bucketMeta).Get(keyCounters)
	if v == nil {
		return counters{}, false
	}
	return parseCounters(v)
}

func parseCounters(v []byte) (counters, bool) {
	var c counters
	vals := []*int64{&c.PendingEvents, &c.PendingBytes, &c.DeadEvents, &c.DeadBytes}
	for _, p := range vals {
		x, n := binary.Varint(v)
		if n <= 0 {
			return counters{}, false
		}
		*p = x
		v = v[n:]
	}
	x, n := binary.Uvarint(v)
	if n <= 0 {
		return counters{}, false
	}
	c.NextSeq = x
	return c, true
}
