package capture

import (
	"net/url"
	"strconv"
	"time"
)

// The rules here follow capture-rs's timestamp.rs: the server, not the
// client, decides when an event happened, correcting client clock skew with
// sent_at, and a timestamp it cannot parse silently becomes "now" rather
// than a refusal.

// futureCutoff: events further ahead than this are clamped to now.
const futureCutoff = 23 * time.Hour

// TimestampLayout is the one format of every timestamp Decode emits: UTC,
// millisecond precision, so a retried event is byte-identical.
const TimestampLayout = "2006-01-02T15:04:05.000Z"

// querySentAt reads ?sent_at= or ?_= (posthog-js): integer milliseconds.
// Values before 2021 are ignored because older SDKs sent seconds there.
func querySentAt(q url.Values) (time.Time, bool) {
	v := q.Get("sent_at")
	if v == "" {
		v = q.Get("_")
	}
	if v == "" {
		return time.Time{}, false
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms > 253402300799999 || ms < 0 { // beyond year 9999: not a time
		return time.Time{}, false
	}
	t := time.UnixMilli(ms).UTC()
	if t.Year() <= 2020 {
		return time.Time{}, false
	}
	return t, true
}

// eventTime computes an event's timestamp: now - offset when offset is
// given; else timestamp shifted by the client's clock skew (sent_at - now)
// when both are known; else timestamp; else now. Results more than 23h
// ahead become now, and years outside 0-9999 become the Unix epoch.
func eventTime(ts []byte, offset int64, hasOffset bool, sentAt time.Time, hasSentAt bool, now time.Time) time.Time {
	t := now
	if ts != nil {
		if parsed, ok := parseDate(ts); ok {
			if hasSentAt {
				t = parsed.Add(now.Sub(sentAt))
			} else {
				t = parsed
			}
		}
	}
	if hasOffset {
		const maxMs = int64(1<<63-1) / int64(time.Millisecond)
		if offset > maxMs || offset < -maxMs {
			return time.Unix(0, 0).UTC()
		}
		t = now.Add(-time.Duration(offset) * time.Millisecond)
	}
	return storableTime(clampFuture(t, now))
}

// clampFuture is capture-rs's guard against a client clock far ahead: a
// time more than 23h after now becomes now.
func clampFuture(t, now time.Time) time.Time {
	if t.Sub(now) > futureCutoff {
		return now
	}
	return t
}

// storableTime is t in UTC, or the Unix epoch when its year is outside
// 0-9999 and TimestampLayout cannot write it.
func storableTime(t time.Time) time.Time {
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		return time.Unix(0, 0).UTC()
	}
	return t.UTC()
}

// appendTimestamp formats t (UTC, year 0-9999) as TimestampLayout without
// the cost of time.AppendFormat's layout interpretation.
func appendTimestamp(dst []byte, t time.Time) []byte {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	ms := t.Nanosecond() / int(time.Millisecond)
	dst = append(dst, '"')
	dst = appendInt(dst, y, 4)
	dst = append(dst, '-')
	dst = appendInt(dst, int(mo), 2)
	dst = append(dst, '-')
	dst = appendInt(dst, d, 2)
	dst = append(dst, 'T')
	dst = appendInt(dst, h, 2)
	dst = append(dst, ':')
	dst = appendInt(dst, mi, 2)
	dst = append(dst, ':')
	dst = appendInt(dst, s, 2)
	dst = append(dst, '.')
	dst = appendInt(dst, ms, 3)
	return append(dst, 'Z', '"')
}

func appendInt(dst []byte, v, width int) []byte {
	var buf [8]byte
	i := len(buf)
	for w := 0; w < width || v > 0; w++ {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	return append(dst, buf[i:]...)
}

// parseISO8601 parses a batch sent_at (ISO 8601 with a zone, as SDKs send).
func parseISO8601(s string) (time.Time, bool) {
	if t, ok := parseRFC3339([]byte(s)); ok {
		return t, true
	}
	for _, layout := range [...]string{"2006-01-02T15:04:05Z0700", "2006-01-02T15:04:05Z07"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// dateLayouts are the forms capture-rs's date parser accepts beyond
// RFC 3339; a zone-less time is taken as UTC. Go accepts fractional
// seconds after "05" without their being in the layout.
var dateLayouts = [...]string{
	"2006-01-02T15:04:05Z0700",
	"2006-01-02T15:04:05Z07",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05Z0700",
	"2006-01-02 15:04:05Z07",
	"2006-01-02T15:04:05",
	"2006-01-02 15:04:05",
	"2006-01-02T15:04",
	"2006-01-02 15:04",
	"2006-01-02",
	"2006/01/02",
	"2006/01/02 15:04:05",
	"01/02/2006",
	"01/02/2006 15:04:05",
	time.RFC1123Z,
	time.RFC1123,
	"Mon, 2 Jan 2006 15:04:05 -0700",
	"Mon, 2 Jan 2006 15:04:05 MST",
	time.RFC850,
	time.ANSIC,
}

// parseDate parses an event timestamp (a raw JSON string).
func parseDate(raw []byte) (time.Time, bool) {
	var s []byte
	for _, c := range raw {
		if c == '\\' {
			s = []byte(decodeString(raw))
			break
		}
	}
	if s == nil {
		s = raw[1 : len(raw)-1]
	}
	if t, ok := parseRFC3339(s); ok {
		return t, true
	}
	if t, ok := parseEpoch(s); ok {
		return t, true
	}
	str := string(s)
	for _, layout := range dateLayouts {
		if t, err := time.Parse(layout, str); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// parseEpoch reads a numeric timestamp by its digit count, as capture-rs's
// parser does: 10 digits are seconds, 13 milliseconds, 16 microseconds,
// 19 nanoseconds.
func parseEpoch(s []byte) (time.Time, bool) {
	digits := s
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return time.Time{}, false
		}
	}
	n, err := strconv.ParseInt(string(s), 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	switch len(digits) {
	case 10:
		return time.Unix(n, 0).UTC(), true
	case 13:
		return time.UnixMilli(n).UTC(), true
	case 16:
		return time.UnixMicro(n).UTC(), true
	case 19:
		return time.Unix(0, n).UTC(), true
	}
	return time.Time{}, false
}

// parseRFC3339 is a fast path for what nearly every SDK sends:
// YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM|±HHMM|±HH). It avoids time.Parse's
// layout walk and the []byte→string copy.
func parseRFC3339(s []byte) (time.Time, bool) {
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	year, ok1 := atoiN(s[0:4])
	month, ok2 := atoiN(s[5:7])
	day, ok3 := atoiN(s[8:10])
	hour, ok4 := atoiN(s[11:13])
	minute, ok5 := atoiN(s[14:16])
	sec, ok6 := atoiN(s[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || month < 1 || month > 12 || day < 1 || day > daysIn(month, year) || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	i := 19
	nsec := 0
	if i < len(s) && s[i] == '.' {
		i++
		start := i
		scale := int(time.Second)
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			if i-start < 9 {
				scale /= 10
				nsec += int(s[i]-'0') * scale
			}
			i++
		}
		if i == start {
			return time.Time{}, false
		}
	}
	if i >= len(s) {
		return time.Time{}, false
	}
	var zone int // seconds east of UTC
	switch z := s[i:]; {
	case len(z) == 1 && (z[0] == 'Z' || z[0] == 'z'):
	case z[0] == '+' || z[0] == '-':
		var hh, mm int
		var ok bool
		switch {
		case len(z) == 6 && z[3] == ':':
			hh, ok = atoiN(z[1:3])
			if ok {
				mm, ok = atoiN(z[4:6])
			}
		case len(z) == 5:
			hh, ok = atoiN(z[1:3])
			if ok {
				mm, ok = atoiN(z[3:5])
			}
		case len(z) == 3:
			hh, ok = atoiN(z[1:3])
		}
		if !ok || hh > 23 || mm > 59 {
			return time.Time{}, false
		}
		zone = hh*3600 + mm*60
		if z[0] == '-' {
			zone = -zone
		}
	default:
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	return t.Add(-time.Duration(zone) * time.Second), true
}

func atoiN(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
