package spool

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/cenkalti/backoff/v4"
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
		// The hard stop for removals; appends, under either policy, are
		// held to appendStop per transaction (see updateWithin).
		MaxSize: s.hardStop(),
	}
}

// hardStop is a stop well above the bound, against a runaway, for the
// transactions that must never fail for lack of room: removals after
// delivery, dead-lettering, requeue, and drop_oldest's own drops. bbolt's
// copy-on-write writes a transaction's new pages before the pages it frees
// can be reused, so even a removal needs a few fresh pages; appends leave
// removalReserve of the bound for them.
func (s *Spool) hardStop() int {
	return int(2*s.opts.MaxBytes + 64<<20)
}

// appendStop is how large an append may make the file: the bound less
// removalReserve. An append that would grow the file further fails: under
// reject its group is refused (ErrFull); under drop_oldest commit drops the
// oldest events in a transaction of their own, whose freed pages the retried
// append then reuses. So appends never take the file past the bound and
// removals have their reserve within it.
func (s *Spool) appendStop() int {
	return int(s.opts.MaxBytes - s.removalReserve())
}

// removalReserve is the part of max_bytes that appends leave for removals'
// copy-on-write pages (rewritten leaves and branches along the
// deleted keys, and the freelist page, which is rewritten whole every
// commit: 8 bytes a free page, max_bytes/512 at most). One growth step
// covers that: the step is max_bytes/32 (64 KiB at least).
func (s *Spool) removalReserve() int64 {
	return int64(s.allocSize())
}

// openBolt opens the file with the spool's options and growth step.
func (s *Spool) openBolt() (*bolt.DB, error) {
	db, err := bolt.Open(s.opts.Path, 0o600, s.boltOptions())
	if err == nil {
		db.AllocSize = s.allocSize()
	}
	return db, err
}

// openOrRecover opens the file and sets s.db. A damaged file (ErrDamaged) is
// renamed aside, a fresh spool is started and every intact record of the
// damaged file is salvaged into it, so a damaged file neither stops the agent
// nor loses what can still be read. Any other error (a full disk, an I/O
// error, a permission problem) is returned as it is and the file is never
// moved: it is not damage, and the caller retries.
func (s *Spool) openOrRecover() error {
	path := s.opts.Path
	if !s.opts.ReadOnly {
		s.removeCompactLeftover()
	}
	created, damage, err := s.inspect()
	if err != nil {
		return err
	}
	if damage == nil {
		db, err := s.tryOpen()
		if err == nil {
			s.setDB(db)
			return nil
		}
		if !errors.Is(err, ErrDamaged) {
			if created {
				// bbolt created the file and could not initialise it (a
				// full disk): it holds nothing, and left in place the next
				// attempt would take it for a damaged zero-byte spool.
				_ = os.Remove(path)
			}
			return err
		}
		damage = err
	}
	if s.opts.ReadOnly {
		return fmt.Errorf("%w; read what is intact with: hogrelay spool salvage %s", damage, path)
	}
	return s.recoverFrom(damage)
}

// inspect looks at the file before bbolt maps it: a zero-byte file or one
// shorter than its metadata says is damage (bbolt would take the first for a
// new spool and fault with SIGBUS on the second). created reports that there
// is no file yet, so bbolt will create it.
func (s *Spool) inspect() (created bool, damage, err error) {
	path := s.opts.Path
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !s.opts.ReadOnly:
		return true, nil, nil
	case err != nil:
		return false, nil, fmt.Errorf("spool: %w", err)
	case fi.Size() == 0:
		return false, fmt.Errorf("%w: the spool file is empty (0 bytes): %s held events once, and whatever it held is gone "+
			"(a filesystem that lost the file's data in a crash, or a truncated copy)", ErrDamaged, path), nil
	}
	if err := checkLength(path); err != nil {
		if errors.Is(err, ErrDamaged) {
			return false, err, nil
		}
		return false, nil, err
	}
	return false, nil, nil
}

// recoverFrom moves the damaged file aside, opens a fresh spool and salvages
// the damaged file's intact records into it. The moved file is kept: the
// operator can salvage it again (hogrelay spool salvage) or inspect it.
func (s *Spool) recoverFrom(damage error) error {
	path := s.opts.Path
	aside := fmt.Sprintf("%s.corrupt-%s", path, time.Now().UTC().Format("20060102T150405.000Z"))
	if err := os.Rename(path, aside); err != nil {
		return fmt.Errorf("spool: %s is damaged (%v) and could not be moved aside: %w", path, damage, err)
	}
	syncDir(filepath.Dir(path))
	rec := &Recovery{At: time.Now().UTC(), Problem: damage.Error(), MovedTo: aside}
	db, err := s.tryOpen()
	if err != nil {
		return fmt.Errorf("spool: open a fresh %s after moving the damaged file aside: %w", path, err)
	}
	s.setDB(db)
	rep, res, err := s.SalvageFrom(aside)
	rec.SalvagedEvents, rec.SalvagedDeadLetters = res.PendingEvents, res.DeadEvents
	rec.DamagedRecords, rec.Method = rep.DamagedRecords, rep.Method
	if err != nil {
		rec.SalvageError = err.Error()
	}
	s.recovery = rec
	ev := s.log.Error().Str("file", path).Str("moved_to", aside).Str("problem", damage.Error()).
		Int64("salvaged_events", res.PendingEvents).Int64("salvaged_dead_letters", res.DeadEvents).
		Int("damaged_records", rep.DamagedRecords)
	if err != nil {
		ev = ev.AnErr("salvage_error", err)
	}
	ev.Msg("spool file was damaged: moved it aside, started a fresh spool and salvaged every intact event into it " +
		"(the moved file is kept; hogrelay spool salvage " + aside + " reads it again)")
	return nil
}

// tryOpen opens the file and checks it. bbolt can panic on some kinds of
// damage; that is turned into an error naming the file.
func (s *Spool) tryOpen() (db *bolt.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			if db != nil {
				_ = db.Close()
			}
			db, err = nil, fmt.Errorf("%w: %s: bbolt panicked while opening it: %v", ErrDamaged, s.opts.Path, r)
		}
	}()
	db, err = s.openBolt()
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("spool: %s: %w (is the agent running? stop it, or use the command against the running agent)", s.opts.Path, ErrLocked)
	case isDamage(err):
		return nil, fmt.Errorf("%w: %s cannot be opened: %v", ErrDamaged, s.opts.Path, err)
	case err != nil:
		return nil, fmt.Errorf("spool: %s cannot be opened: %w", s.opts.Path, err)
	}
	if err := s.initialise(db); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}

// isDamage tells bbolt's answers about the file's contents from I/O errors
// (a full disk, EIO, permissions), which say nothing about the file.
func isDamage(err error) bool {
	return errors.Is(err, berrors.ErrInvalid) || errors.Is(err, berrors.ErrChecksum) ||
		errors.Is(err, berrors.ErrVersionMismatch) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// initialise creates the buckets, checks the file's page structure and loads
// the depth counters (recounting them if they are missing).
func (s *Spool) initialise(db *bolt.DB) error {
	start := time.Now()
	check := func(tx *bolt.Tx) error {
		var first error
		for err := range tx.Check() { // drain: Check's goroutine blocks until read
			if first == nil {
				first = fmt.Errorf("%w: %s: %v", ErrDamaged, s.opts.Path, err)
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
		s.usage = scanUsage(tx)
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
			*events += eventCount(v)
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

// setDB publishes the opened file to readers (which check s.db under
// compactMu) and clears the not-open state.
func (s *Spool) setDB(db *bolt.DB) {
	s.compactMu.Lock()
	s.db = db
	s.compactMu.Unlock()
	s.openErr.Store(nil)
}

// retryOpen keeps trying to open the file (WaitForDisk) until it opens or
// the spool is closed, then starts the writer and wakes the forwarder.
func (s *Spool) retryOpen(cause error) {
	defer s.wg.Done()
	s.log.Error().Err(cause).Str("file", s.opts.Path).
		Msg("spool cannot be opened; not ready, retrying with backoff (this is not damage: the file stays where it is)")
	b := backoff.NewExponentialBackOff(backoff.WithInitialInterval(100*time.Millisecond),
		backoff.WithMaxInterval(30*time.Second), backoff.WithMaxElapsedTime(0))
	start, attempts := time.Now(), 0
	for {
		t := time.NewTimer(b.NextBackOff())
		select {
		case <-s.closing:
			t.Stop()
			return
		case <-t.C:
		}
		attempts++
		err := s.openOrRecover()
		if err != nil {
			s.openErr.Store(&err)
			// Backoff caps at 30 s, so this is one line per 30 s at most
			// once the first minute is over.
			if attempts <= 3 || attempts%10 == 0 {
				s.log.Warn().Err(err).Int("attempts", attempts).Msg("spool still cannot be opened; retrying")
			}
			continue
		}
		s.wg.Add(1)
		go s.writer()
		s.log.Info().Str("file", s.opts.Path).Dur("waited", time.Since(start)).Int("attempts", attempts).
			Msg("spool opened; ready")
		s.signal()
		return
	}
}

// removeCompactLeftover deletes the temporary copy a compaction writes
// (spool.db.compact) if a crash left it behind: the real file is always
// whole (the copy replaces it only by rename), so the copy is worthless,
// and it can be as large as the spool itself.
func (s *Spool) removeCompactLeftover() {
	tmp := s.opts.Path + ".compact"
	fi, err := os.Stat(tmp)
	if err != nil {
		return
	}
	if err := os.Remove(tmp); err != nil {
		s.log.Error().Err(err).Str("file", tmp).Msg("could not remove a compaction's leftover copy; it takes disk space outside the spool's bound")
		return
	}
	s.log.Warn().Str("file", tmp).Int64("bytes", fi.Size()).Msg("removed a compaction's leftover copy (a crash during compaction left it)")
}
