package capture

import (
	"bytes"
	"compress/zlib"
	"errors"
	"net/http"
	"strings"
	"time"
)

// Reading a v1 request's body: Content-Encoding, then the batch object
// and its events with serde's rules, into raw JSON spans that the build
// step turns into v0 events.

// v1Event holds the raw JSON of one batch entry's fields (nil = absent).
type v1Event struct {
	event, uuid, distinctID, timestamp []byte
	sessionID, windowID                []byte
	options, properties                []byte
}

// v1Body undoes Content-Encoding (gzip, or deflate as zlib), bounded by
// V1BodyLimit before and after.
func v1Body(r Request) ([]byte, error) {
	raw := r.Body
	if len(raw) == 0 {
		return nil, v1Errorf(http.StatusBadRequest, "empty_body", "request body is empty")
	}
	if int64(len(raw)) > V1BodyLimit {
		return nil, v1TooBig(int64(len(raw)))
	}
	enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	switch enc {
	case "", "identity":
		return raw, nil
	case "gzip", "x-gzip":
		return v1Inflated(gunzip(raw, V1BodyLimit, V1Path, r.Reserve))
	case "deflate":
		zr, err := zlib.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, v1Errorf(http.StatusBadRequest, "request_decoding_error", "invalid deflate (zlib) data: %v", err)
		}
		defer zr.Close()
		return v1Inflated(inflate(zr, int64(len(raw)), V1BodyLimit, V1Path, "deflate (zlib)", r.Reserve))
	}
	return nil, v1Errorf(http.StatusUnsupportedMediaType, "unsupported_encoding",
		"Content-Encoding %q is not supported by this agent (it takes gzip or deflate; PostHog also takes zstd and br)", r.Header.Get("Content-Encoding"))
}

// v1Inflated turns a decompression's failure into v1's error: a refused
// reservation as it is, 413 payload_too_large, else 400
// request_decoding_error.
func v1Inflated(out []byte, err error) ([]byte, error) {
	if err == nil || isRefused(err) {
		return out, err
	}
	var ce *Error
	if errors.As(err, &ce) && ce.Status == http.StatusRequestEntityTooLarge {
		return nil, v1Errorf(ce.Status, "payload_too_large", "%s", ce.Message)
	}
	return nil, v1Errorf(http.StatusBadRequest, "request_decoding_error", "%v", err)
}

// parseV1 validates the body as JSON and reads the batch object, with
// serde's rules for PostHog's Batch and Event structs: required fields,
// exact key names, no field twice, unknown keys ignored.
func parseV1(b []byte) (createdAt time.Time, historical bool, events []v1Event, err error) {
	if off, ok := validUTF8(b); !ok {
		return createdAt, false, nil, v1Parse("invalid UTF-8 in request body at byte %d", off)
	}
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		if i >= len(b) {
			return createdAt, false, nil, v1Errorf(http.StatusBadRequest, "empty_body", "request body has no JSON")
		}
		return createdAt, false, nil, v1Parse("body is not a JSON object with created_at and batch")
	}
	it, err := newObjIter(b, i, 1)
	if err != nil {
		return createdAt, false, nil, v1Parse("%v", err)
	}
	var created, hist, batch []byte
	for {
		m, ok, err := it.next()
		if err != nil {
			return createdAt, false, nil, v1Parse("%v", err)
		}
		if !ok {
			break
		}
		var dst *[]byte
		switch string(m.keyBytes()) {
		case "created_at":
			dst = &created
		case "historical_migration":
			dst = &hist
		case "batch":
			dst = &batch
		default:
			continue
		}
		if *dst != nil {
			return createdAt, false, nil, v1Parse("duplicate field %s", m.key)
		}
		*dst = m.val
	}
	if j := skipWS(b, it.i); j < len(b) {
		return createdAt, false, nil, v1Parse("invalid JSON at byte %d: unexpected %s after the top-level value", j, describe(b, j))
	}
	switch {
	case created == nil:
		return createdAt, false, nil, v1Parse("missing field created_at")
	case created[0] != '"':
		return createdAt, false, nil, v1Parse("created_at is %s, not a string", jsonKind(created))
	}
	switch string(hist) {
	case "", "false":
	case "true":
		historical = true
	default:
		return createdAt, false, nil, v1Parse("historical_migration is %s, not a boolean", jsonKind(hist))
	}
	switch {
	case batch == nil:
		return createdAt, false, nil, v1Parse("missing field batch")
	case batch[0] != '[':
		return createdAt, false, nil, v1Parse("batch is %s, not an array", jsonKind(batch))
	}
	ait, err := newArrIter(batch, 0, 2)
	if err != nil {
		return createdAt, false, nil, v1Parse("%v", err)
	}
	for n := 0; ; n++ {
		val, _, ok, err := ait.next()
		if err != nil {
			return createdAt, false, nil, v1Parse("%v", err)
		}
		if !ok {
			break
		}
		ev, err := parseV1Event(val, n)
		if err != nil {
			return createdAt, false, nil, err
		}
		events = append(events, ev)
	}
	if len(events) == 0 {
		return createdAt, false, nil, v1Errorf(http.StatusBadRequest, "empty_batch", "request batch is empty")
	}
	ca := decodeString(created)
	t, ok := parseRFC3339([]byte(ca))
	if !ok {
		return createdAt, false, nil, v1Errorf(http.StatusBadRequest, "invalid_batch", "created_at is not valid RFC 3339: %s", quoteShort([]byte(ca)))
	}
	return t, historical, events, nil
}

func parseV1Event(b []byte, n int) (v1Event, error) {
	var ev v1Event
	if b[0] != '{' {
		return ev, v1Parse("batch[%d] is %s, not an event object", n, jsonKind(b))
	}
	it, err := newObjIter(b, 0, 3)
	if err != nil {
		return ev, v1Parse("batch[%d]: %v", n, err)
	}
	for {
		m, ok, err := it.next()
		if err != nil {
			return ev, v1Parse("batch[%d]: %v", n, err)
		}
		if !ok {
			break
		}
		var dst *[]byte
		str, nullable := false, false
		switch string(m.keyBytes()) {
		case "event":
			dst, str = &ev.event, true
		case "uuid":
			dst, str = &ev.uuid, true
		case "distinct_id":
			dst, str = &ev.distinctID, true
		case "timestamp":
			dst, str = &ev.timestamp, true
		case "session_id":
			dst, str, nullable = &ev.sessionID, true, true
		case "window_id":
			dst, str, nullable = &ev.windowID, true, true
		case "options":
			dst = &ev.options
		case "properties":
			dst = &ev.properties
		default:
			continue
		}
		if *dst != nil {
			return ev, v1Parse("batch[%d]: duplicate field %s", n, m.key)
		}
		v := m.val
		if str && v[0] != '"' && !(nullable && isNull(v)) {
			return ev, v1Parse("batch[%d]: %s is %s, not a string", n, m.key, jsonKind(v))
		}
		*dst = v
	}
	for _, f := range []struct {
		name string
		v    []byte
	}{{"event", ev.event}, {"uuid", ev.uuid}, {"distinct_id", ev.distinctID}, {"timestamp", ev.timestamp}} {
		if f.v == nil {
			return ev, v1Parse("batch[%d]: missing field %s", n, f.name)
		}
	}
	if ev.sessionID != nil && isNull(ev.sessionID) {
		ev.sessionID = nil
	}
	if ev.windowID != nil && isNull(ev.windowID) {
		ev.windowID = nil
	}
	return ev, nil
}

// v1UUIDs parses every event's uuid and refuses a batch that names one
// twice, since the answer is keyed by uuid.
func v1UUIDs(events []v1Event) ([][16]byte, error) {
	uuids := make([][16]byte, len(events))
	seen := make(map[[16]byte]bool, len(events))
	for i := range events {
		u, err := v1UUID(events[i].uuid, i)
		if err != nil {
			return nil, err
		}
		if seen[u] {
			return nil, v1Errorf(http.StatusBadRequest, "duplicate_event_uuid", "batch[%d]: uuid %s appears more than once in the batch", i, uuidString(u))
		}
		seen[u] = true
		uuids[i] = u
	}
	return uuids, nil
}

// v1UUID parses an event's uuid. PostHog keys the answer by uuid, so a
// missing or invalid one refuses the whole request (400), as it does.
func v1UUID(raw []byte, i int) ([16]byte, error) {
	s := bytes.TrimSpace(stringContent(raw, bytes.IndexByte(raw, '\\') >= 0))
	if len(s) == 0 {
		return [16]byte{}, v1Errorf(http.StatusBadRequest, "missing_event_uuid", "batch[%d]: event submitted without a uuid", i)
	}
	u, ok := parseUUID(s)
	if !ok {
		return [16]byte{}, v1Errorf(http.StatusBadRequest, "invalid_event_uuid", "batch[%d]: uuid %s is not a valid UUID", i, quoteShort(s))
	}
	return u, nil
}
