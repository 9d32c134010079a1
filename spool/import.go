package spool

import (
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Recovery says what Open did with a damaged spool file at start; it stays
// in Stats (and so in the agent's status) until the agent restarts.
type Recovery struct {
	At      time.Time `json:"at"`
	Problem string    `json:"problem"`
	// MovedTo is where the damaged file now is (kept for inspection and for
	// another `hogrelay spool salvage`).
	MovedTo             string `json:"moved_to"`
	SalvagedEvents      int64  `json:"salvaged_events"`
	SalvagedDeadLetters int64  `json:"salvaged_dead_letters"`
	DamagedRecords      int    `json:"damaged_records"`
	Method              string `json:"method,omitempty"`
	SalvageError        string `json:"salvage_error,omitempty"`
}

// ImportResult counts what Import stored.
type ImportResult struct {
	PendingEvents int64 `json:"requeued_events"`
	DeadEvents    int64 `json:"requeued_dead_letters"`
}

// Import appends records (salvaged from a damaged file) at the end of the
// spool in one transaction: records with a dead-letter reason go back to the
// dead-letter bucket, the rest are pending. Records keep their token, flags
// and receive time. It stores records in order while they fit under the
// bound and fails with ErrFull for the rest; what was stored is counted.
func (s *Spool) Import(recs []Record) (ImportResult, error) {
	var res ImportResult
	var full error
	err := s.update(func(tx *bolt.Tx, c *counters) error {
		res, full = ImportResult{}, nil
		pending, dead := tx.Bucket(bucketPending), tx.Bucket(bucketDead)
		for _, r := range recs {
			v := r.encode()
			if used := c.PendingBytes + c.DeadBytes; used+int64(len(v)) > s.opts.MaxBytes {
				full = fmt.Errorf("%w: %d of %d bytes used", ErrFull, used, s.opts.MaxBytes)
				return nil
			}
			b, events, bytes := pending, &c.PendingEvents, &c.PendingBytes
			n := &res.PendingEvents
			if r.Reason != "" {
				b, events, bytes, n = dead, &c.DeadEvents, &c.DeadBytes, &res.DeadEvents
			}
			if err := b.Put(seqKey(c.NextSeq), v); err != nil {
				return err
			}
			c.NextSeq++
			*events += int64(len(r.Events))
			*bytes += int64(len(v))
			if r.Reason == "" {
				c.pendingAdded(v)
			}
			*n += int64(len(r.Events))
		}
		return nil
	})
	if err != nil {
		return ImportResult{}, err
	}
	if res.PendingEvents > 0 {
		s.signal()
	}
	return res, full
}

// salvageBatchBytes bounds one import transaction while salvaging.
const salvageBatchBytes = 4 << 20

// SalvageFrom salvages every intact record of a damaged spool file (see
// Salvage) into this spool.
func (s *Spool) SalvageFrom(path string) (SalvageReport, ImportResult, error) {
	return SalvageInto(path, salvageBatchBytes, s.Import)
}

// SalvageInto salvages every intact record of a damaged spool file (see
// Salvage) and hands them to store in chunks of about chunkBytes: Import on
// an open spool, or the admin import call of a running agent (the CLI).
// The result adds up what store stored, also when it fails midway.
func SalvageInto(path string, chunkBytes int, store func([]Record) (ImportResult, error)) (SalvageReport, ImportResult, error) {
	var total ImportResult
	var batch []Record
	size := 0
	flush := func() error {
		res, err := store(batch)
		total.PendingEvents += res.PendingEvents
		total.DeadEvents += res.DeadEvents
		batch, size = batch[:0], 0
		return err
	}
	rep, err := Salvage(path, func(r Record) error {
		batch = append(batch, r)
		if size += r.Size; size >= chunkBytes {
			return flush()
		}
		return nil
	})
	if err == nil && len(batch) > 0 {
		err = flush()
	}
	return rep, total, err
}

// EncodeRecords frames records for the wire (the admin import endpoint):
// each is its stored encoding, checksum included, after a uvarint length.
func EncodeRecords(recs []Record) []byte {
	var b []byte
	for _, r := range recs {
		v := r.encode()
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	return b
}

// DecodeRecords reads what EncodeRecords wrote, checking every record's
// checksum; a damaged frame fails the whole body.
func DecodeRecords(b []byte) ([]Record, error) {
	var out []Record
	for i := 0; len(b) > 0; i++ {
		l, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < l {
			return nil, fmt.Errorf("spool: record frame %d: bad length: %w", i, errCorruptRecord)
		}
		r, err := decodeRecord(0, b[n:n+int(l)])
		if err != nil {
			return nil, fmt.Errorf("spool: record frame %d: %w", i, err)
		}
		out = append(out, r)
		b = b[n+int(l):]
	}
	return out, nil
}
