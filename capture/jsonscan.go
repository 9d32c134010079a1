package capture

import (
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// This file is a small validating JSON scanner. encoding/json would decode
// every property of every event into maps or at least re-scan them through
// reflection; the agent only needs a handful of top-level fields and must
// otherwise pass properties through byte-for-byte, so a scanner that
// validates and hands back raw spans is several times faster.

// maxDepth matches serde_json's recursion limit, so a body nested deeper than
// PostHog would parse is refused here too (and a 20 MiB "[[[[..." cannot
// exhaust the stack).
const maxDepth = 128

// syntaxError is malformed JSON at a byte offset of the decoded body.
type syntaxError struct {
	off int
	msg string
}

func (e *syntaxError) Error() string { return fmt.Sprintf("invalid JSON at byte %d: %s", e.off, e.msg) }

func synErr(off int, format string, args ...any) error {
	return &syntaxError{off: off, msg: fmt.Sprintf(format, args...)}
}

// strSpecial marks the bytes that end a fast run inside a string.
var strSpecial = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'] = true
	t['\\'] = true
	return t
}()

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipWS(b []byte, i int) int {
	for i < len(b) && isWS(b[i]) {
		i++
	}
	return i
}

// describe names a byte for an error message.
func describe(b []byte, i int) string {
	if i >= len(b) {
		return "end of input"
	}
	return fmt.Sprintf("character %q", b[i])
}

// skipValue validates the JSON value at b[i] and returns the index just past it.
func skipValue(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return i, synErr(i, "unexpected end of input, expected a value")
	}
	switch c := b[i]; {
	case c == '"':
		end, _, err := skipString(b, i)
		return end, err
	case c == '{':
		return skipObject(b, i, depth+1)
	case c == '[':
		return skipArray(b, i, depth+1)
	case c == 't':
		return skipLiteral(b, i, "true")
	case c == 'f':
		return skipLiteral(b, i, "false")
	case c == 'n':
		return skipLiteral(b, i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		return skipNumber(b, i)
	}
	return i, synErr(i, "unexpected %s, expected a value", describe(b, i))
}

func skipLiteral(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, synErr(i, "invalid literal, expected %s", lit)
	}
	return i + len(lit), nil
}

// skipString validates the string starting at b[i] == '"' and reports whether
// it contains escapes (so callers know when raw bytes equal the value).
func skipString(b []byte, i int) (end int, escaped bool, err error) {
	j := i + 1
	for {
		for j < len(b) && !strSpecial[b[j]] {
			j++
		}
		if j >= len(b) {
			return j, escaped, synErr(i, "unterminated string")
		}
		switch c := b[j]; c {
		case '"':
			return j + 1, escaped, nil
		case '\\':
			escaped = true
			if j+1 >= len(b) {
				return j, escaped, synErr(i, "unterminated string")
			}
			switch b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if j+6 > len(b) || !isHex(b[j+2]) || !isHex(b[j+3]) || !isHex(b[j+4]) || !isHex(b[j+5]) {
					return j, escaped, synErr(j, "invalid \\u escape in string")
				}
				j += 6
			default:
				return j, escaped, synErr(j, "invalid escape %q in string", b[j+1])
			}
		default:
			return j, escaped, synErr(j, "control character 0x%02x in string (must be escaped)", c)
		}
	}
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

func skipNumber(b []byte, i int) (int, error) {
	start := i
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = skipDigits(b, i)
	default:
		return i, synErr(start, "invalid number")
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			return j, synErr(start, "invalid number: no digits after decimal point")
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return j, synErr(start, "invalid number: no digits in exponent")
		}
		i = j
	}
	return i, nil
}

func skipObject(b []byte, i, depth int) (int, error) {
	it, err := newObjIter(b, i, depth)
	if err != nil {
		return i, err
	}
	for {
		_, ok, err := it.next()
		if err != nil {
			return it.i, err
		}
		if !ok {
			return it.i, nil
		}
	}
}

func skipArray(b []byte, i, depth int) (int, error) {
	it, err := newArrIter(b, i, depth)
	if err != nil {
		return i, err
	}
	for {
		_, _, ok, err := it.next()
		if err != nil {
			return it.i, err
		}
		if !ok {
			return it.i, nil
		}
	}
}

// member is one key/value pair of an object, as raw spans of the body.
type member struct {
	key    []byte // raw key including quotes
	keyEsc bool
	val    []byte // raw value, validated
	valOff int    // offset of val in the body, for error messages
}

// name returns the key's value as a string (allocates; see keyBytes).
func (m *member) name() string { return string(m.keyBytes()) }

// keyBytes returns the key's value without allocating unless it has escapes,
// which are rare; compare it with switch string(...), which does not copy.
func (m *member) keyBytes() []byte { return stringContent(m.key, m.keyEsc) }

// objIter walks the members of an object, validating as it goes.
type objIter struct {
	b     []byte
	i     int
	depth int
	first bool
	done  bool
}

func newObjIter(b []byte, i, depth int) (objIter, error) {
	if depth > maxDepth {
		return objIter{}, synErr(i, "nested more than %d levels deep", maxDepth)
	}
	if i >= len(b) || b[i] != '{' {
		return objIter{}, synErr(i, "unexpected %s, expected '{'", describe(b, i))
	}
	return objIter{b: b, i: i + 1, depth: depth, first: true}, nil
}

func (it *objIter) next() (m member, ok bool, err error) {
	m, ok, err = it.nextKey()
	if !ok || err != nil {
		return m, ok, err
	}
	end, err := skipValue(it.b, m.valOff, it.depth)
	it.i = end
	if err != nil {
		return m, false, err
	}
	m.val = it.b[m.valOff:end]
	return m, true, nil
}

// nextKey reads the next key and stops at its value (m.valOff), leaving m.val
// nil: the caller must parse the value itself and call resume with its end.
// This lets a batch object's event array be parsed in place, in one pass.
func (it *objIter) nextKey() (m member, ok bool, err error) {
	if it.done {
		return m, false, nil
	}
	b := it.b
	i := skipWS(b, it.i)
	if it.first {
		it.first = false
		if i < len(b) && b[i] == '}' {
			it.i, it.done = i+1, true
			return m, false, nil
		}
	} else {
		switch {
		case i < len(b) && b[i] == '}':
			it.i, it.done = i+1, true
			return m, false, nil
		case i < len(b) && b[i] == ',':
			i = skipWS(b, i+1)
		default:
			it.i = i
			return m, false, synErr(i, "unexpected %s, expected ',' or '}' in object", describe(b, i))
		}
	}
	if i >= len(b) || b[i] != '"' {
		it.i = i
		return m, false, synErr(i, "unexpected %s, expected a string key in object", describe(b, i))
	}
	end, esc, err := skipString(b, i)
	if err != nil {
		it.i = end
		return m, false, err
	}
	m.key, m.keyEsc = b[i:end], esc
	i = skipWS(b, end)
	if i >= len(b) || b[i] != ':' {
		it.i = i
		return m, false, synErr(i, "unexpected %s, expected ':' after object key", describe(b, i))
	}
	m.valOff = skipWS(b, i+1)
	it.i = m.valOff
	return m, true, nil
}

// resume continues after a value the caller parsed itself.
func (it *objIter) resume(end int) { it.i = end }

// arrIter walks the elements of an array, validating as it goes.
type arrIter struct {
	b     []byte
	i     int
	depth int
	first bool
	done  bool
}

func newArrIter(b []byte, i, depth int) (arrIter, error) {
	if depth > maxDepth {
		return arrIter{}, synErr(i, "nested more than %d levels deep", maxDepth)
	}
	if i >= len(b) || b[i] != '[' {
		return arrIter{}, synErr(i, "unexpected %s, expected '['", describe(b, i))
	}
	return arrIter{b: b, i: i + 1, depth: depth, first: true}, nil
}

// next returns the next element's raw bytes and offset.
func (it *arrIter) next() (val []byte, off int, ok bool, err error) {
	if it.done {
		return nil, 0, false, nil
	}
	b := it.b
	i := skipWS(b, it.i)
	if it.first {
		it.first = false
		if i < len(b) && b[i] == ']' {
			it.i, it.done = i+1, true
			return nil, 0, false, nil
		}
	} else {
		switch {
		case i < len(b) && b[i] == ']':
			it.i, it.done = i+1, true
			return nil, 0, false, nil
		case i < len(b) && b[i] == ',':
			i = skipWS(b, i+1)
		default:
			it.i = i
			return nil, 0, false, synErr(i, "unexpected %s, expected ',' or ']' in array", describe(b, i))
		}
	}
	end, err := skipValue(b, i, it.depth)
	it.i = end
	if err != nil {
		return nil, 0, false, err
	}
	return b[i:end], i, true, nil
}

// jsonKind names the type of a raw JSON value for error messages.
func jsonKind(v []byte) string {
	if len(v) == 0 {
		return "empty"
	}
	switch v[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func isNull(v []byte) bool { return len(v) == 4 && v[0] == 'n' }

// stringContent returns the value of a raw JSON string without allocating
// when it has no escapes (the common case); raw must be a validated string.
func stringContent(raw []byte, escaped bool) []byte {
	if !escaped {
		return raw[1 : len(raw)-1]
	}
	return []byte(decodeString(raw))
}

// decodeString decodes a validated raw JSON string (with quotes). Lone
// surrogates become U+FFFD, as Go's encoding/json does.
func decodeString(raw []byte) string {
	s := raw[1 : len(raw)-1]
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		switch s[i+1] {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := hex4(s[i+2 : i+6])
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					r2 = hex4(s[i+2 : i+6])
				}
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					i += 6
					r = dec
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
			continue
		default: // '"', '\\', '/'
			out = append(out, s[i+1])
		}
		i += 2
	}
	return string(out)
}

func hex4(h []byte) rune {
	v, _ := strconv.ParseUint(string(h), 16, 32)
	return rune(v)
}

// appendString appends s as a JSON string. Input is valid UTF-8 (the body
// was checked), so only quotes, backslashes and control characters need
// escaping.
func appendString(dst []byte, s []byte) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !strSpecial[c] {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
