package eval

import (
	"encoding/json"
	"math"
	"regexp"
	"strconv"
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

// fallbackLayouts stand in for the dateparser crate the service falls back
// to (dateparser::parse, whose "local" timezone is the service's, UTC). Those
// with a time of day are fixed instants. It understands more shapes than
// these; a string we cannot read but that looks like a date makes the filter
// inconclusive rather than false.
var fallbackLayouts = []string{
	time.RFC1123Z, time.RFC1123, time.RFC822Z, time.RFC822,
	"2006-01-02T15:04:05.999999999-0700",
	"2006-01-02 15:04:05.999999999-0700",
	"2006-01-02T15:04:05.999999999-07",
	"January 2, 2006 15:04:05", "Jan 2, 2006 15:04:05",
}

// clockLayouts are dateparser's date-only shapes (month_mdy, month_dmy):
// it reads them at the current time of day, not at midnight.
var clockLayouts = []string{
	"January 2, 2006", "Jan 2, 2006", "2 January 2006", "2 Jan 2006",
}

// dateParse is one of: a fixed instant, a relative date, a date read at the
// current time of day, or unreadable.
type dateParse struct {
	abs      time.Time // for clock: the date at midnight UTC
	rel      relativeDate
	isRel    bool
	clock    bool // dateparser's date-only shapes: the date at now's time of day
	ok       bool
	unsure   bool // not readable here, but dateparser might read it
	unsureOf string
}

func (d dateParse) at(now time.Time) time.Time {
	switch {
	case d.isRel:
		return d.rel.resolve(now)
	case d.clock:
		now = now.UTC()
		y, m, dd := now.Date()
		return d.abs.Add(now.Sub(time.Date(y, m, dd, 0, 0, 0, 0, time.UTC)))
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
	return parseDateparser(s)
}

// parseDateparser is the service's last resort, dateparser::parse, for the
// shapes we can read as it does; see fallbackLayouts.
func parseDateparser(s string) dateParse {
	if d, ok := unixTimestamp(s); ok {
		return d
	}
	if d, ok := slashDate(s); ok {
		return d
	}
	for _, l := range fallbackLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return dateParse{abs: t.UTC(), ok: true}
		}
	}
	for _, l := range clockLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return dateParse{abs: t, clock: true, ok: true}
		}
	}
	if strings.ContainsAny(s, "0123456789") {
		return dateParse{unsure: true, unsureOf: s}
	}
	return dateParse{}
}

// unixTimestamp is dateparser's first shape: 10, 13 or 19 digits are Unix
// seconds, milliseconds or nanoseconds (a filter value; the person's numeric
// strings never get here, they are read as seconds first).
func unixTimestamp(s string) (dateParse, bool) {
	if len(s) != 10 && len(s) != 13 && len(s) != 19 {
		return dateParse{}, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || s[0] == '+' || s[0] == '-' {
		return dateParse{}, false
	}
	var t time.Time
	switch len(s) {
	case 10:
		t = time.Unix(n, 0)
	case 13:
		t = time.UnixMilli(n)
	default:
		t = time.Unix(0, n)
	}
	return dateParse{abs: t.UTC(), ok: true}, true
}

// slashDateRE is dateparser's slash_mdy_hms / slash_mdy (m/d/y, US order) and
// slash_ymd_hms / slash_ymd (y/m/d) shapes.
var slashDateRE = regexp.MustCompile(`^([0-9]{1,4})/([0-9]{1,2})/([0-9]{1,4})(?:\s+([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?(?:\.([0-9]{1,9}))?\s*(am|pm|AM|PM)?)?$`)

// slashDate reads "06/14/2024", "6/14/24", "06/14/2024 13:05[:07[.123]]",
// "6/14/2024 1:05 PM", "2024/06/14" and "2024/06/14 13:05" as dateparser
// does: month first unless the year leads, a two-digit year as 1970-2069,
// times in UTC, and a date alone at the current time of day.
func slashDate(s string) (dateParse, bool) {
	m := slashDateRE.FindStringSubmatch(s)
	if m == nil {
		return dateParse{}, false
	}
	var year, month, day int
	switch {
	case len(m[1]) == 4 && len(m[3]) <= 2: // yyyy/mm/dd
		year, month, day = atoi(m[1]), atoi(m[2]), atoi(m[3])
	case len(m[1]) <= 2 && len(m[3]) >= 2: // mm/dd/yy(yy)
		month, day, year = atoi(m[1]), atoi(m[2]), atoi(m[3])
		if len(m[3]) == 2 {
			if year < 70 {
				year += 2000
			} else {
				year += 1900
			}
		}
	default:
		return dateParse{unsure: true, unsureOf: s}, true
	}
	if month < 1 || month > 12 || day < 1 || day > daysIn(year, time.Month(month)) {
		return dateParse{}, true // no shape matches: the service's filter or value is no date
	}
	date := time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC)
	if m[4] == "" {
		return dateParse{abs: date, clock: true, ok: true}, true
	}
	h, mi, sec := atoi(m[4]), atoi(m[5]), 0
	if m[6] != "" {
		sec = atoi(m[6])
	}
	var nanos int
	if m[7] != "" {
		if m[8] != "" {
			return dateParse{unsure: true, unsureOf: s}, true // no 12-hour format takes a fraction
		}
		frac := m[7] + strings.Repeat("0", 9-len(m[7]))
		nanos = atoi(frac)
	}
	if m[8] != "" {
		if h < 1 || h > 12 {
			return dateParse{}, true
		}
		h %= 12
		if strings.EqualFold(m[8], "pm") {
			h += 12
		}
	}
	if h > 23 || mi > 59 || sec > 60 {
		return dateParse{}, true
	}
	return dateParse{abs: date.Add(time.Duration(h)*time.Hour + time.Duration(mi)*time.Minute +
		time.Duration(sec)*time.Second + time.Duration(nanos)), ok: true}, true
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
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
func propertyDate(v any) (d dateParse, ok bool, unsure bool) {
	switch x := v.(type) {
	case string:
		if f, isNum := rustParseFloat(x); isNum {
			return timestampDate(f)
		}
		d := parseDateString(x)
		if d.unsure {
			return dateParse{}, false, true
		}
		return d, d.ok, false
	case bool, nil, []any, map[string]any:
		return dateParse{}, false, false
	case json.Number:
		f, isNum := rustParseFloat(string(x))
		if !isNum {
			return dateParse{}, false, false
		}
		return timestampDate(f)
	default:
		f, isNum := numberOf(v)
		if !isNum {
			return dateParse{}, false, false
		}
		return timestampDate(f)
	}
}

func timestampDate(f float64) (dateParse, bool, bool) {
	t, ok := floatTimestamp(f)
	return dateParse{abs: t, ok: ok}, ok, false
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
