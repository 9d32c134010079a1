package spool

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Fair share: when the spool is nearly full, each project token may hold at
// most an equal part of the room pending events may use, so one producer
// cannot take the whole spool and refuse (reject) or delete (drop_oldest)
// the events of every other project. Usage is the stored size of a token's
// pending records, as the bound counts them: what a small gzip body inflates
// to, not what came over the wire.
//
// Below nearFullPercent of max_bytes nothing changes. Above it, a request
// from a token that would go over its share is refused under reject; under
// drop_oldest it makes room by deleting that token's own oldest events, never
// another's. A request within its share that does not fit under drop_oldest
// deletes the oldest events of the token holding the most.
const nearFullPercent = 80

// tokenUsage is the stored bytes of pending records per token. It changes
// only inside write transactions: counters.tok collects a transaction's
// changes, and they are applied when it commits.
type tokenUsage map[string]int64

// scanUsage reads every pending record's token (at open).
func scanUsage(tx *bolt.Tx) tokenUsage {
	u := tokenUsage{}
	_ = tx.Bucket(bucketPending).ForEach(func(_, v []byte) error {
		u[recordToken(v)] += int64(len(v))
		return nil
	})
	return u
}

// recordToken is a stored record's token, read without checking the
// checksum ("" when the header cannot be read: such bytes still count).
func recordToken(v []byte) string {
	h, _, _, err := parseHeader(v, false)
	if err != nil {
		return ""
	}
	return h.token
}

// pendingAdded notes a new pending record's bytes for its token in the
// transaction's changes.
func (c *counters) pendingAdded(v []byte) { c.tokenDelta(recordToken(v), int64(len(v))) }

// removePending takes a pending record that is being deleted off the depth
// counters and its token's usage, reading its header once (unchecked: the
// counters added what it says when it was stored, damaged or not), and
// returns its event count.
func (c *counters) removePending(v []byte) (events int64) {
	h, n, _, err := parseHeader(v, false)
	if err == nil {
		events = int64(n)
	}
	c.PendingEvents -= events
	c.PendingBytes -= int64(len(v))
	c.tokenDelta(h.token, -int64(len(v)))
	return events
}

func (c *counters) tokenDelta(token string, n int64) {
	if c.tok == nil {
		c.tok = tokenUsage{}
	}
	c.tok[token] += n
}

// applyUsage publishes a committed transaction's token changes. Called
// with ctrMu held.
func (s *Spool) applyUsage(c *counters) {
	if s.usage == nil {
		s.usage = tokenUsage{}
	}
	for t, n := range c.tok {
		if v := s.usage[t] + n; v > 0 {
			s.usage[t] = v
		} else {
			delete(s.usage, t)
		}
	}
	if c.PendingBytes == 0 {
		clear(s.usage) // an empty queue holds nothing, whatever was missed
	}
	c.tok = nil
}

// usageOf is token's usage including the transaction's changes so far.
func (s *Spool) usageOf(c *counters, token string) int64 {
	return s.usage[token] + c.tok[token]
}

// share is each token's part of the room for pending events when the spool
// is nearly full, counting token as holding some; ok is false while the
// spool is not nearly full (everyone may use what fits).
func (s *Spool) share(c *counters, token string, add, limit int64) (share int64, tokens int, ok bool) {
	if (c.PendingBytes+c.DeadBytes+add)*100 <= limit*nearFullPercent {
		return 0, 0, false
	}
	seen := false
	for t := range s.usage {
		if s.usageOf(c, t) > 0 {
			tokens++
			seen = seen || t == token
		}
	}
	for t, n := range c.tok {
		if _, counted := s.usage[t]; !counted && n > 0 {
			tokens++
			seen = seen || t == token
		}
	}
	if !seen {
		tokens++
	}
	return (limit - c.DeadBytes) / int64(tokens), tokens, true
}

// heaviest is the token holding the most pending bytes.
func (s *Spool) heaviest(c *counters) string {
	var top string
	var most int64 = -1
	consider := func(t string) {
		if n := s.usageOf(c, t); n > most {
			top, most = t, n
		}
	}
	for t := range s.usage {
		consider(t)
	}
	for t := range c.tok {
		consider(t)
	}
	return top
}

// admit decides where a request's room comes from: need bytes of victim's
// oldest pending events to delete first (drop_oldest), or none; or the
// refusal. limit is the room for records' bytes: max_bytes less what the
// file holds beyond the records (see commit).
func (s *Spool) admit(c *counters, req *writeReq, limit int64) (victim string, need int64, err error) {
	if req.bytes > limit {
		return "", 0, fmt.Errorf("%w: request of %d bytes exceeds the spool bound of %d bytes", ErrFull, req.bytes, s.opts.MaxBytes)
	}
	used := c.PendingBytes + c.DeadBytes
	over := used + req.bytes - limit
	if share, tokens, near := s.share(c, req.token, req.bytes, limit); near && s.usageOf(c, req.token)+req.bytes > share {
		if s.opts.WhenFull != DropOldest || req.bytes > share {
			return "", 0, fmt.Errorf("%w: this project holds %d bytes, over its fair share of %d bytes of the nearly full spool (%d of %d bytes used by %d projects)",
				ErrFull, s.usageOf(c, req.token), share, used, s.opts.MaxBytes, tokens)
		}
		return req.token, max(over, s.usageOf(c, req.token)+req.bytes-share), nil
	}
	if over <= 0 {
		return "", 0, nil
	}
	if s.opts.WhenFull != DropOldest {
		return "", 0, fmt.Errorf("%w: %d of %d bytes used", ErrFull, used, s.opts.MaxBytes)
	}
	return s.heaviest(c), over, nil
}

// dropOldestOf deletes token's oldest pending records until at least need
// bytes are freed or it has none left. Records the forwarder has already
// read (seq below handedOut) are in flight: their events are counted as
// dropped only if the forwarder's Done does not report them delivered (see
// Done), so the counter says what was lost, not what was deleted and then
// delivered anyway.
func (s *Spool) dropOldestOf(pending *bolt.Bucket, c *counters, need int64, token string) (drop, error) {
	var keys [][]byte
	var d drop
	handedOut := s.handedOut.Load()
	cur := pending.Cursor()
	for k, v := cur.First(); k != nil && d.bytes < need; k, v = cur.Next() {
		if recordToken(v) != token {
			continue
		}
		keys = append(keys, append([]byte(nil), k...))
		n := c.removePending(v)
		d.bytes += int64(len(v))
		if seq := keySeq(k); seq < handedOut {
			if c.drops == nil {
				c.drops = map[uint64]int64{}
			}
			c.drops[seq] = n
			d.inFlight += n
		} else {
			d.events += n
		}
	}
	// Deleting while iterating can skip keys in bbolt; collect, then delete.
	for _, k := range keys {
		if err := pending.Delete(k); err != nil {
			return drop{}, err
		}
	}
	return d, nil
}
