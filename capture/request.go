package capture

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// shape is which of capture-rs's body shapes a request has, tried in its
// order: array of events, batch object, single event, engage.
type shape int

const (
	shapeArray shape = iota
	shapeBatch
	shapeSingle
	shapeEngage
)

// request is a parsed body before normalisation.
type request struct {
	shape      shape
	batchToken string // the batch object's api_key/token ("" = none)
	historical bool
	sentAt     time.Time
	hasSentAt  bool
	events     []rawEvent
}

// rawEvent holds the fields of one event as raw JSON spans of the body;
// nothing is decoded until normalisation needs it.
type rawEvent struct {
	index      int    // position in the request, for error messages
	label      string // "batch[i]" or "event", set only for non-batch shapes
	event      []byte // raw JSON string; nil when absent
	distinctID []byte // raw JSON value; nil when absent
	token      []byte // raw JSON string; nil when absent or null
	uuid       [16]byte
	hasUUID    bool
	properties []byte // raw JSON object; nil when absent
	timestamp  []byte // raw JSON string; nil when absent or null
	offset     int64
	hasOffset  bool
	set        []byte // raw JSON object; nil when absent or null
	setOnce    []byte
	engage     bool // no event name, on /engage: becomes $identify
	sendFlags  bool // "send_feature_flags": true — the agent adds flag properties

	props propsInfo // properties fields, looked up lazily
}

func (e *rawEvent) where() string {
	if e.label != "" {
		return e.label
	}
	return "batch[" + strconv.Itoa(e.index) + "]"
}

func (e *rawEvent) isPerformanceEvent() bool {
	if e.event == nil {
		return false
	}
	if bytes.Equal(e.event, []byte(`"$performance_event"`)) {
		return true
	}
	return bytes.IndexByte(e.event, '\\') >= 0 && decodeString(e.event) == "$performance_event"
}

func badRequest(format string, args ...any) *Error {
	return errorf(http.StatusBadRequest, format, args...)
}

// parseRequest validates the whole body as JSON and picks its shape.
func parseRequest(b []byte, engagePath bool) (request, error) {
	if off, ok := validUTF8(b); !ok {
		return request{}, badRequest("invalid UTF-8 in request payload at byte %d", off)
	}
	var req request
	i := skipWS(b, 0)
	if i >= len(b) {
		return req, badRequest("empty payload: the body has no JSON")
	}
	var end int
	var err error
	switch b[i] {
	case '[':
		req.shape = shapeArray
		end, err = parseEventArray(b, i, &req, 1)
	case '{':
		end, err = parseObject(b, i, &req, engagePath)
	default:
		v, verr := skipValue(b, i, 0)
		if verr != nil {
			return req, jsonErr(verr)
		}
		return req, badRequest("body is %s, not an event, an array of events or a batch object", jsonKind(b[i:v]))
	}
	if err != nil {
		return req, err
	}
	if j := skipWS(b, end); j < len(b) {
		return req, badRequest("invalid JSON at byte %d: unexpected %s after the top-level value", j, describe(b, j))
	}
	return req, nil
}

func jsonErr(err error) error {
	var se *syntaxError
	if errors.As(err, &se) {
		return badRequest("%s", se.Error())
	}
	return err
}

// parseEventArray parses an array of events at b[i].
func parseEventArray(b []byte, i int, req *request, depth int) (int, error) {
	it, err := newArrIter(b, i, depth)
	if err != nil {
		return i, jsonErr(err)
	}
	// ~500 bytes per event is typical; guessing avoids regrowth.
	if req.events == nil {
		req.events = make([]rawEvent, 0, min(len(b)/400+1, 4096))
	}
	for n := 0; ; n++ {
		val, off, ok, err := it.next()
		if err != nil {
			return it.i, jsonErr(err)
		}
		if !ok {
			return it.i, nil
		}
		if val[0] != '{' {
			return it.i, badRequest("batch[%d]: event is %s, not an object", n, jsonKind(val))
		}
		var ev rawEvent
		ev.index = n
		if err := parseEvent(b, off, depth+1, &ev); err != nil {
			return it.i, err
		}
		if ev.event == nil {
			return it.i, badRequest("batch[%d]: missing event name (the \"event\" field)", n)
		}
		req.events = append(req.events, ev)
	}
}

// parseObject handles a top-level object: a batch if it has a "batch"
// array, else one event (or an engage update on /engage). capture-rs tries
// the batch shape first, so a batch object wins even if it has event keys.
func parseObject(b []byte, i int, req *request, engagePath bool) (int, error) {
	it, err := newObjIter(b, i, 1)
	if err != nil {
		return i, jsonErr(err)
	}
	var tokenKey, tokenVal, historical, sentAt []byte
	dupToken := ""
	isBatch := false
	for {
		m, ok, err := it.nextKey()
		if err != nil {
			return it.i, jsonErr(err)
		}
		if !ok {
			break
		}
		key := m.name()
		if key == "batch" && m.valOff < len(b) && b[m.valOff] == '[' && !isBatch {
			isBatch = true
			end, err := parseEventArray(b, m.valOff, req, 2)
			if err != nil {
				return end, err
			}
			it.resume(end)
			continue
		}
		end, err := skipValue(b, m.valOff, 1)
		if err != nil {
			return end, jsonErr(err)
		}
		it.resume(end)
		v := b[m.valOff:end]
		switch key {
		case "api_key", "token":
			if tokenKey != nil {
				dupToken = key
			}
			tokenKey, tokenVal = []byte(key), v
		case "historical_migration":
			historical = v
		case "sent_at":
			sentAt = v
		}
	}
	end := it.i
	if !isBatch {
		req.events = nil
		ev := rawEvent{label: "event"}
		if err := parseEvent(b, i, 1, &ev); err != nil {
			return end, err
		}
		req.shape = shapeSingle
		if ev.event == nil {
			if !engagePath {
				return end, badRequest("event: missing event name (the \"event\" field; only /engage accepts updates without one)")
			}
			req.shape = shapeEngage
			ev.engage = true
		}
		req.events = []rawEvent{ev}
		return end, nil
	}

	req.shape = shapeBatch
	if dupToken != "" {
		return end, badRequest("batch has both api_key and token; send one")
	}
	if tokenVal != nil && !isNull(tokenVal) {
		if tokenVal[0] != '"' {
			return end, badRequest("batch %s is %s, not a string", tokenKey, jsonKind(tokenVal))
		}
		req.batchToken = decodeString(tokenVal)
	}
	switch string(historical) {
	case "true":
		req.historical = true
	case "", "false", "null":
	default:
		return end, badRequest("batch historical_migration is %s, not a boolean", jsonKind(historical))
	}
	switch {
	case sentAt == nil || isNull(sentAt):
	case sentAt[0] != '"':
		return end, badRequest("batch sent_at is %s, not a string", jsonKind(sentAt))
	default:
		// capture-rs ignores a sent_at it cannot parse.
		if t, ok := parseISO8601(decodeString(sentAt)); ok {
			req.sentAt, req.hasSentAt = t, true
		}
	}
	return end, nil
}

// parseEvent reads the fields capture-rs's RawEvent knows from the object at
// b[i], checking each one's type as serde would; unknown keys are dropped.
func parseEvent(b []byte, i, depth int, ev *rawEvent) error {
	it, err := newObjIter(b, i, depth)
	if err != nil {
		return jsonErr(err)
	}
	var seen uint16
	for {
		m, ok, err := it.next()
		if err != nil {
			return jsonErr(err)
		}
		if !ok {
			return nil
		}
		key := m.keyBytes()
		f := eventField(key)
		if f == fieldUnknown {
			continue
		}
		// serde refuses a field given twice, also through an alias.
		if seen&(1<<f) != 0 {
			return badRequest("%s: field %s is given more than once (directly or through an alias)", ev.where(), key)
		}
		seen |= 1 << f
		v := m.val
		switch f {
		case fieldToken:
			switch {
			case isNull(v):
			case v[0] == '"':
				ev.token = v
			default:
				return badRequest("%s: %s is %s, not a string", ev.where(), key, jsonKind(v))
			}
		case fieldDistinctID:
			if !isNull(v) {
				ev.distinctID = v
			}
		case fieldUUID:
			switch {
			case isNull(v):
			case v[0] == '"':
				s := stringContent(v, bytes.IndexByte(v, '\\') >= 0)
				if len(s) == 0 {
					break // an empty uuid means "assign one"
				}
				u, ok := parseUUID(s)
				if !ok {
					return badRequest("%s: uuid %s is not a valid UUID", ev.where(), quoteShort(s))
				}
				ev.uuid, ev.hasUUID = u, true
			default:
				return badRequest("%s: uuid is %s, not a string", ev.where(), jsonKind(v))
			}
		case fieldEvent:
			if v[0] != '"' {
				return badRequest("%s: event is %s, not a string", ev.where(), jsonKind(v))
			}
			ev.event = v
		case fieldProperties:
			if v[0] != '{' {
				return badRequest("%s: properties is %s, not an object", ev.where(), jsonKind(v))
			}
			ev.properties = v
		case fieldTimestamp:
			switch {
			case isNull(v):
			case v[0] == '"':
				ev.timestamp = v
			default:
				return badRequest("%s: timestamp is %s, not a string", ev.where(), jsonKind(v))
			}
		case fieldOffset:
			if isNull(v) {
				break
			}
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				return badRequest("%s: offset %s is not an integer number of milliseconds", ev.where(), quoteShort(v))
			}
			ev.offset, ev.hasOffset = n, true
		case fieldSendFlags:
			ev.sendFlags = string(v) == "true"
		case fieldSet, fieldSetOnce:
			switch {
			case isNull(v):
			case v[0] == '{':
				if f == fieldSet {
					ev.set = v
				} else {
					ev.setOnce = v
				}
			default:
				return badRequest("%s: %s is %s, not an object", ev.where(), key, jsonKind(v))
			}
		}
	}
}

const (
	fieldUnknown = iota
	fieldToken
	fieldDistinctID
	fieldUUID
	fieldEvent
	fieldProperties
	fieldTimestamp
	fieldOffset
	fieldSet
	fieldSetOnce
	fieldSendFlags
)

// eventField maps a key (with capture-rs's aliases) to a field.
func eventField(key []byte) int {
	switch string(key) {
	case "token", "api_key", "$token":
		return fieldToken
	case "distinct_id", "$distinct_id":
		return fieldDistinctID
	case "uuid":
		return fieldUUID
	case "event":
		return fieldEvent
	case "properties":
		return fieldProperties
	case "timestamp":
		return fieldTimestamp
	case "offset":
		return fieldOffset
	case "$set":
		return fieldSet
	case "$set_once":
		return fieldSetOnce
	case "send_feature_flags":
		return fieldSendFlags
	}
	return fieldUnknown
}

// quoteShort quotes a value for an error message, cut so a megabyte of
// garbage does not end up in a log line.
func quoteShort(b []byte) string {
	const max = 64
	if len(b) > max {
		return fmt.Sprintf("%q...", b[:max])
	}
	return fmt.Sprintf("%q", b)
}
