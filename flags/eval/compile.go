package eval

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// The wire shapes of a /flags/definitions response. Only what evaluation needs
// is decoded; each flag is decoded on its own so that one malformed flag makes
// only that flag inconclusive instead of failing the whole document.

type rawDefinitions struct {
	Flags            []json.RawMessage          `json:"flags"`
	GroupTypeMapping map[string]string          `json:"group_type_mapping"`
	Cohorts          map[string]json.RawMessage `json:"cohorts"`
	// PropertyMatchingVersion 2 selects explicit exact matching; absent, 1
	// and any other value the legacy rules, as in PostHog's SDKs.
	PropertyMatchingVersion json.RawMessage `json:"property_matching_version"`
}

type rawFlag struct {
	ID                         any        `json:"id"`
	Key                        string     `json:"key"`
	Active                     *bool      `json:"active"`
	Deleted                    bool       `json:"deleted"`
	EnsureExperienceContinuity *bool      `json:"ensure_experience_continuity"`
	Version                    any        `json:"version"`
	BucketingIdentifier        *string    `json:"bucketing_identifier"`
	Filters                    rawFilters `json:"filters"`
}

type rawFilters struct {
	Groups                    []rawCondition   `json:"groups"`
	Multivariate              *rawMultivariate `json:"multivariate"`
	AggregationGroupTypeIndex *int             `json:"aggregation_group_type_index"`
	Payloads                  json.RawMessage  `json:"payloads"`
	EarlyExit                 *bool            `json:"early_exit"`
	Holdout                   json.RawMessage  `json:"holdout"`
	FeatureEnrollment         *bool            `json:"feature_enrollment"`
	// The legacy super_groups and holdout_groups are not read: the service
	// stopped reading them once feature_enrollment and holdout replaced them
	// (flag_models.rs keeps them only as pass-through keys), and posthog-node
	// never read them.
}

// rawHoldout is the service's Holdout: {"id": 42, "exclusion_percentage": 10}.
type rawHoldout struct {
	ID                  json.RawMessage `json:"id"`
	ExclusionPercentage json.RawMessage `json:"exclusion_percentage"`
}

type rawMultivariate struct {
	Variants []struct {
		Key               string   `json:"key"`
		RolloutPercentage *float64 `json:"rollout_percentage"`
	} `json:"variants"`
}

type rawCondition struct {
	Properties                []json.RawMessage `json:"properties"`
	RolloutPercentage         *float64          `json:"rollout_percentage"`
	Variant                   *string           `json:"variant"`
	AggregationGroupTypeIndex *int              `json:"aggregation_group_type_index"`
}

type rawProperty struct {
	Key            json.RawMessage `json:"key"`
	Value          json.RawMessage `json:"value"`
	Operator       *string         `json:"operator"`
	Type           string          `json:"type"`
	Negation       *bool           `json:"negation"`
	GroupTypeIndex *int            `json:"group_type_index"`
}

// rawGroup is a cohort's property group: {"type": "AND"|"OR", "values": [...]}
// whose values are either nested groups or property filters.
type rawGroup struct {
	Type       string            `json:"type"`
	Values     []json.RawMessage `json:"values"`
	Properties json.RawMessage   `json:"properties"`
}

// Compile parses a /flags/definitions response ({"flags":[...],
// "group_type_mapping":{...},"cohorts":{...}}) and prepares every flag for
// evaluation: regexes are compiled, and numbers, dates and versions in filter
// values are parsed once here rather than on every evaluation.
//
// Only a document that is not a JSON object of that shape is an error. A flag
// whose filters PostHog's flags service cannot decode is left out, as the
// service never serves it (see refusedByService); any other flag whose
// definition cannot be understood is kept, and evaluating it returns
// ErrInconclusive so the caller asks PostHog. property_matching_version 2
// selects explicit exact matching (see filter.exactExplicit).
func Compile(raw []byte) (*Evaluator, error) {
	var defs rawDefinitions
	if err := json.Unmarshal(raw, &defs); err != nil {
		return nil, fmt.Errorf("flag definitions: %w", err)
	}
	e := &Evaluator{
		flags:      make(map[string]*flagDef, len(defs.Flags)),
		groupTypes: make(map[int]string, len(defs.GroupTypeMapping)),
		cohorts:    make(map[string]*propGroup, len(defs.Cohorts)),
		byID:       make(map[string]string),
	}
	for idx, name := range defs.GroupTypeMapping {
		if i, err := strconv.Atoi(idx); err == nil {
			e.groupTypes[i] = name
		}
	}
	explicit := bytes.Equal(bytes.TrimSpace(defs.PropertyMatchingVersion), []byte("2"))
	for id, rc := range defs.Cohorts {
		e.cohorts[id] = compileGroup(rc, 0, explicit)
	}
	for _, rf := range defs.Flags {
		f := compileFlag(rf, e.groupTypes, explicit)
		if f == nil {
			continue
		}
		if _, dup := e.flags[f.key]; !dup {
			e.keys = append(e.keys, f.key)
		}
		e.flags[f.key] = f
		if f.id != 0 {
			e.byID[strconv.FormatInt(f.id, 10)] = f.key
		}
	}
	return e, nil
}

func compileFlag(raw json.RawMessage, groupTypes map[int]string, explicit bool) *flagDef {
	var probe struct {
		Key     string          `json:"key"`
		Deleted bool            `json:"deleted"`
		Filters json.RawMessage `json:"filters"`
	}
	if json.Unmarshal(raw, &probe) == nil && probe.Key != "" && !probe.Deleted && refusedByService(probe.Filters) != "" {
		return nil // the service cannot decode its filters and never serves it
	}
	var rf rawFlag
	if err := json.Unmarshal(raw, &rf); err != nil {
		// Keep the flag if we can at least tell its key, so that callers get
		// "inconclusive" (and ask PostHog) rather than "no such flag".
		var k struct {
			Key string `json:"key"`
		}
		if json.Unmarshal(raw, &k) != nil || k.Key == "" {
			return nil
		}
		return &flagDef{key: k.Key, active: true, broken: "definition not understood: " + err.Error()}
	}
	if rf.Key == "" || rf.Deleted {
		return nil // deleted flags are not served by PostHog either
	}
	f := &flagDef{
		key:     rf.Key,
		id:      intOf(rf.ID),
		version: intOf(rf.Version),
		active:  rf.Active != nil && *rf.Active,
		eec:     rf.EnsureExperienceContinuity != nil && *rf.EnsureExperienceContinuity,
		device:  rf.BucketingIdentifier != nil && *rf.BucketingIdentifier == "device_id",
	}
	fl := rf.Filters
	f.earlyExit = fl.EarlyExit != nil && *fl.EarlyExit
	if fl.AggregationGroupTypeIndex != nil {
		f.hasAgg, f.agg = true, *fl.AggregationGroupTypeIndex
		f.groupType = groupTypes[f.agg]
	}
	f.enrollment = fl.FeatureEnrollment != nil && *fl.FeatureEnrollment
	if h := bytes.TrimSpace(fl.Holdout); len(h) > 0 && !bytes.Equal(h, []byte("null")) {
		// "holdout": null is how PostHog detaches a holdout.
		var err error
		if f.holdout, err = compileHoldout(h); err != nil {
			f.broken = err.Error()
		}
	}
	if fl.Multivariate != nil {
		for _, v := range fl.Multivariate.Variants {
			pct := 0.0
			if v.RolloutPercentage != nil {
				pct = *v.RolloutPercentage
			}
			f.variants = append(f.variants, variant{key: v.Key, pct: pct})
		}
	}
	// payloads is any JSON value for the service; only an object has any.
	if pl, ok := object(fl.Payloads); ok && len(pl) > 0 {
		f.payloads = make(map[string]payload, len(pl))
		for k, p := range pl {
			if d := DecodePayload(p); d != nil {
				f.payloads[k] = payload{decoded: d, stored: bytes.Clone(bytes.TrimSpace(p))}
			}
		}
	}
	for _, rc := range fl.Groups {
		c := condition{rollout: 100}
		if rc.RolloutPercentage != nil {
			c.rollout = *rc.RolloutPercentage
		}
		if rc.Variant != nil && *rc.Variant != "" {
			for _, v := range f.variants {
				if v.key == *rc.Variant { // an override naming no variant is ignored
					c.variant = *rc.Variant
					break
				}
			}
		}
		switch {
		case rc.AggregationGroupTypeIndex != nil:
			c.hasAgg, c.agg = true, *rc.AggregationGroupTypeIndex
		case f.hasAgg:
			c.hasAgg, c.agg = true, f.agg
		}
		for _, rp := range rc.Properties {
			flt := compileFilter(rp, explicit)
			if flt.kind == kindCohort {
				c.cohorts = append(c.cohorts, flt)
			} else {
				c.filters = append(c.filters, flt)
			}
		}
		f.conds = append(f.conds, c)
	}
	return f
}

// compileHoldout reads a holdout the way the service's serde does: an
// integer id and a numeric exclusion_percentage, both required. Anything else
// fails the service's decoding of the whole flag (posthog-node would ignore
// such a holdout instead), so refusedByService drops the flag before it gets
// here: PostHog never serves it.
func compileHoldout(raw json.RawMessage) (*holdout, error) {
	var rh rawHoldout
	bad := fmt.Errorf("holdout %s not understood", raw)
	if json.Unmarshal(raw, &rh) != nil || len(rh.ID) == 0 || len(rh.ExclusionPercentage) == 0 {
		return nil, bad
	}
	id, err := strconv.ParseInt(string(rh.ID), 10, 64)
	if err != nil {
		return nil, bad
	}
	var pct float64
	if bytes.Equal(rh.ExclusionPercentage, []byte("null")) || json.Unmarshal(rh.ExclusionPercentage, &pct) != nil {
		return nil, bad
	}
	return &holdout{variant: "holdout-" + strconv.FormatInt(id, 10), pct: min(max(pct, 0), 100)}, nil
}

func intOf(v any) int64 {
	switch x := v.(type) {
	case float64:
		if x >= math.MinInt64 && x <= math.MaxInt64 {
			return int64(x)
		}
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	return 0
}

// payload keeps both forms of a configured payload (see Result.StoredPayload).
type payload struct{ decoded, stored json.RawMessage }

// DecodePayload turns a stored payload into the JSON it stands for. PostHog
// stores payloads as JSON strings holding JSON; a string that is not JSON is
// the payload itself, as a JSON string. Empty and null payloads are none, as in
// posthog-node.
func DecodePayload(p json.RawMessage) json.RawMessage {
	p = bytes.TrimSpace(p)
	if len(p) == 0 || bytes.Equal(p, []byte("null")) {
		return nil
	}
	if p[0] != '"' {
		return append(json.RawMessage(nil), p...)
	}
	var s string
	if json.Unmarshal(p, &s) != nil || s == "" {
		return nil
	}
	if inner := []byte(strings.TrimSpace(s)); json.Valid(inner) {
		var b bytes.Buffer
		if json.Compact(&b, inner) == nil {
			return b.Bytes()
		}
	}
	return append(json.RawMessage(nil), p...)
}

func decodeValue(raw json.RawMessage) (any, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, false
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil {
		return nil, false
	}
	return v, true
}

func compileFilter(raw json.RawMessage, explicit bool) *filter {
	var rp rawProperty
	if err := json.Unmarshal(raw, &rp); err != nil {
		return &filter{kind: kindUnknown, broken: "property filter not understood"}
	}
	f := &filter{typeName: rp.Type, negation: rp.Negation != nil && *rp.Negation, explicit: explicit}
	if k, ok := decodeValue(rp.Key); ok {
		f.key = reprOf(k)
	}
	if rp.GroupTypeIndex != nil {
		f.hasGTI, f.gti = true, *rp.GroupTypeIndex
	}
	f.opName = "exact"
	if rp.Operator != nil && *rp.Operator != "" {
		f.opName = *rp.Operator
	}
	f.value, f.hasValue = decodeValue(rp.Value)
	switch rp.Type {
	case "person":
		f.kind = kindPerson
	case "group":
		f.kind = kindGroup
	case "": // untyped legacy filters follow the condition's aggregation
		f.kind = kindDefault
	case "cohort":
		f.kind = kindCohort
		if f.hasValue {
			f.cohortID = reprOf(f.value)
		}
		// apply_cohort_membership_logic: no operator means in; any operator
		// but in and not_in (exact included) is false.
		switch {
		case rp.Operator == nil || *rp.Operator == "" || *rp.Operator == "in":
			f.op = opIn
		case *rp.Operator == "not_in":
			f.op = opNotIn
		default:
			f.op = opOther
		}
		return f
	case "flag":
		f.kind = kindFlag
		if f.opName != "flag_evaluates_to" {
			// match_flag_value_to_flag_filter: any other operator is false.
			f.op = opOther
		}
		return f
	default:
		f.kind, f.broken = kindUnknown, fmt.Sprintf("property type %q cannot be evaluated locally", rp.Type)
		return f
	}
	op, ok := operators[f.opName]
	if !ok {
		f.broken = fmt.Sprintf("operator %q unknown", f.opName)
		return f
	}
	f.op = op
	if !f.hasValue {
		return f
	}
	f.prepare()
	return f
}

// prepare precomputes everything about the filter value that does not depend
// on the person.
func (f *filter) prepare() {
	v := f.value
	f.repr = reprOf(v)
	switch f.op {
	case opExact, opIsNot:
		f.tf = isTruthyOrFalsy(v)
		f.truthy = isTruthy(v)
		if arr, ok := v.([]any); ok {
			f.isList = true
			f.list = make([]string, len(arr))
			for i, e := range arr {
				f.list[i] = reprOf(e)
			}
		}
	case opIcontains, opNotIcontains, opStartsWith, opNotStartsWith, opEndsWith, opNotEndsWith:
		f.lower = asciiLowerString(f.repr)
	case opIcontainsMulti, opNotIcontainsMulti:
		if arr, ok := v.([]any); ok {
			for _, e := range arr {
				f.list = append(f.list, asciiLowerString(reprOf(e)))
			}
		} else {
			f.list = []string{asciiLowerString(f.repr)}
		}
	case opRegex, opNotRegex:
		pattern, asciiOnly := unicodeRegex(f.repr)
		re, err := regexp.Compile(pattern)
		f.reASCIIOnly = asciiOnly
		switch {
		case err == nil:
			f.re = re
		case needsBacktrackingEngine(f.repr):
			// Valid for the service's fancy_regex (lookaround, backreferences)
			// but not for RE2: we cannot tell what it would match.
			f.reUnsupported = true
		default:
			f.reInvalid = true // the service answers false for invalid patterns
		}
	case opGt, opGte, opLt, opLte:
		f.num, f.numOK = numberOf(v)
	case opBetween, opNotBetween:
		f.numOK = false
		if arr, ok := v.([]any); ok && len(arr) == 2 {
			lo, okLo := numberOf(arr[0])
			hi, okHi := numberOf(arr[1])
			if okLo && okHi && !math.IsNaN(lo) && !math.IsNaN(hi) && lo <= hi {
				f.lo, f.hi, f.numOK = lo, hi, true
			}
		}
	case opDateBefore, opDateAfter, opDateExact:
		if s, ok := v.(string); ok {
			f.date = parseDateString(s)
			f.dateIsString = true
		}
	case opSemverEq, opSemverNeq, opSemverGt, opSemverGte, opSemverLt, opSemverLte:
		f.semver, f.semverOK = parseSemverValue(f.repr)
	case opSemverTilde:
		f.req, f.semverOK = parseSemverReq("~" + canonicalVersion(normalizeVersion(f.repr)))
	case opSemverCaret:
		f.req, f.semverOK = parseSemverReq("^" + canonicalVersion(normalizeVersion(f.repr)))
	case opSemverWildcard:
		f.req, f.semverOK = parseSemverReq(wildcardRequirement(f.repr))
	}
}

// needsBacktrackingEngine spots syntax that fancy_regex accepts and RE2 does
// not: lookaround, backreferences, atomic groups, possessive quantifiers.
func needsBacktrackingEngine(p string) bool {
	for _, s := range []string{"(?=", "(?!", "(?<=", "(?<!", "(?>", "\\k<", "*+", "++", "?+", "}+", "\\G", "\\Z"} {
		if strings.Contains(p, s) {
			return true
		}
	}
	for i := 0; i+1 < len(p); i++ {
		if p[i] == '\\' {
			if c := p[i+1]; c >= '1' && c <= '9' {
				return true
			}
			i++
		}
	}
	return false
}

var errBadGroup = errors.New("cohort property group not understood")

func compileGroup(raw json.RawMessage, depth int, explicit bool) *propGroup {
	var rg rawGroup
	if depth > 32 || json.Unmarshal(raw, &rg) != nil {
		return &propGroup{bad: errBadGroup}
	}
	if rg.Type == "" && len(rg.Properties) > 0 { // {"properties": {...}} as stored on the cohort
		return compileGroup(rg.Properties, depth+1, explicit)
	}
	g := &propGroup{}
	switch rg.Type {
	case "AND", "property":
		g.and = true
	case "OR":
	default:
		g.bad = fmt.Errorf("cohort group type %q unknown", rg.Type)
	}
	for _, rv := range rg.Values {
		var probe struct {
			Values json.RawMessage `json:"values"`
		}
		if json.Unmarshal(rv, &probe) == nil && len(probe.Values) > 0 {
			g.items = append(g.items, groupItem{group: compileGroup(rv, depth+1, explicit)})
			continue
		}
		flt := compileFilter(rv, explicit)
		if why := propertyFilter(rv); why != "" && flt.broken == "" {
			// The service cannot decode this cohort (its filters are the same
			// PropertyFilter) and fails the flag that uses it.
			flt.kind, flt.broken = kindUnknown, "cohort property filter not understood by PostHog: "+why
		}
		g.items = append(g.items, groupItem{filter: flt})
	}
	return g
}
