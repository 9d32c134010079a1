package spool

import (
	"errors"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

func (s *Spool) boltOptions() *bolt.Options {
	// The mmap is virtual address space on 64-bit Linux, not memory; sizing it
	// past the bound up front means the file never has to be remapped while
	// the forwarder holds a read transaction (remaps block readers and writer).
	mmap := 2 * s.opts.MaxBytes
	if mmap > 16<<30 {
		mmap = 16 << 30
	}
	return &bolt.Options{
		Timeout:         s.opts.LockTimeout,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: int(mmap),
		ReadOnly:        s.opts.ReadOnly,
		// A hard stop well above the logical bound: free pages and
		// fragmentation make the file larger than the bytes it holds, but a
		// runaway must not fill the disk.
		MaxSize: int(2*s.opts.MaxBytes + 64<<20),
	}
}

// openOrRecover opens the file; a damaged one is renamed aside and replaced.
func (s *Spool) openOrRecover() (*bolt.DB, error) {
	db, err := s.tryOpen()
	if err == nil {
		return db, nil
	}
	if errors.Is(err, ErrLocked) || s.opts.ReadOnly || errors.Is(err, os.ErrPermission) {
		return nil, err
	}
	aside := fmt.Sprintf("%s.corrupt-%s", s.opts.Path, time.Now().UTC().Format("20060102T150405Z"))
	if rerr := os.Rename(s.opts.Path, aside); rerr != nil {
		return nil, fmt.Errorf("spool: %s is damaged (%v) and could not be moved aside: %w", s.opts.Path, err, rerr)
	}
	s.log.Error().Err(err).Str("file", s.opts.Path).Str("moved_to", aside).
		Msg("spool file is damaged; moved it aside for inspection and started a fresh spool. " +
			"Events still readable in it can be recovered with: hogrelay spool export --file " + aside)
	db, err = s.tryOpen()
	if err != nil {
		return nil, fmt.Errorf("spool: open fresh %s after moving the damaged file aside: %w", s.opts.Path, err)
	}
	return db, nil
}

// tryOpen opens the file and checks it. bbolt can panic on some kinds of
// damage; that is turned into an error naming the file.
func (s *Spool) tryOpen() (db *bolt.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			if db != nil {
				_ = db.Close()
			}
			db, err = nil, fmt.Errorf("spool: %s is damaged: bbolt panicked while opening it: %v", s.opts.Path, r)
		}
	}()
	if s.opts.ReadOnly {
		if _, serr := os.Stat(s.opts.Path); serr != nil {
			return nil, fmt.Errorf("spool: %w", serr)
		}
	}
	db, err = bolt.Open(s.opts.Path, 0o600, s.boltOptions())
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("spool: %s: %w (is the agent running? stop it, or use the command against the running agent)", s.opts.Path, ErrLocked)
	case err != nil:
		return nil, fmt.Errorf("spool: %s cannot be opened: %w", s.opts.Path, err)
	}
	if err := s.initialise(db); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}

// initialise creates the buckets, checks the file's page structure and loads
// the depth counters (recounting them if they are missing).
func (s *Spool) initialise(db *bolt.DB) error {
	start := time.Now()
	check := func(tx *bolt.Tx) error {
		var first error
		for err := range tx.Check() { // drain: Check's goroutine blocks until read
			if first == nil {
				first = fmt.Errorf("spool: %s is damaged: %w", s.opts.Path, err)
			}
		}
		return first
	}
	if s.opts.ReadOnly {
		return db.View(func(tx *bolt.Tx) error {
			if err := check(tx); err != nil {
				return err
			}
			for _, b := range [][]byte{bucketPending, bucketDead, bucketMeta} {
				if tx.Bucket(b) == nil {
					return fmt.Errorf("spool: %s is not a hogrelay spool (bucket %q missing)", s.opts.Path, b)
				}
			}
			c, ok := getCounters(tx)
			if !ok {
				c = recount(tx)
			}
			s.ctr = c
			return nil
		})
	}
	err := db.Update(func(tx *bolt.Tx) error {
		if err := check(tx); err != nil {
			return err
		}
		for _, b := range [][]byte{bucketPending, bucketDead, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("spool: %s: create bucket %q: %w", s.opts.Path, b, err)
			}
		}
		c, ok := getCounters(tx)
		if !ok {
			c = recount(tx)
		}
		s.ctr = c
		return putCounters(tx, c)
	})
	if err != nil {
		return err
	}
	s.log.Debug().Dur("took", time.Since(start)).Int64("pending_events", s.ctr.PendingEvents).Msg("spool opened and checked")
	return nil
}

// recount rebuilds the counters by reading every record header; used for a
// file without counters (created by a crash between bucket creation and the
// first counter write, or by an older version).
func recount(tx *bolt.Tx) counters {
	var c counters
	count := func(b *bolt.Bucket, events, bytes *int64) {
		_ = b.ForEach(func(k, v []byte) error {
			if _, n, _, err := decodeHeader(v); err == nil {
				*events += int64(n)
			}
			*bytes += int64(len(v))
			if seq := keySeq(k); seq >= c.NextSeq {
				c.NextSeq = seq + 1
			}
			return nil
		})
	}
	count(tx.Bucket(bucketPending), &c.PendingEvents, &c.PendingBytes)
	count(tx.Bucket(bucketDead), &c.DeadEvents, &c.DeadBytes)
	return c
}
