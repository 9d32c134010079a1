// Package spool is hogrelay's write-ahead spool: a bbolt file that holds every
// acknowledged event until PostHog has taken it.
//
// Producers call Append, which returns only after the events are committed and
// fsynced. A single writer goroutine commits whatever requests are waiting in
// one transaction (group commit), so concurrent producers share fsyncs: bbolt
// manages ~1,800 fsynced transactions a second on a small VM, but ~100,000
// events a second when a transaction carries hundreds of them.
//
// The forwarder reads from the head with Next and removes what PostHog took
// with Done, which also moves events PostHog refused for good into the
// dead-letter bucket, where they stay countable, exportable and re-queueable.
//
// Lock order (the one place it is written; docs/architecture.md points here):
//
//  1. sendMu (RW): Append holds it for reading across its send on the
//     writes channel (which blocks while the channel is full); Close takes it
//     for writing only to set closed. The writer never takes it, so a blocked
//     sender always proceeds.
//  2. compactMu (RW): held for reading around every bbolt transaction (view,
//     update, Stats, NextFrom, FreeBytes); for writing only while Compact
//     swaps the file, setDB publishes a file opened late, and Close closes it.
//     Never held while calling out: Each and Export take it per page and call
//     their fn (which may write to a client) with no lock held.
//  3. ctrMu: held by update across db.Update, so the depth counters, the
//     per-token usage and the in-flight drops change in commit order; also
//     taken alone (Stats, Close).
//  4. bbolt's own locks, inside the transaction.
//
// Every write after open (Append's group commit, Done, quarantine, Requeue,
// Import, drops) goes through update; only initialise, before anyone else
// can use the file, writes directly.
package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"

	"github.com/hogrelay/hogrelay/logging"
)

// Policy says what Append does when the spool is at its size bound.
type Policy int

const (
	// Reject refuses new events (producers get 503 + Retry-After); nothing
	// stored is touched.
	Reject Policy = iota
	// DropOldest deletes the oldest pending events to make room, counting and
	// logging every drop.
	DropOldest
)

// String is the policy's name in the config ([spool] when_full).
func (p Policy) String() string {
	if p == DropOldest {
		return "drop_oldest"
	}
	return "reject"
}

// MarshalText writes the config's name for the policy.
func (p Policy) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText reads [spool] when_full: the rule lives here, with the type,
// and the config decoder reports its error with the file, line and key.
func (p *Policy) UnmarshalText(b []byte) error {
	switch string(b) {
	case "reject":
		*p = Reject
	case "drop_oldest":
		*p = DropOldest
	default:
		return fmt.Errorf("%q is not \"reject\" or \"drop_oldest\"", b)
	}
	return nil
}

// Sentinel errors callers branch on.
var (
	// ErrFull means the events were not stored because the spool is at its bound.
	ErrFull = errors.New("spool is full")
	// ErrClosed means the spool is shutting down and accepts nothing more.
	ErrClosed = errors.New("spool is closed")
	// ErrLocked means another process (usually a running agent) holds the file.
	ErrLocked = errors.New("spool file is locked by another process")
	// ErrUnavailable means the spool file could not be opened yet (a full
	// disk, an I/O error) and Open is retrying; nothing is stored until then.
	ErrUnavailable = errors.New("spool is not open yet")
)

// Options configure Open. Zero values take the defaults noted.
type Options struct {
	// Path of the bbolt file, e.g. /var/lib/hogrelay/spool.db.
	Path string
	// MaxBytes bounds pending plus dead-letter bytes (default 2 GiB).
	MaxBytes int64
	WhenFull Policy
	Logger   zerolog.Logger
	// LockTimeout is how long Open waits for another process's lock (default 1s).
	LockTimeout time.Duration
	// ReadOnly opens without taking the writer role (for spool tools run
	// while no agent is up). Append, Done and friends fail.
	ReadOnly bool
	// WaitForDisk makes Open return a spool that is not open yet when the
	// file cannot be opened for a reason other than damage or another
	// process's lock (a full disk, an I/O error): it keeps retrying with
	// backoff, and until it succeeds every call fails with ErrUnavailable
	// naming the cause. The agent uses this so it stays up and says not
	// ready instead of exiting; tools leave it off and get the error.
	WaitForDisk bool
}

var (
	bucketPending = []byte("pending")
	bucketDead    = []byte("dead")
	bucketMeta    = []byte("meta")
	keyCounters   = []byte("counters")
)

// maxRecordEvents and maxRecordBytes cut a large request into several records
// so that no single bbolt value gets huge (large values are rewritten whole on
// every copy-on-write touch) and the forwarder can batch at record granularity.
const (
	maxRecordEvents = 500
	maxRecordBytes  = 1 << 20
)

// Spool is safe for concurrent use.
type Spool struct {
	opts Options
	log  zerolog.Logger

	// compactMu is held for reading by every user of db and for writing while
	// the file is swapped for its compacted copy.
	compactMu sync.RWMutex
	db        *bolt.DB

	writes chan *writeReq
	// sendMu makes "check closed, then queue" atomic against Close, so no
	// request is queued after the writer has drained and exited.
	sendMu  sync.RWMutex
	closing chan struct{}
	closed  atomic.Bool
	wg      sync.WaitGroup
	notify  chan struct{}

	// Counters mirror what is persisted in the meta bucket; they change only
	// inside write transactions, under ctrMu.
	ctrMu sync.Mutex
	ctr   counters
	// usage is each token's pending bytes, for the fair share (fairshare.go);
	// under ctrMu, changed with ctr.
	usage tokenUsage
	// dropped counts events deleted by the drop_oldest policy since start
	// and not delivered.
	dropped atomic.Uint64
	// handedOut is one past the highest seq Next has returned: pending
	// records below it are in flight. dropsInFlight holds the event counts of
	// in-flight records drop_oldest deleted, until Done says they were
	// delivered (or Close counts them as dropped); under ctrMu, changed
	// with ctr (counters.drops).
	handedOut     atomic.Uint64
	dropsInFlight map[uint64]int64
	// recovery is set once by Open when the file was damaged.
	recovery *Recovery
	// openErr holds why the file is not open yet (WaitForDisk); nil once open.
	openErr atomic.Pointer[error]
	// commitFailures rate-limits the error logged for a failed commit.
	commitFailures logging.Burst
	// commitSince is when the writer's current commit began (unix ns, 0 =
	// idle), so Health can tell a stalled writer from an idle one.
	commitSince atomic.Int64
}

// stallAfter is how long one group commit may take before Health calls the
// writer stalled; a healthy commit takes milliseconds, a full fsync on a
// busy disk well under a second.
var stallAfter = 5 * time.Second

// Health says whether the spool takes events now: nil, or why not (the file
// is not open yet, or the writer has been stuck in one commit for longer
// than stallAfter, e.g. behind a compaction that waits for a long reader).
// The agent's /readyz reports it.
func (s *Spool) Health() error {
	if err := s.OpenError(); err != nil {
		return err
	}
	if since := s.commitSince.Load(); since != 0 {
		if d := time.Since(time.Unix(0, since)); d > stallAfter {
			return fmt.Errorf("spool writer stalled: one commit has waited %s (a compaction or a long reader holds the file)", d.Round(time.Second))
		}
	}
	return nil
}

type counters struct {
	PendingEvents, PendingBytes, DeadEvents, DeadBytes int64
	NextSeq                                            uint64
	// tok is a write transaction's changes to Spool.usage (nil outside one).
	tok tokenUsage
	// drops is a write transaction's additions to Spool.dropsInFlight (nil
	// outside one): in-flight records drop_oldest deleted (dropOldestOf).
	drops map[uint64]int64
}

// Open opens (or creates) the spool file. A damaged file (one bbolt cannot
// open, one shorter than its metadata says, or a zero-byte file) is renamed
// aside, a fresh spool is started and every intact record of the damaged
// file is salvaged into it (Stats().Recovery says how many), so a damaged
// file neither crash-loops the agent nor loses what can be read. A file
// locked by another process is an error (ErrLocked), never moved; so is an
// I/O error such as a full disk, which says nothing about the file.
func Open(opts Options) (*Spool, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 2 << 30
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = time.Second
	}
	if !opts.ReadOnly {
		if err := os.MkdirAll(filepath.Dir(opts.Path), 0o750); err != nil {
			return nil, fmt.Errorf("spool: create directory for %s: %w", opts.Path, err)
		}
	}
	s := &Spool{
		opts:    opts,
		log:     opts.Logger.With().Str("component", "spool").Logger(),
		writes:  make(chan *writeReq, 1024),
		closing: make(chan struct{}),
		notify:  make(chan struct{}, 1),

		commitFailures: logging.Burst{Window: 10 * time.Second},

		dropsInFlight: map[uint64]int64{},
	}
	if err := s.openOrRecover(); err != nil {
		if !opts.WaitForDisk || opts.ReadOnly || errors.Is(err, ErrLocked) || errors.Is(err, ErrDamaged) {
			return nil, err
		}
		s.openErr.Store(&err)
		s.wg.Add(1)
		go s.retryOpen(err)
		return s, nil
	}
	if !opts.ReadOnly {
		s.wg.Add(1)
		go s.writer()
	}
	return s, nil
}

// OpenError is why the spool file is not open yet (see WaitForDisk), wrapped
// in ErrUnavailable; nil once it is open.
func (s *Spool) OpenError() error {
	if p := s.openErr.Load(); p != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, *p)
	}
	return nil
}

// Path is the spool file's path.
func (s *Spool) Path() string { return s.opts.Path }

// Close stops accepting events, commits everything already handed to the
// writer and closes the file. It is safe to call more than once.
func (s *Spool) Close() error {
	s.sendMu.Lock()
	if s.closed.Swap(true) {
		s.sendMu.Unlock()
		return nil
	}
	s.sendMu.Unlock()
	close(s.closing)
	s.wg.Wait()
	s.ctrMu.Lock()
	var lost int64
	for _, n := range s.dropsInFlight {
		lost += n
	}
	clear(s.dropsInFlight)
	s.ctrMu.Unlock()
	if lost > 0 {
		s.dropped.Add(uint64(lost))
		s.log.Warn().Int64("dropped_events", lost).
			Msg("events dropped by drop_oldest while they were being sent were not delivered before shutdown: they are lost")
	}
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	if s.db == nil {
		return nil // never opened (WaitForDisk)
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("spool: close %s: %w", s.opts.Path, err)
	}
	return nil
}

// Notify returns a channel that receives a value after new events are stored.
// There is one channel per spool: it suits a single consumer (the forwarder).
func (s *Spool) Notify() <-chan struct{} { return s.notify }

func (s *Spool) signal() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// Stats is a snapshot of the spool's depth.
type Stats struct {
	PendingEvents int64     `json:"pending_events"`
	PendingBytes  int64     `json:"pending_bytes"`
	DeadEvents    int64     `json:"dead_letter_events"`
	DeadBytes     int64     `json:"dead_letter_bytes"`
	MaxBytes      int64     `json:"max_bytes"`
	FileBytes     int64     `json:"file_bytes"`
	Oldest        time.Time `json:"oldest_received_at,omitzero"`
	// DroppedEvents counts events deleted by the drop_oldest policy since start.
	DroppedEvents uint64 `json:"dropped_events"`
	Path          string `json:"path"`
	// Recovery is set when the file was damaged at start (see Open).
	Recovery *Recovery `json:"recovery,omitempty"`
	// OpenError is why the file is not open yet (a full disk at start).
	OpenError string `json:"open_error,omitempty"`
}

// Stats reads the counters and the head record's receive time.
func (s *Spool) Stats() (Stats, error) {
	s.compactMu.RLock()
	defer s.compactMu.RUnlock()
	s.ctrMu.Lock()
	c := s.ctr
	s.ctrMu.Unlock()
	st := Stats{
		PendingEvents: c.PendingEvents, PendingBytes: c.PendingBytes,
		DeadEvents: c.DeadEvents, DeadBytes: c.DeadBytes,
		MaxBytes: s.opts.MaxBytes, DroppedEvents: s.dropped.Load(), Path: s.opts.Path,
		Recovery: s.recovery,
	}
	if err := s.OpenError(); err != nil {
		st.OpenError = err.Error()
		return st, err
	}
	if fi, err := os.Stat(s.opts.Path); err == nil {
		st.FileBytes = fi.Size()
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		k, v := tx.Bucket(bucketPending).Cursor().First()
		if k == nil {
			return nil
		}
		// A damaged head record has no time; Next quarantines it.
		if h, _, _, err := decodeHeader(v); err == nil {
			st.Oldest = h.received
		}
		return nil
	})
	return st, err
}

// Append stores events from one request (one token) and returns after they
// are fsynced. It fails with ErrFull when the spool is at its bound under the
// Reject policy, ErrClosed during shutdown, or the storage error (e.g. a full
// disk); in every failure case nothing of the request was stored.
func (s *Spool) Append(ctx context.Context, token string, historical bool, events [][]byte) error {
	if len(events) == 0 {
		return nil
	}
	if s.opts.ReadOnly {
		return fmt.Errorf("spool: %s is open read-only", s.opts.Path)
	}
	if err := s.OpenError(); err != nil {
		return err // not open (a full disk at start): no need to encode
	}
	// Encode in the caller's goroutine so producers share the CPU work and
	// the single writer only does bbolt work.
	now := time.Now()
	req := &writeReq{token: token, done: make(chan error, 1)}
	for start := 0; start < len(events); {
		end, size := start, 0
		for end < len(events) && end-start < maxRecordEvents && (end == start || size+len(events[end]) <= maxRecordBytes) {
			size += len(events[end])
			end++
		}
		chunk := events[start:end]
		req.records = append(req.records, encodeRecord(token, historical, now, "", chunk))
		req.events = append(req.events, int64(len(chunk)))
		start = end
	}
	for _, r := range req.records {
		req.bytes += int64(len(r))
	}
	s.sendMu.RLock()
	if s.closed.Load() {
		s.sendMu.RUnlock()
		return ErrClosed
	}
	select {
	case s.writes <- req:
		s.sendMu.RUnlock()
	case <-ctx.Done():
		s.sendMu.RUnlock()
		return ctx.Err()
	}
	// Once queued, the request is committed or refused by the writer even if
	// the producer goes away; wait for that outcome so the answer is true.
	return <-req.done
}
