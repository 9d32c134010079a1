package eval

import (
	"encoding/json"
	"math"
	"strings"
	"time"
)

// Dates follow the Rust service (properties/property_matching.rs and
// relative_date.rs). The definitions carry no team timezone, so naive dates
// ("2024-06-01", "2024-06-01 10:00") are read as UTC; the service reads them in
// the team's timezone, which is UTC for most teams.

// relativeDate is a parsed "-7d"/"3h"/"-1m": number of units back from now.
type relativeDate struct {
	n    int
	unit byte // h d w m y
}

// parseRelative accepts ^-?[0-9]+[hdwmy]$ with the number below 10 000, as the
// service does; the leading minus is optional and means the same thing.
func parseRelative(s string) (relativeDate, bool) {
	t := strings.TrimPrefix(s, "-")
	if len(t) < 2 {
		return relativeDate{}, false
	}
	unit := t[len(t)-1]
	switch unit {
	case 'h', 'd', 'w', 'm', 'y':
	default:
		return relativeDate{}, false
	}
	n := 0
	for i := 0; i < len(t)-1; i++ {
		c := t[i]
		if c < '0' || c > '9' {
			return relativeDate{}, false
		}
		n = n*10 + int(c-'0')
		if n >= 10000 {
			return relativeDate{}, false
		}
	}
	return relativeDate{n: n, unit: unit}, true
}

// resolve subtracts the interval from now. Months and years step one at a
// time, clamping the day to the target month's length at each step, exactly as
// the service's loop does (so Mar 31 - 2m is Jan 29, not Jan 31).
func (r relativeDate) resolve(now time.Time) time.Time {
	now = now.UTC()
	switch r.unit {
	case 'h':
		return now.Add(-time.Duration(r.n) * time.Hour)
	case 'd':
		return now.Add(-time.Duration(r.n) * 24 * time.Hour)
	case 'w':
		return now.Add(-time.Duration(r.n) * 7 * 24 * time.Hour)
	}
	y, m, d := now.Date()
	clock := now.Sub(time.Date(y, m, d, 0, 0, 0, 0, time.UTC))
	for i := 0; i < r.n; i++ {
		switch r.unit {
		case 'm':
			if m == time.January {
				y, m = y-1, time.December
			} else {
				m--
			}
			d = min(d, daysIn(y, m))
		case 'y':
			y--
			if m == time.February {
				d = min(d, daysIn(y, m))
			}
		}
	}
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Add(clock)
}

func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// naiveLayouts are the service's wall-clock formats without an offset.
var naiveLayouts = []string{
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04",
	"2006-01-02T15:04",
}

// fallbackLayouts stand in for the dateparser crate the service falls back to.
// It understands more shapes than these; a string we cannot read but that
// looks like a date makes the filter inconclusive rather than false.
var fallbackLayouts = []string{
	time.RFC1123Z, time.RFC1123, time.RFC850, time.RFC822Z, time.RFC822,
	time.ANSIC, time.UnixDate, time.RubyDate,
	"2006-01-02T15:04:05.999999999-0700",
	"2006-01-02 15:04:05.999999999-0700",
	"2006-01-02T15:04:05.999999999-07",
	"2006/01/02", "2006/01/02 15:04:05",
	"January 2, 2006", "Jan 2, 2006", "2 January 2006", "2 Jan 2006",
	"January 2, 2006 15:04:05", "Jan 2, 2006 15:04:05",
}

// dateParse is one of: a fixed instant, a relative date, or unreadable.
type dateParse struct {
	abs      time.Time
	rel      relativeDate
	isRel    bool
	ok       bool
	unsure   bool // not readable here, but dateparser might read it
	unsureOf string
}

func (d dateParse) at(now time.Time) time.Time {
	if d.isRel {
		return d.rel.resolve(now)
	}
	return d.abs
}

// parseDateString is the service's parse_date_string_in_tz with a UTC team.
func parseDateString(s string) dateParse {
	if r, ok := parseRelative(s); ok {
		return dateParse{rel: r, isRel: true, ok: true}
	}
	if t, ok := parseRFC3339(s); ok {
		return dateParse{abs: t, ok: true}
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return dateParse{abs: t, ok: true}
	}
	for _, l := range naiveLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return dateParse{abs: t, ok: true}
		}
	}
	for _, l := range fallbackLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return dateParse{abs: t.UTC(), ok: true}
		}
	}
	if strings.ContainsAny(s, "0123456789") {
		return dateParse{unsure: true, unsureOf: s}
	}
	return dateParse{}
}

// parseRFC3339 mirrors chrono's parse_from_rfc3339, which also takes a space or
// lower-case t between date and time and a lower-case z.
func parseRFC3339(s string) (time.Time, bool) {
	if len(s) < 20 {
		return time.Time{}, false
	}
	if s[10] == ' ' || s[10] == 't' {
		s = s[:10] + "T" + s[11:]
	}
	if s[len(s)-1] == 'z' {
		s = s[:len(s)-1] + "Z"
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// propertyDate is the service's determine_parsed_date_for_property_matching:
// numeric strings and numbers are Unix seconds; other strings are dates.
// ok=false means "no date" (the filter does not match); unsure means we
// cannot tell.
func propertyDate(v any, now time.Time) (t time.Time, ok bool, unsure bool) {
	switch x := v.(type) {
	case string:
		if f, isNum := rustParseFloat(x); isNum {
			t, ok = floatTimestamp(f)
			return t, ok, false
		}
		d := parseDateString(x)
		if d.unsure {
			return time.Time{}, false, true
		}
		if !d.ok {
			return time.Time{}, false, false
		}
		return d.at(now), true, false
	case bool, nil, []any, map[string]any:
		return time.Time{}, false, false
	case json.Number:
		f, isNum := rustParseFloat(string(x))
		if !isNum {
			return time.Time{}, false, false
		}
		t, ok = floatTimestamp(f)
		return t, ok, false
	default:
		f, isNum := numberOf(v)
		if !isNum {
			return time.Time{}, false, false
		}
		t, ok = floatTimestamp(f)
		return t, ok, false
	}
}

// floatTimestamp converts Unix seconds with a fraction, as the service does.
func floatTimestamp(f float64) (time.Time, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 8e12 {
		return time.Time{}, false
	}
	whole := math.Floor(f)
	frac := math.Round(math.Mod(f, 1.0) * 1e9)
	if frac < 0 { // Rust's `as u32` saturates negative values to zero
		frac = 0
	}
	return time.Unix(int64(whole), int64(frac)).UTC(), true
}
