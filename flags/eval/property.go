package eval

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"time"
)

type opKind uint8

const (
	opExact opKind = iota
	opIsNot
	opIsSet
	opIsNotSet
	opIcontains
	opNotIcontains
	opIcontainsMulti
	opNotIcontainsMulti
	opStartsWith
	opNotStartsWith
	opEndsWith
	opNotEndsWith
	opRegex
	opNotRegex
	opGt
	opGte
	opLt
	opLte
	opBetween
	opNotBetween
	opDateBefore
	opDateAfter
	opDateExact
	opSemverEq
	opSemverNeq
	opSemverGt
	opSemverGte
	opSemverLt
	opSemverLte
	opSemverTilde
	opSemverCaret
	opSemverWildcard
	opIn
	opNotIn
	opOther
)

// operators are those of the service's property_matching.rs; anything else is
// inconclusive.
var operators = map[string]opKind{
	"exact": opExact, "is_not": opIsNot, "is_set": opIsSet, "is_not_set": opIsNotSet,
	"icontains": opIcontains, "not_icontains": opNotIcontains,
	"icontains_multi": opIcontainsMulti, "not_icontains_multi": opNotIcontainsMulti,
	"starts_with": opStartsWith, "not_starts_with": opNotStartsWith,
	"ends_with": opEndsWith, "not_ends_with": opNotEndsWith,
	"regex": opRegex, "not_regex": opNotRegex,
	"gt": opGt, "gte": opGte, "lt": opLt, "lte": opLte,
	"between": opBetween, "not_between": opNotBetween,
	"is_date_before": opDateBefore, "is_date_after": opDateAfter, "is_date_exact": opDateExact,
	"semver_eq": opSemverEq, "semver_neq": opSemverNeq, "semver_gt": opSemverGt,
	"semver_gte": opSemverGte, "semver_lt": opSemverLt, "semver_lte": opSemverLte,
	"semver_tilde": opSemverTilde, "semver_caret": opSemverCaret, "semver_wildcard": opSemverWildcard,
}

type filterKind uint8

const (
	kindDefault filterKind = iota // untyped: the condition's aggregation decides
	kindPerson
	kindGroup
	kindCohort
	kindFlag
	kindUnknown
)

// filter is one compiled property filter.
type filter struct {
	key      string
	typeName string
	kind     filterKind
	opName   string
	op       opKind
	negation bool
	hasGTI   bool
	gti      int
	broken   string // non-empty: cannot be evaluated locally, and why

	value    any
	hasValue bool
	repr     string // the service's text form of value
	lower    string // ASCII-lowercased repr
	tf       bool   // value is boolean-like (exact/is_not)
	truthy   bool
	isList   bool
	list     []string

	re            *regexp.Regexp
	reInvalid     bool
	reUnsupported bool
	reASCIIOnly   bool // only ASCII text matches as the service's regex would (see unicodeRegex)

	num    float64
	numOK  bool
	lo, hi float64

	date         dateParse
	dateIsString bool

	semver   semver
	req      semverReq
	semverOK bool

	cohortID string
	// explicit: the definitions' property_matching_version is 2, whose exact
	// and is_not compare booleans only with booleans (see exactExplicit).
	explicit bool
}

// props is where a filter looks its key up: the caller's properties, plus the
// one property the service always sets itself (distinct_id for a person,
// $group_key for a group).
type props struct {
	m        map[string]any
	extraKey string
	extra    string // a string, boxed only when looked up
	// override: extra wins over a value the caller gave ($group_key is
	// overwritten by the service; a supplied distinct_id wins over the
	// request's).
	override bool
	// complete: these are all the properties the service will have, so an
	// absent key is absent for it too (a group type the project does not
	// have, a group without a key in the request).
	complete bool
}

func (p props) get(k string) (any, bool) {
	if p.extraKey != "" && k == p.extraKey {
		if !p.override {
			if v, ok := p.m[k]; ok {
				return v, true
			}
		}
		return p.extra, true
	}
	v, ok := p.m[k]
	return v, ok
}

// errMissing is returned (wrapped) when a filter needs a property the caller
// did not give. PostHog may know it, so the answer is the server's to give.
var errMissing = errors.New("property not given")

// match evaluates the filter against p, with the service's semantics for
// properties that may be partial: a missing key is inconclusive (PostHog may
// have it stored) unless p is complete, every operator error the service
// swallows is false.
func (f *filter) match(p props, now time.Time) (bool, error) {
	if f.broken != "" {
		return false, errors.New(f.broken)
	}
	v, present := p.get(f.key)
	if !present {
		if p.complete {
			return f.absent(), nil
		}
		// Even is_not_set: the caller not passing a property does not mean the
		// person lacks it. posthog-node answers true here; the service, given
		// partial properties, declines, and so do we.
		return false, fmt.Errorf("%w: %q", errMissing, f.key)
	}
	switch f.op {
	case opIsSet:
		return true, nil
	case opIsNotSet:
		return false, nil
	}
	if !f.hasValue {
		return false, nil // a filter without a value matches nothing
	}
	switch f.op {
	case opExact:
		return f.exactMatch(v), nil
	case opIsNot:
		return !f.exactMatch(v), nil
	case opIcontains, opNotIcontains:
		in := asciiContainsFold(reprOf(v), f.lower)
		return in == (f.op == opIcontains), nil
	case opIcontainsMulti, opNotIcontainsMulti:
		s := reprOf(v)
		any := false
		for _, needle := range f.list {
			if asciiContainsFold(s, needle) {
				any = true
				break
			}
		}
		return any == (f.op == opIcontainsMulti), nil
	case opStartsWith, opNotStartsWith:
		return asciiHasPrefixFold(reprOf(v), f.lower) == (f.op == opStartsWith), nil
	case opEndsWith, opNotEndsWith:
		return asciiHasSuffixFold(reprOf(v), f.lower) == (f.op == opEndsWith), nil
	case opRegex, opNotRegex:
		switch {
		case f.reUnsupported:
			return false, fmt.Errorf("regex %q needs a backtracking engine", f.repr)
		case f.reInvalid:
			// The service answers false for both regex and not_regex when the
			// pattern does not compile (posthog-node does the same).
			return false, nil
		}
		s := reprOf(v)
		if f.reASCIIOnly && !isASCII(s) {
			return false, fmt.Errorf("regex %q: its Unicode classes cannot be matched here on the non-ASCII %q", f.repr, s)
		}
		return f.re.MatchString(s) == (f.op == opRegex), nil
	case opGt, opGte, opLt, opLte:
		// Numeric only: the service turns a non-numeric side into a validation
		// error, i.e. no match. posthog-node falls back to comparing strings.
		n, ok := numberOf(v)
		if !ok || !f.numOK {
			return false, nil
		}
		switch f.op {
		case opGt:
			return n > f.num, nil
		case opGte:
			return n >= f.num, nil
		case opLt:
			return n < f.num, nil
		default:
			return n <= f.num, nil
		}
	case opBetween, opNotBetween:
		if !f.numOK {
			return false, nil
		}
		n, ok := numberOf(v)
		if !ok || math.IsNaN(n) {
			return false, nil
		}
		in := n >= f.lo && n <= f.hi
		return in == (f.op == opBetween), nil
	case opDateBefore, opDateAfter, opDateExact:
		return f.matchDate(v, now)
	case opSemverEq, opSemverNeq, opSemverGt, opSemverGte, opSemverLt, opSemverLte:
		pv, ok := parseSemverValue(reprOf(v))
		if !ok || !f.semverOK {
			return false, nil
		}
		c := pv.compare(f.semver)
		switch f.op {
		case opSemverEq:
			return c == 0, nil
		case opSemverNeq:
			return c != 0, nil
		case opSemverGt:
			return c > 0, nil
		case opSemverGte:
			return c >= 0, nil
		case opSemverLt:
			return c < 0, nil
		default:
			return c <= 0, nil
		}
	case opSemverTilde, opSemverCaret, opSemverWildcard:
		pv, ok := parseSemverValue(reprOf(v))
		if !ok || !f.semverOK {
			return false, nil
		}
		return f.req.matches(pv), nil
	}
	return false, fmt.Errorf("operator %q cannot be evaluated locally", f.opName)
}

// absent is match_property for a key the service's properties do not have
// (partial_props false): the negative operators match, nothing else does.
func (f *filter) absent() bool {
	switch f.op {
	case opIsNotSet:
		return true
	case opIsSet:
		return false
	}
	if !f.hasValue {
		return false
	}
	switch f.op {
	case opIsNot, opNotIcontains, opNotIcontainsMulti, opNotStartsWith, opNotEndsWith, opNotRegex, opNotBetween:
		return true
	}
	return false
}

func (f *filter) exactMatch(v any) bool {
	if f.explicit {
		return f.exactExplicit(v)
	}
	return f.exact(v)
}

// exact is the service's compute_exact_match.
func (f *filter) exact(v any) bool {
	if f.tf {
		// Boolean-like filter values compare truthiness, so "True", true and
		// "true" are the same; note that null and any other string are falsy.
		return f.truthy == isTruthy(v)
	}
	s := reprOf(v)
	if f.isList {
		for _, e := range f.list {
			if equalLower(e, s) {
				return true
			}
		}
		return false
	}
	return equalLower(f.repr, s)
}

// exactExplicit is exact under property_matching_version 2, as posthog-js
// core's matchFeatureFlagProperty (and posthog-go, -php, -elixir) apply it:
// a boolean-like filter value (true, false, "true"/"false" in any case)
// equals only a boolean-like scalar of the same truth, so false no longer
// matches "banana", 0, null or [false]; a non-empty list matches when any
// element equals the value that way (so ["true","false"] matches "true");
// other values compare as lower-cased text. The empty list keeps the legacy
// rule (it matches any truthy value).
func (f *filter) exactExplicit(v any) bool {
	if arr, ok := f.value.([]any); ok {
		if len(arr) == 0 {
			return f.exact(v)
		}
		for i, e := range arr {
			if boolLike(e) {
				if boolLike(v) && isTruthy(e) == isTruthy(v) {
					return true
				}
				continue
			}
			if equalLower(f.list[i], reprOf(v)) {
				return true
			}
		}
		return false
	}
	if boolLike(f.value) {
		return boolLike(v) && f.truthy == isTruthy(v)
	}
	return equalLower(f.repr, reprOf(v))
}

// boolLike: a boolean, or the string "true" or "false" in any case.
func boolLike(v any) bool {
	switch x := v.(type) {
	case bool:
		return true
	case string:
		return lowerIs(x, "true") || lowerIs(x, "false")
	}
	return false
}

func (f *filter) matchDate(v any, now time.Time) (bool, error) {
	if !f.dateIsString {
		// The service reads only a string filter value as a date: a number
		// (or anything else) is false whatever the person's value.
		return false, nil
	}
	pd, ok, unsure := propertyDate(v)
	if unsure {
		return false, fmt.Errorf("cannot read %q as a date the way PostHog does", reprOf(v))
	}
	if !ok {
		return false, nil
	}
	if f.date.unsure {
		return false, fmt.Errorf("cannot read filter date %q the way PostHog does", f.date.unsureOf)
	}
	if !f.date.ok {
		return false, nil
	}
	pt, ft := pd.at(now), f.date.at(now)
	if pd.clock && f.date.clock && pt.Equal(ft) {
		// Both are dates without a time, which the service's dateparser
		// fallback reads at the current time of day, each with its own
		// clock reading: the person's value is read first, a moment
		// before the filter's, so it is the earlier of the two.
		return f.op == opDateBefore, nil
	}
	switch f.op {
	case opDateBefore:
		return pt.Before(ft), nil
	case opDateAfter:
		return pt.After(ft), nil
	default:
		return pt.Equal(ft), nil
	}
}
