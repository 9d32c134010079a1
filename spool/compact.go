package spool

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// CompactResult reports what Compact did.
type CompactResult struct {
	Before, After int64
	Took          time.Duration
}

// Compact rewrites the file without its free pages. bbolt never returns
// space to the filesystem, so after a long outage has drained the file would
// otherwise stay at its high-water mark forever. Writers and readers wait
// while it runs; on an empty or small spool that is milliseconds.
func (s *Spool) Compact() (CompactResult, error) {
	if s.opts.ReadOnly {
		return CompactResult{}, fmt.Errorf("spool: %s is open read-only", s.opts.Path)
	}
	start := time.Now()
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	if err := s.OpenError(); err != nil {
		return CompactResult{}, err
	}
	res := CompactResult{}
	if fi, err := os.Stat(s.opts.Path); err == nil {
		res.Before = fi.Size()
	}
	tmp := s.opts.Path + ".compact"
	_ = os.Remove(tmp)
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: time.Second, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return res, fmt.Errorf("spool: compact: create %s: %w", tmp, err)
	}
	if err := bolt.Compact(dst, s.db, 64<<20); err != nil {
		_ = dst.Close()
		_ = os.Remove(tmp)
		return res, fmt.Errorf("spool: compact %s: %w", s.opts.Path, err)
	}
	if err := dst.Close(); err != nil {
		_ = os.Remove(tmp)
		return res, fmt.Errorf("spool: compact: close %s: %w", tmp, err)
	}
	// The old file stays open until the copy is complete and synced, so a
	// crash at any point leaves one whole spool file under the real name.
	if err := s.db.Close(); err != nil {
		return res, fmt.Errorf("spool: compact: close %s: %w", s.opts.Path, err)
	}
	if err := os.Rename(tmp, s.opts.Path); err != nil {
		// Keep running on the old file.
		db, oerr := s.openBolt()
		if oerr != nil {
			return res, fmt.Errorf("spool: compact: rename failed (%v) and reopen failed: %w", err, oerr)
		}
		s.db = db
		return res, fmt.Errorf("spool: compact: rename %s: %w", tmp, err)
	}
	syncDir(filepath.Dir(s.opts.Path))
	db, err := s.openBolt()
	if err != nil {
		return res, fmt.Errorf("spool: compact: reopen %s: %w", s.opts.Path, err)
	}
	s.db = db
	if fi, err := os.Stat(s.opts.Path); err == nil {
		res.After = fi.Size()
	}
	res.Took = time.Since(start)
	s.log.Info().Int64("before_bytes", res.Before).Int64("after_bytes", res.After).Dur("took", res.Took).Msg("spool compacted")
	return res, nil
}

// CompactIfLarger compacts when nothing is pending, the file is larger than
// threshold, and compacting gives a meaningful amount back: bbolt's free
// pages (its own count, kept at every commit) make up at least half the
// file or at least threshold bytes. The forwarder calls it whenever the
// queue empties; dead letters cannot be compacted away, so a file they fill
// is left alone instead of being rewritten after every batch.
func (s *Spool) CompactIfLarger(threshold int64) (CompactResult, bool, error) {
	st, err := s.Stats()
	if err != nil || st.PendingEvents > 0 || st.FileBytes <= threshold {
		return CompactResult{}, false, err
	}
	if free := s.FreeBytes(); free < min(st.FileBytes/2, threshold) {
		return CompactResult{}, false, nil
	}
	res, err := s.Compact()
	return res, err == nil, err
}

// FreeBytes is the space inside the file that bbolt holds as free pages
// (reused by later writes, returned to the disk only by Compact).
func (s *Spool) FreeBytes() int64 {
	s.compactMu.RLock()
	defer s.compactMu.RUnlock()
	if s.db == nil {
		return 0
	}
	return int64(s.db.Stats().FreeAlloc)
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
