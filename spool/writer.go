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

// commit stores the group in one transaction and answers every request.
// Requests that do not fit under the Reject policy get ErrFull without
// failing the others.
func (s *Spool) commit(group []*writeReq) {
	s.commitSince.Store(time.Now().UnixNano())
	defer s.commitSince.Store(0)
	s.compactMu.RLock()
	defer s.compactMu.RUnlock()
	s.ctrMu.Lock()
	defer s.ctrMu.Unlock()

	results := make([]error, len(group))
	c := s.ctr
	var dropped int64
	err := s.db.Update(func(tx *bolt.Tx) error {
		c = s.ctr
		dropped = 0
		pending := tx.Bucket(bucketPending)
		for i, req := range group {
			results[i] = nil
			victim, need, err := s.admit(&c, req) // fairshare.go
			if err != nil {
				results[i] = err
				continue
			}
			over := func() int64 { return c.PendingBytes + c.DeadBytes + req.bytes - s.opts.MaxBytes }
			for need > 0 {
				n, err := dropOldestOf(pending, &c, need, victim)
				if err != nil {
					return err
				}
				dropped += n
				need = 0
				// Room made from the heaviest project may still be short
				// when it held less than needed: the next heaviest then.
				if victim != req.token && n > 0 && over() > 0 {
					victim, need = s.heaviest(&c), over()
				}
			}
			if over() > 0 {
				// What is left is dead letters (never dropped silently) or
				// other projects' fair shares.
				results[i] = fmt.Errorf("%w: %d of %d bytes used, %d of them dead letters (requeue or drop them)", ErrFull, c.PendingBytes+c.DeadBytes, s.opts.MaxBytes, c.DeadBytes)
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
			}
		}
		return putCounters(tx, c)
	})
	if err != nil {
		if errors.Is(err, berrors.ErrMaxSizeReached) {
			err = fmt.Errorf("%w: the spool file %s reached its size limit: %v", ErrFull, s.opts.Path, err)
		} else {
			err = fmt.Errorf("spool: write to %s failed: %w", s.opts.Path, err)
		}
		s.log.Error().Err(err).Int("requests", len(group)).Msg("spool commit failed; producers were refused, nothing acknowledged")
		for i := range results {
			results[i] = err
		}
	} else {
		s.applyUsage(&c)
		s.ctr = c
		if dropped > 0 {
			s.dropped.Add(uint64(dropped))
			s.log.Warn().Int64("dropped_events", dropped).Int64("max_bytes", s.opts.MaxBytes).
				Msg("spool full: dropped the oldest pending events to make room (when_full = \"drop_oldest\")")
		}
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
