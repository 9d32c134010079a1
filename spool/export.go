package spool

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"time"
)

// ExportLine is one line of `hogrelay spool export`: an event with where it
// sits in the spool. The project token is left out on purpose (keys never
// appear in tool output).
type ExportLine struct {
	Seq        uint64          `json:"seq"`
	ReceivedAt time.Time       `json:"received_at"`
	Historical bool            `json:"historical_migration,omitempty"`
	Reason     string          `json:"dead_letter_reason,omitempty"`
	Event      json.RawMessage `json:"event,omitempty"`
}

// Export writes every event of the chosen bucket to w as JSON lines and
// returns how many lines it wrote. The agent (over the admin socket) and
// the CLI (on a stopped agent's file) both use it. It holds no lock while it
// writes (see Each), so a reader that stops reading stalls only itself.
func (s *Spool) Export(w io.Writer, which Which) (int, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	n := 0
	err := s.Each(which, func(rec Record) error {
		if len(rec.Events) == 0 {
			n++
			return enc.Encode(ExportLine{Seq: rec.Seq, ReceivedAt: rec.ReceivedAt, Reason: rec.Reason})
		}
		for _, e := range rec.Events {
			line := ExportLine{Seq: rec.Seq, ReceivedAt: rec.ReceivedAt, Historical: rec.Historical, Reason: rec.Reason, Event: e}
			if !json.Valid(e) {
				line.Event = nil
				line.Reason = "stored bytes are not valid JSON"
			}
			if err := enc.Encode(line); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	return n, err
}

// DeadLetter is one entry of the dead-letter listing.
type DeadLetter struct {
	Seq        uint64          `json:"seq"`
	ReceivedAt time.Time       `json:"received_at"`
	Reason     string          `json:"reason"`
	Event      json.RawMessage `json:"event,omitempty"`
}

var errLimit = errors.New("limit reached")

// DeadLetterList returns up to limit dead letters, oldest first. A damaged
// record is listed with the decode error as its reason and no event.
func (s *Spool) DeadLetterList(limit int) ([]DeadLetter, error) {
	out := []DeadLetter{}
	err := s.Each(DeadLetters, func(rec Record) error {
		if len(rec.Events) == 0 {
			if len(out) >= limit {
				return errLimit
			}
			out = append(out, DeadLetter{Seq: rec.Seq, ReceivedAt: rec.ReceivedAt, Reason: rec.Reason})
		}
		for _, e := range rec.Events {
			if len(out) >= limit {
				return errLimit
			}
			d := DeadLetter{Seq: rec.Seq, ReceivedAt: rec.ReceivedAt, Reason: rec.Reason}
			if json.Valid(e) {
				d.Event = e
			}
			out = append(out, d)
		}
		return nil
	})
	if errors.Is(err, errLimit) {
		err = nil
	}
	return out, err
}
