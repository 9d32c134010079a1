package spool

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

var nowFunc = time.Now

// Which selects a bucket for Each.
type Which int

const (
	Pending Which = iota
	DeadLetters
)

// Each calls fn for every record of the chosen bucket in order, until fn
// returns an error. Records that cannot be decoded are passed with the decode
// error in Record.Reason so export tools can still show them.
//
// It reads a page of records at a time in a short read transaction and calls
// fn with no lock held: fn may write to a network client that stops reading,
// and a lock held across that would stall compaction and, behind it, every
// producer. Records appended or removed between pages may or may not be seen;
// seqs survive compaction, so paging continues across one.
func (s *Spool) Each(which Which, fn func(Record) error) error {
	name := bucketPending
	if which == DeadLetters {
		name = bucketDead
	}
	// Page through in short read transactions: a long one would keep bbolt
	// from reusing freed pages while the agent keeps writing.
	var after []byte
	for {
		var page []Record
		err := s.view(func(tx *bolt.Tx) error {
			cur := tx.Bucket(name).Cursor()
			k, v := cur.First()
			if after != nil {
				k, v = cur.Seek(after)
				if k != nil && string(k) == string(after) {
					k, v = cur.Next()
				}
			}
			for size := 0; k != nil && len(page) < 256 && size < 8<<20; k, v = cur.Next() {
				size += len(v)
				r, err := decodeRecord(keySeq(k), v)
				if err != nil {
					r = Record{Seq: keySeq(k), Size: len(v), Reason: err.Error()}
				}
				page = append(page, r)
				after = append(after[:0], k...)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("spool: read %s: %w", s.opts.Path, err)
		}
		for _, r := range page {
			if err := fn(r); err != nil {
				return err
			}
		}
		if len(page) == 0 {
			return nil
		}
	}
}

// view runs fn in a read transaction under the compaction lock, released
// as soon as fn returns.
func (s *Spool) view(fn func(tx *bolt.Tx) error) error {
	s.compactMu.RLock()
	defer s.compactMu.RUnlock()
	if err := s.OpenError(); err != nil {
		return err
	}
	return s.db.View(fn)
}

// Requeue moves every dead letter back to the end of the pending queue (for
// after the cause was fixed upstream). It returns the number of events moved.
func (s *Spool) Requeue() (int64, error) {
	var moved int64
	err := s.update(func(tx *bolt.Tx, c *counters) error {
		moved = 0
		dead, pending := tx.Bucket(bucketDead), tx.Bucket(bucketPending)
		var keys [][]byte
		err := dead.ForEach(func(k, v []byte) error {
			h, n, rest, err := decodeHeader(v)
			if err != nil {
				return nil // undecodable: stays dead for inspection
			}
			r, err := decodeEvents(keySeq(k), v, h, n, rest)
			if err != nil {
				return nil
			}
			rec := encodeRecord(h.token, h.historical, h.received, "", r.Events)
			if err := pending.Put(seqKey(c.NextSeq), rec); err != nil {
				return err
			}
			c.NextSeq++
			c.DeadEvents -= int64(n)
			c.DeadBytes -= int64(len(v))
			c.PendingEvents += int64(n)
			c.PendingBytes += int64(len(rec))
			c.pendingAdded(rec)
			moved += int64(n)
			keys = append(keys, append([]byte(nil), k...))
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range keys {
			if err := dead.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil && moved > 0 {
		s.signal()
	}
	return moved, err
}

// DropDeadLetters deletes every dead letter. It returns the number of events
// deleted.
func (s *Spool) DropDeadLetters() (int64, error) {
	var dropped int64
	err := s.update(func(tx *bolt.Tx, c *counters) error {
		dropped = c.DeadEvents
		if err := tx.DeleteBucket(bucketDead); err != nil {
			return err
		}
		if _, err := tx.CreateBucket(bucketDead); err != nil {
			return err
		}
		c.DeadEvents, c.DeadBytes = 0, 0
		return nil
	})
	return dropped, err
}
