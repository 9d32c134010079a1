package capture

import (
	"bytes"
	"strings"
	"time"
	"unicode/utf8"
)

// buildV1 turns parsed v1 events into normalised v0 events in one buffer,
// as normalise does for v0. Unlike v0, an event PostHog would refuse is
// dropped on its own with a reason rather than failing the request, so
// results gets an entry for every event, keyed by its canonical uuid.
func buildV1(events []v1Event, uuids [][16]byte, skew time.Duration, now time.Time, inject []byte, maxBytes int) ([][]byte, map[string]V1Result) {
	results := make(map[string]V1Result, len(events))
	size := 0
	for i := range events {
		ev := &events[i]
		size += 256 + len(ev.event) + len(ev.distinctID) + len(ev.properties) + len(ev.sessionID) + len(ev.windowID) + len(inject)
	}
	buf := make([]byte, 0, size)
	ends := make([]int, 0, len(events))
	for i := range events {
		key := uuidString(uuids[i])
		start := len(buf)
		var details string
		buf, details = appendV1Event(buf, &events[i], uuids[i], skew, now, inject)
		if details == "" && len(buf)-start > maxBytes {
			details = "event_too_big"
		}
		if details != "" {
			buf = buf[:start]
			results[key] = V1Result{Result: V1ResultDrop, Details: details}
			continue
		}
		ends = append(ends, len(buf))
		results[key] = V1Result{Result: V1ResultOK}
	}
	return splitEvents(buf, ends), results
}

func uuidString(u [16]byte) string {
	b := appendUUID(nil, u)
	return string(b[1 : len(b)-1])
}

// appendV1Event appends the normalised v0 event, or returns a drop reason
// (PostHog's detail tags) and leaves dst to be truncated by the caller.
func appendV1Event(dst []byte, ev *v1Event, u [16]byte, skew time.Duration, now time.Time, inject []byte) ([]byte, string) {
	name := decodeString(ev.event)
	switch {
	case name == "$performance_event":
		return dst, "dropped_performance_event"
	case name == "":
		return dst, "missing_event_name"
	case len(name) > v1MaxEventNameLen:
		return dst, "event_name_too_long"
	}
	did := strings.TrimSpace(decodeString(ev.distinctID))
	switch {
	case did == "":
		return dst, "missing_distinct_id"
	case len(did) > v1MaxDistinctIDLen:
		return dst, "distinct_id_too_large"
	}
	ts, ok := parseRFC3339(stringContent(ev.timestamp, bytes.IndexByte(ev.timestamp, '\\') >= 0))
	if !ok {
		return dst, "invalid_event_timestamp"
	}
	props := ev.properties
	if props == nil {
		props = []byte("{}")
	}
	if props[0] != '{' {
		return dst, "malformed_event_properties"
	}
	opts, ok := parseV1Options(ev.options)
	if !ok {
		return dst, "invalid_options"
	}

	dst = append(dst, `{"uuid":`...)
	dst = appendUUID(dst, u)
	dst = append(dst, `,"event":`...)
	dst = append(dst, ev.event...)
	dst = append(dst, `,"distinct_id":`...)
	dst = appendString(dst, []byte(did))
	dst = append(dst, `,"timestamp":`...)
	dst = appendTimestamp(dst, v1Time(ts, skew, now, opts.skewOff != nil && *opts.skewOff))
	dst = append(dst, `,"properties":`...)

	// PostHog appends these after the client's keys (later keys win).
	extra := make([]byte, 0, 128)
	add := func(key string, val []byte) {
		if len(extra) > 0 {
			extra = append(extra, ',')
		}
		extra = append(extra, '"')
		extra = append(extra, key...)
		extra = append(extra, `":`...)
		extra = append(extra, val...)
	}
	if ev.sessionID != nil {
		add("$session_id", ev.sessionID)
	}
	if ev.windowID != nil {
		add("$window_id", ev.windowID)
	}
	if opts.cookieless != nil {
		add("$cookieless_mode", boolJSON(*opts.cookieless))
	}
	if opts.skewOff != nil {
		add("$ignore_sent_at", boolJSON(*opts.skewOff))
	}
	if opts.productTour != nil {
		add("$product_tour_id", appendString(nil, []byte(*opts.productTour)))
	}
	if opts.personProfile != nil {
		add("$process_person_profile", boolJSON(*opts.personProfile))
	}
	if len(inject) > 0 {
		if len(extra) > 0 {
			extra = append(extra, ',')
		}
		extra = append(extra, inject...)
	}
	dst = appendProperties(dst, props, extra)
	return append(dst, '}'), ""
}

// v1Time is process.rs's normalize_timestamp: the event time minus the
// client's clock skew, clamped to now when over 23h ahead; untouched when
// the event disables skew correction.
func v1Time(ts time.Time, skew time.Duration, now time.Time, skewOff bool) time.Time {
	t := ts
	if !skewOff {
		t = clampFuture(ts.Add(-skew), now)
	}
	return storableTime(t)
}

func boolJSON(b bool) []byte {
	if b {
		return []byte("true")
	}
	return []byte("false")
}

// sdkInfoProps turns "PostHog-Sdk-Info: <lib>/<version>" into the $lib and
// $lib_version properties PostHog adds (split at the last '/'; nothing for
// a malformed or oversized value). posthog-node moves $lib out of the
// event's properties into this header, so without it the events would
// reach PostHog with no library.
func sdkInfoProps(info string) []byte {
	if info == "" || len(info) > v1MaxSDKInfoLen || !utf8.ValidString(info) {
		return nil
	}
	i := strings.LastIndexByte(info, '/')
	if i < 0 {
		return nil
	}
	lib, ver := strings.TrimSpace(info[:i]), strings.TrimSpace(info[i+1:])
	if lib == "" || ver == "" {
		return nil
	}
	out := []byte(`"$lib":`)
	out = appendString(out, []byte(lib))
	out = append(out, `,"$lib_version":`...)
	return appendString(out, []byte(ver))
}
