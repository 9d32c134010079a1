package eval

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The Rust flags service compares values through serde_json's text form of a
// JSON value (strings as themselves, everything else as compact JSON). These
// helpers reproduce that text form for Go values, so that exact/icontains/regex
// see the same strings the service sees.

// reprOf returns the service's string representation of a property value.
func reprOf(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case bool:
		if x {
			return "true"
		}
		return "false"
	case nil:
		return "null"
	case float64:
		return goFloatText(x)
	case float32:
		return goFloatText(float64(x))
	case json.Number:
		return serdeNumberText(string(x))
	case int:
		return strconv.FormatInt(int64(x), 10)
	case int8:
		return strconv.FormatInt(int64(x), 10)
	case int16:
		return strconv.FormatInt(int64(x), 10)
	case int32:
		return strconv.FormatInt(int64(x), 10)
	case int64:
		return strconv.FormatInt(x, 10)
	case uint:
		return strconv.FormatUint(uint64(x), 10)
	case uint8:
		return strconv.FormatUint(uint64(x), 10)
	case uint16:
		return strconv.FormatUint(uint64(x), 10)
	case uint32:
		return strconv.FormatUint(uint64(x), 10)
	case uint64:
		return strconv.FormatUint(x, 10)
	default:
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false) // serde_json does not escape <, > and &
		if err := enc.Encode(v); err != nil {
			return fmt.Sprint(v)
		}
		return strings.TrimSuffix(b.String(), "\n")
	}
}

// goFloatText formats a float64 that came out of encoding/json. Such a value
// cannot tell "1" from "1.0"; integral values are almost always JSON integers
// (a person property "age": 30), so they print as integers, which is what the
// service prints for the JSON the application sent.
func goFloatText(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e18 {
		return strconv.FormatInt(int64(f), 10)
	}
	return ryuText(f)
}

// NumberText is serde_json's text for the JSON number literal lit, which is
// how PostHog's flags service turns a numeric distinct_id or group key into
// the string it hashes ("1e3" is "1000.0", "5.0" stays "5.0").
func NumberText(lit string) string { return serdeNumberText(lit) }

// serdeNumberText reproduces serde_json's text for a JSON number literal:
// integers that fit 64 bits print as integers, everything else is an f64
// printed the way ryu does ("1.0", "0.1", "1e16", "1e-7").
func serdeNumberText(lit string) string {
	if !strings.ContainsAny(lit, ".eE") {
		if i, err := strconv.ParseInt(lit, 10, 64); err == nil && lit != "-0" {
			return strconv.FormatInt(i, 10)
		}
		if u, err := strconv.ParseUint(lit, 10, 64); err == nil {
			return strconv.FormatUint(u, 10)
		}
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil && !isRangeErr(err) {
		return lit
	}
	return ryuText(f)
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// ryuText formats f like Rust's ryu crate (used by serde_json): shortest
// round-trip digits, decimal notation when the decimal point lies within
// (-5, 16], scientific "de±k" without a plus sign otherwise, and ".0" after
// integral values.
func ryuText(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "null" // serde_json serializes non-finite floats as null
	}
	if f == 0 {
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	sign := ""
	if f < 0 {
		sign = "-"
		f = -f
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // d.ddde±XX
	mant, expPart, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expPart)
	digits := strings.Replace(mant, ".", "", 1)
	n := len(digits)
	kk := exp + 1 // position of the decimal point relative to the digits
	switch {
	case n <= kk && kk <= 16:
		return sign + digits + strings.Repeat("0", kk-n) + ".0"
	case 0 < kk && kk <= 16:
		return sign + digits[:kk] + "." + digits[kk:]
	case -5 < kk && kk <= 0:
		return sign + "0." + strings.Repeat("0", -kk) + digits
	case n == 1:
		return sign + digits + "e" + strconv.Itoa(kk-1)
	default:
		return sign + digits[:1] + "." + digits[1:] + "e" + strconv.Itoa(kk-1)
	}
}

// numberOf is the service's to_f64_representation: JSON numbers as they are,
// anything else through its text form parsed the way Rust parses f64.
func numberOf(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int8:
		return float64(x), true
	case int16:
		return float64(x), true
	case int32:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint:
		return float64(x), true
	case uint8:
		return float64(x), true
	case uint16:
		return float64(x), true
	case uint32:
		return float64(x), true
	case uint64:
		return float64(x), true
	case json.Number:
		return rustParseFloat(string(x))
	case string:
		return rustParseFloat(x)
	default:
		return rustParseFloat(reprOf(v))
	}
}

// rustParseFloat accepts what Rust's f64::from_str accepts: an optional sign,
// decimal digits with an optional point and exponent, or inf/infinity/nan. No
// whitespace, hex or underscores (which Go's ParseFloat would take).
func rustParseFloat(s string) (float64, bool) {
	if s == "" || strings.ContainsAny(s, "_xXpP \t\n\r") {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !isRangeErr(err) {
		return 0, false
	}
	return f, true
}

// isTruthyOrFalsy and isTruthy are the service's boolean normalisation for
// exact/is_not: booleans, the strings "true"/"false" in any case, and arrays
// made only of those.
func isTruthyOrFalsy(v any) bool {
	if x, ok := v.([]any); ok {
		for _, e := range x {
			if !isTruthyOrFalsy(e) {
				return false
			}
		}
		return true
	}
	return boolLike(v)
}

// lowerIs reports whether Rust's to_lowercase of s is the ASCII word w. Only
// ASCII letters lower to ASCII ones, so unlike strings.EqualFold this does not
// take "falſe" (long s) for "false".
func lowerIs(s, w string) bool {
	return len(s) == len(w) && asciiEqualFold(s, w)
}

func isTruthy(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case string:
		return lowerIs(x, "true")
	case []any:
		for _, e := range x {
			if !isTruthy(e) {
				return false
			}
		}
		return true
	}
	return false
}

// equalLower compares a and b after Unicode lower-casing (Rust's
// str::to_lowercase, as the service's exact/is_not do), without allocating
// when both are ASCII.
func equalLower(a, b string) bool {
	if isASCII(a) && isASCII(b) {
		return len(a) == len(b) && asciiEqualFold(a, b)
	}
	return rustLower(a) == rustLower(b)
}

// rustLower is Rust's str::to_lowercase. It differs from strings.ToLower in
// two places: U+0130 (İ) lowers to "i" followed by U+0307 (combining dot
// above), its full mapping in SpecialCasing.txt, and a capital sigma lowers
// to the final form ς at the end of a word (the Final_Sigma condition).
// Every other rune takes its simple lowercase mapping, as in Go.
func rustLower(s string) string {
	if isASCII(s) {
		return asciiLowerString(s)
	}
	var b strings.Builder
	b.Grow(len(s) + 2)
	for i, r := range s {
		switch r {
		case 'İ':
			b.WriteString("i\u0307")
		case 'Σ':
			if finalSigma(s, i) {
				b.WriteRune('ς')
			} else {
				b.WriteRune('σ')
			}
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// finalSigma is Unicode's Final_Sigma condition for the Σ at byte offset i:
// a cased letter before it and none after it, skipping case-ignorable runes
// on both sides.
func finalSigma(s string, i int) bool {
	before := false
	for j := i; j > 0; {
		r, n := utf8.DecodeLastRuneInString(s[:j])
		j -= n
		if caseIgnorable(r) {
			continue
		}
		before = cased(r)
		break
	}
	if !before {
		return false
	}
	for j := i + len("Σ"); j < len(s); {
		r, n := utf8.DecodeRuneInString(s[j:])
		j += n
		if caseIgnorable(r) {
			continue
		}
		return !cased(r)
	}
	return true
}

// cased is Unicode's Cased property: Lowercase, Uppercase or Lt.
func cased(r rune) bool {
	return unicode.IsLower(r) || unicode.IsUpper(r) || unicode.IsTitle(r) ||
		unicode.Is(unicode.Other_Lowercase, r) || unicode.Is(unicode.Other_Uppercase, r)
}

// caseIgnorable is Unicode's Case_Ignorable property: marks, format
// characters, modifier letters and symbols, and the word-internal
// punctuation of UAX #29 (MidLetter, MidNumLet, Single_Quote).
func caseIgnorable(r rune) bool {
	switch r {
	case '\'', '.', ':', '\u00B7', '\u0387', '\u055F', '\u05F4', '\u2018', '\u2019', '\u2024',
		'\u2027', '\uFE13', '\uFE52', '\uFE55', '\uFF07', '\uFF0E', '\uFF1A':
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func asciiLower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func asciiEqualFold(a, b string) bool {
	for i := 0; i < len(a); i++ {
		if asciiLower(a[i]) != asciiLower(b[i]) {
			return false
		}
	}
	return true
}

// asciiLowerString is Rust's to_ascii_lowercase, used by the service for
// icontains/starts_with/ends_with.
func asciiLowerString(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				b[j] = asciiLower(b[j])
			}
			return string(b)
		}
	}
	return s
}

// asciiContainsFold reports whether needle (already ASCII-lowercased) occurs in
// haystack ignoring ASCII case, without allocating.
func asciiContainsFold(haystack, lowerNeedle string) bool {
	n := len(lowerNeedle)
	if n == 0 {
		return true
	}
	for i := 0; i+n <= len(haystack); i++ {
		if asciiLower(haystack[i]) == lowerNeedle[0] && asciiEqualFold(haystack[i:i+n], lowerNeedle) {
			return true
		}
	}
	return false
}

func asciiHasPrefixFold(s, lowerPrefix string) bool {
	return len(s) >= len(lowerPrefix) && asciiEqualFold(s[:len(lowerPrefix)], lowerPrefix)
}

func asciiHasSuffixFold(s, lowerSuffix string) bool {
	return len(s) >= len(lowerSuffix) && asciiEqualFold(s[len(s)-len(lowerSuffix):], lowerSuffix)
}
