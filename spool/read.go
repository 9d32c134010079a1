package spool

import (
	"fmt"
	"maps"

	bolt "go.etcd.io/bbolt"
)

// Next returns records from the head of the spool, oldest first, that share
// the head record's token and historical flag, stopping before maxEvents or
// maxBytes would be exceeded (but always returning at least the head record).
// It returns nil when the spool is empty. A record that cannot be decoded is
// moved to the dead-letter bucket with the reason, so it cannot block the
// head; that is logged.
func (s *Spool) Next(maxEvents, maxBytes int) ([]Record, error) {
	return s.NextFrom(0, maxEvents, maxBytes)
}

// NextFrom is Next starting at the first pending record whose seq is at
// least from, so a sender with records in flight can read the ones after
// them. Seqs only grow, so records appended later are never skipped.
func (s *Spool) NextFrom(from uint64, maxEvents, maxBytes int) ([]Record, error) {
	s.compactMu.RLock()
	defer s.compactMu.RUnlock()
	if s.db == nil {
		return nil, nil // not open yet: nothing to read; Notify fires once it is
	}
	var out []Record
	var bad []uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		cur := tx.Bucket(bucketPending).Cursor()
		events, bytes := 0, 0
		for k, v := cur.Seek(seqKey(from)); k != nil; k, v = cur.Next() {
			seq := keySeq(k)
			h, n, rest, err := decodeHeader(v)
			if err != nil {
				bad = append(bad, seq)
				continue
			}
			if len(out) > 0 {
				if h.token != out[0].Token || h.historical != out[0].Historical ||
					events+int(n) > maxEvents || bytes+len(v) > maxBytes {
					break
				}
			}
			r, err := decodeEvents(seq, v, h, n, rest)
			if err != nil {
				bad = append(bad, seq)
				continue
			}
			out = append(out, r)
			events += int(n)
			bytes += len(v)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("spool: read %s: %w", s.opts.Path, err)
	}
	if len(out) > 0 {
		for seq := out[len(out)-1].Seq + 1; ; {
			cur := s.handedOut.Load()
			if cur >= seq || s.handedOut.CompareAndSwap(cur, seq) {
				break
			}
		}
	}
	if len(bad) > 0 {
		if err := s.quarantine(bad); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// DeadEvent is an event PostHog refused for good, with PostHog's answer.
type DeadEvent struct {
	Token      string
	Historical bool
	Event      []byte
	Reason     string
}

// Done removes the given records (PostHog took them, or they are dead) and
// stores dead letters, in one transaction. Records already gone (dropped by
// the drop_oldest policy while they were in flight) are skipped, and no
// longer counted as dropped: they were delivered after all.
func (s *Spool) Done(seqs []uint64, dead []DeadEvent) error {
	return s.update(func(tx *bolt.Tx, c *counters) error {
		pending := tx.Bucket(bucketPending)
		for _, seq := range seqs {
			k := seqKey(seq)
			v := pending.Get(k)
			if v == nil {
				delete(s.dropsInFlight, seq)
				continue
			}
			c.removePending(v)
			if err := pending.Delete(k); err != nil {
				return err
			}
		}
		deadB := tx.Bucket(bucketDead)
		for _, d := range dead {
			rec := encodeRecord(d.Token, d.Historical, nowFunc(), d.Reason, [][]byte{d.Event})
			if err := deadB.Put(seqKey(c.NextSeq), rec); err != nil {
				return err
			}
			c.NextSeq++
			c.DeadEvents++
			c.DeadBytes += int64(len(rec))
		}
		return nil
	})
}

// quarantine moves undecodable pending records to the dead-letter bucket
// byte for byte, so they stay on disk for inspection.
func (s *Spool) quarantine(seqs []uint64) error {
	err := s.update(func(tx *bolt.Tx, c *counters) error {
		pending, dead := tx.Bucket(bucketPending), tx.Bucket(bucketDead)
		for _, seq := range seqs {
			k := seqKey(seq)
			v := pending.Get(k)
			if v == nil {
				continue
			}
			c.DeadEvents += c.removePending(v)
			c.DeadBytes += int64(len(v))
			if err := dead.Put(seqKey(c.NextSeq), append([]byte(nil), v...)); err != nil {
				return err
			}
			c.NextSeq++
			if err := pending.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		s.log.Error().Uints64("records", seqs).Str("file", s.opts.Path).
			Msg("spool records could not be decoded; moved them to the dead-letter bucket (see hogrelay spool dead-letters list)")
	}
	return err
}

// update runs fn in a write transaction with the counters, publishing them
// only if the transaction commits. The file may grow to the hard stop
// (hardStop): removals after delivery, dead-lettering and requeue must never
// fail for lack of room, or the forwarder would stall.
func (s *Spool) update(fn func(tx *bolt.Tx, c *counters) error) error {
	return s.updateWithin(s.hardStop(), fn)
}

// updateWithin is update with the file allowed to grow to at most stop
// bytes; a transaction that would grow it further fails with bbolt's
// ErrMaxSizeReached and changes nothing. bbolt reads its MaxSize only while
// allocating inside a write transaction, and every write transaction runs
// here under ctrMu, so setting it per transaction is race-free.
func (s *Spool) updateWithin(stop int, fn func(tx *bolt.Tx, c *counters) error) error {
	if s.opts.ReadOnly {
		return fmt.Errorf("spool: %s is open read-only", s.opts.Path)
	}
	s.compactMu.RLock()
	defer s.compactMu.RUnlock()
	if err := s.OpenError(); err != nil {
		return err
	}
	s.ctrMu.Lock()
	defer s.ctrMu.Unlock()
	s.db.MaxSize = stop
	c := s.ctr
	err := s.db.Update(func(tx *bolt.Tx) error {
		c = s.ctr
		if err := fn(tx, &c); err != nil {
			return err
		}
		// An empty queue has no depth, whatever the counters say: a damaged
		// record's event count cannot be read, so without this its events
		// would stay counted (and block compaction and a quick shutdown).
		if k, _ := tx.Bucket(bucketPending).Cursor().First(); k == nil {
			c.PendingEvents, c.PendingBytes = 0, 0
		}
		return putCounters(tx, c)
	})
	if err != nil {
		return fmt.Errorf("spool: update %s: %w", s.opts.Path, err)
	}
	s.applyUsage(&c)
	maps.Copy(s.dropsInFlight, c.drops) // published with the counters, under the same lock
	c.drops = nil
	s.ctr = c
	return nil
}
