package eval

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
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
	switch x := v.(type) {
	case bool:
		return true
	case string:
		return strings.EqualFold(x, "true") || strings.EqualFold(x, "false")
	case []any:
		for _, e := range x {
			if !isTruthyOrFalsy(e) {
				return false
			}
		}
		return true
	}
	return false
}

func isTruthy(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case string:
		return strings.EqualFold(x, "true")
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
// to_lowercase), without allocating when both are ASCII.
func equalLower(a, b string) bool {
	if isASCII(a) && isASCII(b) {
		return len(a) == len(b) && asciiEqualFold(a, b)
	}
	//lint:ignore SA6005 the service lower-cases (Rust's to_lowercase); EqualFold's case folding differs for some runes
	return strings.ToLower(a) == strings.ToLower(b)
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
