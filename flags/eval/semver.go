package eval

import (
	"strconv"
	"strings"
)

// Semantic versions follow the Rust service, which canonicalises mobile-style
// versions ("3.08" -> 3.8.0, "3" -> 3.0.0) and then uses the semver crate:
// pre-releases order below their release and only satisfy a range whose
// comparator names the same major.minor.patch with a pre-release. posthog-node
// instead strips pre-release tags and rejects leading zeros.

type semver struct {
	major, minor, patch uint64
	pre                 []string
	build               []string
}

// parseSemverValue is the service's to_semver_representation.
func parseSemverValue(s string) (semver, bool) {
	return parseStrictSemver(canonicalVersion(normalizeVersion(s)))
}

// normalizeVersion strips one leading 'v' and then surrounding whitespace (in
// that order, as the service does).
func normalizeVersion(s string) string {
	return strings.TrimSpace(strings.TrimPrefix(s, "v"))
}

// canonicalVersion strips leading zeros from all-digit core components and
// pads the core to three components, leaving any -pre/+build suffix alone.
func canonicalVersion(s string) string {
	core, suffix := s, ""
	if i := strings.IndexAny(s, "-+"); i >= 0 {
		core, suffix = s[:i], s[i:]
	}
	parts := strings.Split(core, ".")
	for i, p := range parts {
		parts[i] = stripLeadingZeros(p)
	}
	for len(parts) < 3 {
		parts = append(parts, "0")
	}
	return strings.Join(parts, ".") + suffix
}

func stripLeadingZeros(p string) string {
	if p == "" || !allDigits(p) {
		return p
	}
	t := strings.TrimLeft(p, "0")
	if t == "" {
		return "0"
	}
	return t
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func parseNumericIdent(s string) (uint64, bool) {
	if !allDigits(s) || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

func validIdents(s string, numericNoLeadingZero bool) ([]string, bool) {
	ids := strings.Split(s, ".")
	for _, id := range ids {
		if id == "" {
			return nil, false
		}
		for i := 0; i < len(id); i++ {
			c := id[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-') {
				return nil, false
			}
		}
		if numericNoLeadingZero && allDigits(id) && len(id) > 1 && id[0] == '0' {
			return nil, false
		}
	}
	return ids, true
}

// parseStrictSemver is semver::Version::parse: MAJOR.MINOR.PATCH[-pre][+build].
func parseStrictSemver(s string) (semver, bool) {
	var v semver
	rest := s
	if i := strings.IndexByte(rest, '+'); i >= 0 {
		b, ok := validIdents(rest[i+1:], false)
		if !ok {
			return v, false
		}
		v.build, rest = b, rest[:i]
	}
	if i := strings.IndexByte(rest, '-'); i >= 0 {
		p, ok := validIdents(rest[i+1:], true)
		if !ok {
			return v, false
		}
		v.pre, rest = p, rest[:i]
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 {
		return v, false
	}
	var ok bool
	if v.major, ok = parseNumericIdent(parts[0]); !ok {
		return v, false
	}
	if v.minor, ok = parseNumericIdent(parts[1]); !ok {
		return v, false
	}
	if v.patch, ok = parseNumericIdent(parts[2]); !ok {
		return v, false
	}
	return v, true
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// cmpIdents orders dot-separated identifiers the semver way: numeric ones by
// value and below alphanumeric ones, alphanumeric ones by ASCII, and a shorter
// list below a longer one it prefixes.
func cmpIdents(a, b []string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		an, aNum := parseNumericIdent(a[i])
		bn, bNum := parseNumericIdent(b[i])
		switch {
		case aNum && bNum:
			if c := cmpUint(an, bn); c != 0 {
				return c
			}
		case aNum:
			return -1
		case bNum:
			return 1
		default:
			if c := strings.Compare(a[i], b[i]); c != 0 {
				return c
			}
		}
	}
	return cmpUint(uint64(len(a)), uint64(len(b)))
}

// cmpPre orders pre-releases: none ranks above any.
func cmpPre(a, b []string) int {
	switch {
	case len(a) == 0 && len(b) == 0:
		return 0
	case len(a) == 0:
		return 1
	case len(b) == 0:
		return -1
	}
	return cmpIdents(a, b)
}

// compare is semver::Version's Ord, which also orders build metadata (so
// semver_eq treats 1.0.0+a and 1.0.0+b as different, as the service does).
func (v semver) compare(o semver) int {
	if c := cmpUint(v.major, o.major); c != 0 {
		return c
	}
	if c := cmpUint(v.minor, o.minor); c != 0 {
		return c
	}
	if c := cmpUint(v.patch, o.patch); c != 0 {
		return c
	}
	if c := cmpPre(v.pre, o.pre); c != 0 {
		return c
	}
	return cmpIdents(v.build, o.build)
}

// A semver requirement as the semver crate's VersionReq evaluates it.
type semverOp int

const (
	cmpExact semverOp = iota
	cmpGreater
	cmpGreaterEq
	cmpLess
	cmpLessEq
	cmpTilde
	cmpCaret
	cmpWildcard
)

type comparator struct {
	op                 semverOp
	major              uint64
	minor, patch       uint64
	hasMinor, hasPatch bool
	pre                []string
}

type semverReq []comparator

// parseSemverReq parses the requirement strings the service builds:
// "~1.2.3", "^1.2.3-beta.1", "1.2.x", "1.x.x", "x", and plain "1.2" (caret).
func parseSemverReq(s string) (semverReq, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, false
	}
	var req semverReq
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		c, star, ok := parseComparator(part)
		if !ok {
			return nil, false
		}
		if star {
			if len(strings.Split(s, ",")) > 1 {
				return nil, false
			}
			return semverReq{}, true // "*" matches every release
		}
		req = append(req, c)
	}
	return req, true
}

func isWild(p string) bool { return p == "x" || p == "X" || p == "*" }

func parseComparator(s string) (c comparator, star bool, ok bool) {
	c.op = cmpCaret
	explicit := false
	for _, p := range []struct {
		text string
		op   semverOp
	}{{">=", cmpGreaterEq}, {"<=", cmpLessEq}, {">", cmpGreater}, {"<", cmpLess}, {"=", cmpExact}, {"~", cmpTilde}, {"^", cmpCaret}} {
		if strings.HasPrefix(s, p.text) {
			c.op, s, explicit = p.op, strings.TrimSpace(s[len(p.text):]), true
			break
		}
	}
	core, pre := s, ""
	if i := strings.IndexByte(s, '+'); i >= 0 {
		if _, ok := validIdents(s[i+1:], false); !ok {
			return c, false, false
		}
		core = s[:i]
	}
	if i := strings.IndexByte(core, '-'); i >= 0 {
		core, pre = core[:i], core[i+1:]
	}
	parts := strings.Split(core, ".")
	if len(parts) == 0 || len(parts) > 3 {
		return c, false, false
	}
	if isWild(parts[0]) {
		// "*", "x.x", "x.x.x": every release. "x.1" is rejected by the crate.
		for _, p := range parts[1:] {
			if !isWild(p) {
				return c, false, false
			}
		}
		if pre != "" {
			return c, false, false
		}
		return c, true, true
	}
	var okp bool
	if c.major, okp = parseNumericIdent(parts[0]); !okp {
		return c, false, false
	}
	wild := false
	if len(parts) > 1 {
		if isWild(parts[1]) {
			wild = true
		} else if c.minor, okp = parseNumericIdent(parts[1]); okp {
			c.hasMinor = true
		} else {
			return c, false, false
		}
	}
	if len(parts) > 2 {
		switch {
		case isWild(parts[2]):
			wild = true
		case wild:
			return c, false, false // "1.x.3"
		default:
			if c.patch, okp = parseNumericIdent(parts[2]); !okp {
				return c, false, false
			}
			c.hasPatch = true
		}
	}
	if pre != "" {
		if !c.hasPatch {
			return c, false, false
		}
		ids, okp := validIdents(pre, true)
		if !okp {
			return c, false, false
		}
		c.pre = ids
	}
	if wild && !explicit {
		c.op = cmpWildcard
	}
	return c, false, true
}

func (r semverReq) matches(v semver) bool {
	for _, c := range r {
		if !c.matches(v) {
			return false
		}
	}
	if len(v.pre) == 0 {
		return true
	}
	// A pre-release only satisfies a requirement that opts into pre-releases of
	// the very same major.minor.patch.
	for _, c := range r {
		if c.major == v.major && c.hasMinor && c.minor == v.minor && c.hasPatch && c.patch == v.patch && len(c.pre) > 0 {
			return true
		}
	}
	return false
}

func (c comparator) matches(v semver) bool {
	switch c.op {
	case cmpExact, cmpWildcard:
		return c.exact(v)
	case cmpGreater:
		return c.greater(v)
	case cmpGreaterEq:
		return c.exact(v) || c.greater(v)
	case cmpLess:
		return c.less(v)
	case cmpLessEq:
		return c.exact(v) || c.less(v)
	case cmpTilde:
		if v.major != c.major || (c.hasMinor && v.minor != c.minor) {
			return false
		}
		if c.hasPatch && v.patch != c.patch {
			return v.patch > c.patch
		}
		return cmpPre(v.pre, c.pre) >= 0
	case cmpCaret:
		return c.caret(v)
	}
	return false
}

func (c comparator) exact(v semver) bool {
	if v.major != c.major || (c.hasMinor && v.minor != c.minor) || (c.hasPatch && v.patch != c.patch) {
		return false
	}
	return cmpPre(v.pre, c.pre) == 0
}

func (c comparator) greater(v semver) bool {
	if v.major != c.major {
		return v.major > c.major
	}
	if !c.hasMinor {
		return false
	}
	if v.minor != c.minor {
		return v.minor > c.minor
	}
	if !c.hasPatch {
		return false
	}
	if v.patch != c.patch {
		return v.patch > c.patch
	}
	return cmpPre(v.pre, c.pre) > 0
}

func (c comparator) less(v semver) bool {
	if v.major != c.major {
		return v.major < c.major
	}
	if !c.hasMinor {
		return false
	}
	if v.minor != c.minor {
		return v.minor < c.minor
	}
	if !c.hasPatch {
		return false
	}
	if v.patch != c.patch {
		return v.patch < c.patch
	}
	return cmpPre(v.pre, c.pre) < 0
}

func (c comparator) caret(v semver) bool {
	if v.major != c.major {
		return false
	}
	if !c.hasMinor {
		return true
	}
	if !c.hasPatch {
		if c.major > 0 {
			return v.minor >= c.minor
		}
		return v.minor == c.minor
	}
	switch {
	case c.major > 0:
		if v.minor != c.minor {
			return v.minor > c.minor
		}
		if v.patch != c.patch {
			return v.patch > c.patch
		}
	case c.minor > 0:
		if v.minor != c.minor {
			return false
		}
		if v.patch != c.patch {
			return v.patch > c.patch
		}
	default:
		if v.minor != c.minor || v.patch != c.patch {
			return false
		}
	}
	return cmpPre(v.pre, c.pre) >= 0
}

// wildcardRequirement turns a semver_wildcard filter value into the string the
// service hands to VersionReq::parse: leading zeros stripped per component and
// '*' spelled 'x'.
func wildcardRequirement(value string) string {
	parts := strings.Split(normalizeVersion(value), ".")
	for i, p := range parts {
		parts[i] = stripLeadingZeros(p)
	}
	return strings.ReplaceAll(strings.Join(parts, "."), "*", "x")
}
