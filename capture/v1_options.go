package capture

import (
	"bytes"
	"fmt"
	"strings"
)

// v1Options are an event's options after PostHog's coercion.
type v1Options struct {
	cookieless, skewOff, personProfile *bool
	productTour                        *string
}

// parseV1Options coerces options as PostHog's RawOptions::validate does:
// null or absent is none; booleans also from "true"/"false"/"1"/"0" and
// numbers; product_tour_id from a string or an integer; any other value,
// or options that are not an object, drop the event.
func parseV1Options(raw []byte) (v1Options, bool) {
	var o v1Options
	if raw == nil || isNull(raw) {
		return o, true
	}
	if raw[0] != '{' {
		return o, false
	}
	it, err := newObjIter(raw, 0, 3)
	if err != nil {
		return o, false
	}
	for {
		m, ok, err := it.next()
		if err != nil {
			return o, false
		}
		if !ok {
			return o, true
		}
		v := m.val
		if isNull(v) {
			continue
		}
		var dst **bool
		switch string(m.keyBytes()) {
		case "cookieless_mode":
			dst = &o.cookieless
		case "disable_skew_correction":
			dst = &o.skewOff
		case "process_person_profile":
			dst = &o.personProfile
		case "product_tour_id":
			s, ok := coerceString(v)
			if !ok {
				return o, false
			}
			o.productTour = &s
			continue
		default:
			continue
		}
		b, ok := coerceBool(v)
		if !ok {
			return o, false
		}
		*dst = &b
	}
}

func coerceBool(v []byte) (bool, bool) {
	switch v[0] {
	case 't':
		return true, true
	case 'f':
		return false, true
	case '"':
		switch strings.ToLower(strings.TrimSpace(decodeString(v))) {
		case "true", "1":
			return true, true
		case "false", "0":
			return false, true
		}
		return false, false
	case '{', '[':
		return false, false
	}
	// A number: nonzero is true.
	var f float64
	if _, err := fmt.Sscan(string(v), &f); err != nil {
		return false, false
	}
	return f != 0, true
}

func coerceString(v []byte) (string, bool) {
	if v[0] == '"' {
		return decodeString(v), true
	}
	if v[0] == '-' || (v[0] >= '0' && v[0] <= '9') {
		if bytes.ContainsAny(v, ".eE") {
			return "", false // serde's as_i64/as_u64 refuse non-integers
		}
		return string(v), true
	}
	return "", false
}
