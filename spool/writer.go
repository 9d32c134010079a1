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
// other write) and answers every request. Requests that do not fit under the
// Reject policy get ErrFull without failing the others.
//
// What counts against max_bytes is the larger of the records' bytes and the
// file's: page rounding, branch pages, the freelist and copy-on-write make
// the file larger than the records it holds, and it is the file that fills
// the disk. Under reject that is the file's high-water mark, which keeps the
// file within max_bytes; under drop_oldest it is the pages in use (the
// high-water mark less free pages), so dropping makes room; the file can
// then pass the bound by the free pages copy-on-write needs.
func (s *Spool) commit(group []*writeReq) {
	s.commitSince.Store(time.Now().UnixNano())
	defer s.commitSince.Store(0)
	results := make([]error, len(group))
	dropped, deferred, err := s.store(group, results)
	if errors.Is(err, berrors.ErrMaxSizeReached) && s.opts.WhenFull == DropOldest {
		// Freed pages are reusable only after the transaction that freed
		// them, so room at the file's hard limit is made by a drop of its
		// own, then the group is stored again.
		var need int64
		for _, req := range group {
			need += req.bytes
		}
		if d, derr := s.dropForRoom(2 * need); derr == nil && d.events+d.inFlight > 0 {
			dropped, deferred = d.events, d.inFlight
			var d2, f2 int64
			d2, f2, err = s.store(group, results)
			dropped, deferred = dropped+d2, deferred+f2
		}
	}
	s.finish(group, results, dropped, deferred, err)
}

// dropForRoom deletes the oldest pending records worth need bytes in a
// transaction of its own (drop_oldest at the file's hard limit).
func (s *Spool) dropForRoom(need int64) (drop, error) {
	var d drop
	err := s.update(func(tx *bolt.Tx, c *counters) error {
		var err error
		d, err = s.dropOldest(tx.Bucket(bucketPending), c, need)
		return err
	})
	s.settleDrops(err)
	return d, err
}

// store is one attempt at committing the group; results gets each request's
// answer, and the counts say what drop_oldest deleted.
func (s *Spool) store(group []*writeReq, results []error) (dropped, deferred int64, err error) {
	bound := s.admissionBound()
	err = s.update(func(tx *bolt.Tx, c *counters) error {
		dropped, deferred = 0, 0
		// Under reject the file's whole length counts (free pages inside
		// it are space on disk too); under drop_oldest only its pages in
		// use do, since deleting records frees pages but never shortens the
		// file.
		inUse := tx.Size()
		if s.opts.WhenFull == DropOldest {
			inUse -= int64(s.db.Stats().FreeAlloc)
		}
		pending := tx.Bucket(bucketPending)
		for i, req := range group {
			results[i] = nil
			if req.bytes > bound {
				results[i] = fmt.Errorf("%w: request of %d bytes exceeds the spool bound of %d bytes", ErrFull, req.bytes, s.opts.MaxBytes)
				continue
			}
			used := max(c.PendingBytes+c.DeadBytes, inUse)
			if over := used + req.bytes - bound; over > 0 {
				if s.opts.WhenFull != DropOldest {
					results[i] = fmt.Errorf("%w: %d of %d bytes used (the file's pages in use, or its records' bytes if more)", ErrFull, used, s.opts.MaxBytes)
					continue
				}
				d, err := s.dropOldest(pending, c, over)
				if err != nil {
					return err
				}
				dropped += d.events
				deferred += d.inFlight
				inUse -= d.bytes
				if max(c.PendingBytes+c.DeadBytes, inUse)+req.bytes > bound {
					// Only dead letters are left; they are never dropped silently.
					results[i] = fmt.Errorf("%w: dead letters fill the spool (%d bytes); requeue or drop them", ErrFull, c.DeadBytes)
					continue
				}
			}
			for j, rec := range req.records {
				if err := pending.Put(seqKey(c.NextSeq), rec); err != nil {
					return err
				}
				c.NextSeq++
				c.PendingEvents += req.events[j]
				c.PendingBytes += int64(len(rec))
				inUse += int64(len(rec))
			}
		}
		return nil
	})
	s.settleDrops(err)
	if err != nil {
		return 0, 0, err
	}
	return dropped, deferred, nil
}

// settleDrops keeps the in-flight drops of a committed transaction (see
// dropOldest) and forgets those of one that failed.
func (s *Spool) settleDrops(err error) {
	s.ctrMu.Lock()
	defer s.ctrMu.Unlock()
	if err == nil {
		for seq, n := range s.dropsPending {
			s.dropsInFlight[seq] = n
		}
	}
	clear(s.dropsPending)
}

// finish logs the outcome and answers every request of the group.
func (s *Spool) finish(group []*writeReq, results []error, dropped, deferred int64, err error) {
	if err != nil {
		if errors.Is(err, berrors.ErrMaxSizeReached) {
			err = fmt.Errorf("%w: the spool file %s reached its size limit of %d bytes: %v", ErrFull, s.opts.Path, s.opts.MaxBytes, err)
		} else {
			err = fmt.Errorf("spool: write to %s failed: %w", s.opts.Path, err)
		}
		s.log.Error().Err(err).Int("requests", len(group)).Msg("spool commit failed; producers were refused, nothing acknowledged")
		for i := range results {
			results[i] = err
		}
	} else if dropped > 0 || deferred > 0 {
		s.dropped.Add(uint64(dropped))
		s.log.Warn().Int64("dropped_events", dropped).Int64("dropped_in_flight", deferred).Int64("max_bytes", s.opts.MaxBytes).
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

// admissionBound is max_bytes less the room bbolt needs to grow the file by
// one step, so that the file itself never passes max_bytes (bbolt's MaxSize
// is set to max_bytes as the hard stop).
func (s *Spool) admissionBound() int64 {
	return s.opts.MaxBytes - int64(s.allocSize())
}

// allocSize is how much bbolt grows the file by at a time: its 16 MiB
// default, less for a small bound so the step does not eat the bound.
func (s *Spool) allocSize() int {
	return int(min(max(s.opts.MaxBytes/32, 64<<10), 16<<20))
}

type drop struct{ events, inFlight, bytes int64 }

// dropOldest deletes head records until at least need bytes are freed or the
// pending bucket is empty. Records the forwarder has already read (seq below
// handedOut) are in flight: their events are counted as dropped only if the
// forwarder's Done does not report them delivered (see Done), so the counter
// says what was lost, not what was deleted and then delivered anyway.
func (s *Spool) dropOldest(pending *bolt.Bucket, c *counters, need int64) (drop, error) {
	var keys [][]byte
	var d drop
	handedOut := s.handedOut.Load()
	cur := pending.Cursor()
	for k, v := cur.First(); k != nil && d.bytes < need; k, v = cur.Next() {
		keys = append(keys, append([]byte(nil), k...))
		n := eventCount(v)
		d.bytes += int64(len(v))
		if seq := keySeq(k); seq < handedOut {
			s.dropsPending[seq] = n
			d.inFlight += n
		} else {
			d.events += n
		}
		c.PendingEvents -= n
	}
	// Deleting while iterating can skip keys in bbolt; collect, then delete.
	for _, k := range keys {
		if err := pending.Delete(k); err != nil {
			return drop{}, err
		}
	}
	c.PendingBytes -= d.bytes
	return d, nil
}

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
