package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"
)

// recordVersion is the first byte of every stored value, so a future format
// can be told apart from this one instead of being misread. Version 2 adds a
// CRC-32C of the record; version 1 records (written before it) are still read.
const (
	recordVersion   = 2
	recordVersionV1 = 1
)

// castagnoli is CRC-32C, which amd64 and arm64 compute in hardware: checking
// every record on every read costs well under a microsecond per KiB.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const flagHistorical = 1 << 0

// A record is one stored unit: a run of events from a single request that
// share a project token. Storing runs rather than single events keeps bbolt's
// per-key overhead off the hot path (a 100-event /batch is one key), while the
// forwarder still sends, splits and dead-letters individual events.
//
// Layout (all integers unsigned varints unless noted):
//
//	[0]      version (2; 1 has no checksum)
//	[1]      flags (bit 0: historical_migration)
//	[2:6]    CRC-32C (Castagnoli) of bytes [6:], little endian (version 2 only)
//	varint   received_at, unix milliseconds (signed)
//	uvarint  len(token), token
//	uvarint  len(reason), reason (dead letters only: why PostHog refused it)
//	uvarint  count, then count × (uvarint len, event JSON)
type Record struct {
	Seq        uint64
	Token      string
	Historical bool
	ReceivedAt time.Time
	Reason     string
	Events     [][]byte
	// Size is the encoded size in bytes, what the record costs on disk.
	Size int
}

func encodedSize(token, reason string, events [][]byte) int {
	n := 6 + binary.MaxVarintLen64 + uvarintLen(uint64(len(token))) + len(token) +
		uvarintLen(uint64(len(reason))) + len(reason) + uvarintLen(uint64(len(events)))
	for _, e := range events {
		n += uvarintLen(uint64(len(e))) + len(e)
	}
	return n
}

func encodeRecord(token string, historical bool, received time.Time, reason string, events [][]byte) []byte {
	b := make([]byte, 0, encodedSize(token, reason, events))
	var flags byte
	if historical {
		flags |= flagHistorical
	}
	b = append(b, recordVersion, flags, 0, 0, 0, 0)
	b = binary.AppendVarint(b, received.UnixMilli())
	b = binary.AppendUvarint(b, uint64(len(token)))
	b = append(b, token...)
	b = binary.AppendUvarint(b, uint64(len(reason)))
	b = append(b, reason...)
	b = binary.AppendUvarint(b, uint64(len(events)))
	for _, e := range events {
		b = binary.AppendUvarint(b, uint64(len(e)))
		b = append(b, e...)
	}
	binary.LittleEndian.PutUint32(b[2:6], crc32.Checksum(b[6:], castagnoli))
	return b
}

// encode re-encodes a decoded record (salvage and import keep the token,
// flags, receive time and dead-letter reason).
func (r Record) encode() []byte {
	return encodeRecord(r.Token, r.Historical, r.ReceivedAt, r.Reason, r.Events)
}

var (
	errCorruptRecord = errors.New("corrupt record")
	// errChecksum is a record whose bytes changed after it was written.
	errChecksum = fmt.Errorf("%w: checksum mismatch (the stored bytes were damaged)", errCorruptRecord)
)

// decodeRecord parses a stored value. It copies everything it returns, because
// bbolt's value slices are only valid inside the transaction.
func decodeRecord(seq uint64, v []byte) (Record, error) {
	hdr, count, rest, err := decodeHeader(v)
	if err != nil {
		return Record{Seq: seq, Size: len(v)}, fmt.Errorf("spool: record %d: %w", seq, err)
	}
	return decodeEvents(seq, v, hdr, count, rest)
}

// decodeEvents is decodeRecord once decodeHeader has read (and checked) v's
// header, for callers that looked at the header first: the checksum covers
// the whole record, so it is computed once.
func decodeEvents(seq uint64, v []byte, hdr header, count uint64, rest []byte) (Record, error) {
	r := Record{Seq: seq, Size: len(v)}
	r.Token, r.Historical, r.ReceivedAt, r.Reason = hdr.token, hdr.historical, hdr.received, hdr.reason
	r.Events = make([][]byte, 0, count)
	// One allocation for all event bytes of the record.
	buf := make([]byte, 0, len(rest))
	for i := uint64(0); i < count; i++ {
		l, n := binary.Uvarint(rest)
		if n <= 0 || uint64(len(rest)-n) < l {
			return r, fmt.Errorf("spool: record %d: event %d: %w", seq, i, errCorruptRecord)
		}
		start := len(buf)
		buf = append(buf, rest[n:n+int(l)]...)
		r.Events = append(r.Events, buf[start:len(buf):len(buf)])
		rest = rest[n+int(l):]
	}
	if len(rest) != 0 {
		return r, fmt.Errorf("spool: record %d: %d trailing bytes: %w", seq, len(rest), errCorruptRecord)
	}
	return r, nil
}

type header struct {
	token      string
	historical bool
	received   time.Time
	reason     string
}

// decodeHeader reads everything but the events, checking the record's
// checksum.
func decodeHeader(v []byte) (h header, count uint64, rest []byte, err error) {
	return parseHeader(v, true)
}

// eventCount is the number of events a record was stored with, read without
// checking its checksum: the depth counters added that number when the
// record was stored, so they take it off again even if the record is damaged
// (as long as its header is readable).
func eventCount(v []byte) int64 {
	_, n, _, err := parseHeader(v, false)
	if err != nil {
		return 0
	}
	return int64(n)
}

func parseHeader(v []byte, verify bool) (h header, count uint64, rest []byte, err error) {
	switch {
	case len(v) >= 6 && v[0] == recordVersion:
		if verify && binary.LittleEndian.Uint32(v[2:6]) != crc32.Checksum(v[6:], castagnoli) {
			return h, 0, nil, errChecksum
		}
		rest = v[6:]
	case len(v) >= 2 && v[0] == recordVersionV1:
		rest = v[2:]
	default:
		return h, 0, nil, fmt.Errorf("unknown record version: %w", errCorruptRecord)
	}
	h.historical = v[1]&flagHistorical != 0
	ms, n := binary.Varint(rest)
	if n <= 0 {
		return h, 0, nil, errCorruptRecord
	}
	h.received = time.UnixMilli(ms)
	rest = rest[n:]
	str := func() (string, bool) {
		l, n := binary.Uvarint(rest)
		if n <= 0 || uint64(len(rest)-n) < l {
			return "", false
		}
		s := string(rest[n : n+int(l)])
		rest = rest[n+int(l):]
		return s, true
	}
	var ok bool
	if h.token, ok = str(); !ok {
		return h, 0, nil, errCorruptRecord
	}
	if h.reason, ok = str(); !ok {
		return h, 0, nil, errCorruptRecord
	}
	count, n = binary.Uvarint(rest)
	if n <= 0 {
		return h, 0, nil, errCorruptRecord
	}
	return h, count, rest[n:], nil
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

func keySeq(k []byte) uint64 { return binary.BigEndian.Uint64(k) }
