// Package eval evaluates PostHog feature flags locally from a
// /flags/definitions document, giving the answers PostHog's own flags service
// (rust/feature-flags) would give.
//
// It is pure: definitions JSON in, flag answers out, no I/O. When a flag cannot
// be decided from the definitions and the properties the caller gave (a
// property is missing, a cohort is static, a flag needs server-side state), the
// error wraps ErrInconclusive so the caller can ask PostHog's /flags instead.
//
// The reference is the service, as the newest posthog-node applies it locally.
// Where posthog-node and the service disagree this package follows the
// service; each such choice is commented where it is made and pinned by a
// TestServiceSemantics_* test.
//
// A flag is evaluated in the service's order (flag_matching.rs get_match):
//
//   - Inactive flags are off (flag_disabled) when asked for by key, and
//     EvaluateAll leaves them out, as the service's /flags does.
//   - Early access (filters.feature_enrollment): the person property
//     $feature_enrollment/<flag key> decides when the caller gives it ("true"
//     or true is on, any other value off; reason super_condition_value). When
//     the caller does not give it the flag is inconclusive: the service falls
//     through to the conditions only for a person who truly lacks the
//     property, and PostHog may have it stored, which would decide the flag
//     either way. posthog-node ignores enrollment altogether and answers from
//     the conditions, so it differs from the service for enrolled and opted-out
//     people. The legacy filters.super_groups are ignored, as by both.
//   - Holdouts (filters.holdout {id, exclusion_percentage}): a person or group
//     whose "holdout-<bucketing id>" hash is within the exclusion percentage
//     gets the variant "holdout-<id>" (reason holdout_condition_value, no
//     condition index, the payload stored under that variant), before any
//     condition. posthog-node does the same. The legacy filters.holdout_groups
//     are ignored, as by both.
//   - Conditions, in order; the first that matches decides. When an earlier
//     condition cannot be decided only because a property was not given and a
//     later one matches, the flag is on either way; when the earlier
//     condition would give the same variant (none, no override, or an
//     override equal to the hashed variant) the answer and payload are the
//     same too, and it is answered with the later condition's index, though
//     the service, which has the property, may report the earlier one. An
//     override that could differ stays inconclusive, and so do early_exit
//     flags whose undecided condition rolls the person out (it might have
//     ended evaluation with "off").
//
// Properties are looked up as the service sees them: distinct_id is always a
// person property and $group_key a property of each group in the request; a
// property absent where PostHog stores nothing more (no group key, an
// unmapped group type) is absent, anywhere else it is unknown. Flags whose
// filters the service cannot decode are not served (see refusedByService).
package eval

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// ErrInconclusive means the flag cannot be decided locally; ask PostHog's /flags.
var ErrInconclusive = errors.New("cannot be evaluated locally")

// ErrUnknownFlag means the definitions have no flag with that key.
var ErrUnknownFlag = errors.New("no such flag")

// Input is what is known about the subject of an evaluation.
type Input struct {
	DistinctID string
	// DeviceID buckets flags whose bucketing_identifier is "device_id". When it
	// is empty, PersonProperties["$device_id"] is used, as posthog-node does.
	DeviceID         string
	Groups           map[string]string         // group type -> group key
	PersonProperties map[string]any            // as decoded by encoding/json; json.Number and Go ints accepted too
	GroupProperties  map[string]map[string]any // group type -> properties
}

// Reason says why a flag has its value. Codes are PostHog's:
// condition_match, no_condition_match, out_of_rollout_bound, no_group_type,
// flag_disabled, holdout_condition_value, super_condition_value.
type Reason struct {
	Code           string
	ConditionIndex *int
	Description    string
}

// Result is one flag's answer.
type Result struct {
	Key     string
	Enabled bool
	Variant string // "" = none
	// Payload is the JSON value configured for the answer (the variant's, or
	// "true"'s), nil when there is none or the flag is off. One exception
	// follows the service: a person who opted out of an early access feature
	// ($feature_enrollment/<key> given and not true) gets the "true" payload
	// with the flag off, as the service's /flags serves it.
	Payload json.RawMessage
	// StoredPayload is the same payload exactly as PostHog stores and serves
	// it (usually a JSON string holding JSON). Answers in PostHog's wire
	// format use it: decoding and re-encoding cannot tell a stored JSON
	// string literal from plain text.
	StoredPayload json.RawMessage
	Reason        Reason
	ID            int64
	Version       int64
}

// Value is what PostHog SDKs return for a flag: the variant if there is one, else Enabled.
func (r Result) Value() any {
	if r.Variant != "" {
		return r.Variant
	}
	return r.Enabled
}

// FlagInfo describes a compiled flag.
type FlagInfo struct {
	Key                        string
	ID                         int64
	Version                    int64
	Active                     bool
	EnsureExperienceContinuity bool
	GroupType                  string // "" for person flags
	HasPayloads                bool
}

// Evaluator holds compiled definitions. It is immutable after Compile and safe
// for concurrent use.
type Evaluator struct {
	keys       []string
	flags      map[string]*flagDef
	byID       map[string]string // flag id -> key, for dependencies that name flags by id
	groupTypes map[int]string
	cohorts    map[string]*propGroup
	now        func() time.Time // relative dates; nil means time.Now
}

type flagDef struct {
	key         string
	id, version int64
	active      bool
	eec         bool
	device      bool // bucketing_identifier == "device_id"
	hasAgg      bool
	agg         int
	groupType   string
	earlyExit   bool
	enrollment  bool     // filters.feature_enrollment
	holdout     *holdout // filters.holdout, nil when none
	conds       []condition
	variants    []variant
	payloads    map[string]payload
	broken      string // non-empty: never evaluable locally, and why
}

type holdout struct {
	variant string  // "holdout-<id>"
	pct     float64 // exclusion percentage, clamped to [0, 100]
}

type variant struct {
	key string
	pct float64
}

type condition struct {
	filters []*filter // person, group and flag filters, in definition order
	cohorts []*filter
	rollout float64
	variant string // a valid variant override, or ""
	hasAgg  bool
	agg     int
}

type propGroup struct {
	and   bool
	items []groupItem
	bad   error
}

type groupItem struct {
	group  *propGroup
	filter *filter
}

// Keys returns the flag keys in definition order.
func (e *Evaluator) Keys() []string { return append([]string(nil), e.keys...) }

// Len returns the number of flags.
func (e *Evaluator) Len() int { return len(e.keys) }

// Flag describes one flag.
func (e *Evaluator) Flag(key string) (FlagInfo, bool) {
	f, ok := e.flags[key]
	if !ok {
		return FlagInfo{}, false
	}
	return FlagInfo{
		Key: f.key, ID: f.id, Version: f.version, Active: f.active,
		EnsureExperienceContinuity: f.eec, GroupType: f.groupType,
		HasPayloads: len(f.payloads) > 0,
	}, true
}

// Evaluate answers one flag. The error wraps ErrUnknownFlag or ErrInconclusive.
func (e *Evaluator) Evaluate(key string, in Input) (Result, error) {
	f, ok := e.flags[key]
	if !ok {
		return Result{}, fmt.Errorf("flag %q: %w", key, ErrUnknownFlag)
	}
	c := run{e: e, in: &in, now: e.clock()}
	c.depth = 1
	c.stack[0] = key
	r, err := c.flag(f)
	if err != nil {
		return Result{}, inconclusive(key, err)
	}
	return r, nil
}

// EvaluateAll answers every active flag. Flags that cannot be decided locally
// are in inconclusive (each error wraps ErrInconclusive) and not in results.
// Inactive flags are in neither: the service's /flags leaves them out of its
// answers (fetch_and_filter puts them in filtered_out_flag_ids, which
// evaluation skips), though posthog-node's local getAllFlags lists them as
// false. Evaluate still answers an inactive key with false (flag_disabled), as
// the SDKs' single-flag calls do.
func (e *Evaluator) EvaluateAll(in Input) (results map[string]Result, inconclusiveFlags map[string]error) {
	results = make(map[string]Result, len(e.keys))
	inconclusiveFlags = map[string]error{}
	c := run{e: e, in: &in, now: e.clock(), memo: make(map[string]memoEntry, len(e.keys))}
	for _, key := range e.keys {
		if !e.flags[key].active {
			continue
		}
		c.depth = 1
		c.stack[0] = key
		r, err := c.dep(key)
		if err != nil {
			inconclusiveFlags[key] = inconclusive(key, err)
			continue
		}
		results[key] = r
	}
	return results, inconclusiveFlags
}

// MaxDistinctIDLen is the service's MAX_DISTINCT_ID_LEN, in characters.
const MaxDistinctIDLen = 200

// TruncateDistinctID cuts id to its first 200 characters (runes, not bytes),
// as the service's FlagRequest::extract_distinct_id does, so a multibyte id
// hashes as it does in PostHog and stays valid UTF-8.
func TruncateDistinctID(id string) string {
	if len(id) <= MaxDistinctIDLen {
		return id
	}
	n := 0
	for i := range id {
		if n == MaxDistinctIDLen {
			return id[:i]
		}
		n++
	}
	return id
}

func inconclusive(key string, cause error) error {
	return fmt.Errorf("flag %q: %w: %v", key, ErrInconclusive, cause)
}

func (e *Evaluator) clock() time.Time {
	if e.now != nil {
		return e.now()
	}
	return time.Now()
}

// Reason priorities, from the service's flag_match_reason.rs: when no
// condition matches, the highest-scoring reason seen is reported.
const (
	scoreNoGroupType       = 1
	scoreNoConditionMatch  = 2
	scoreOutOfRolloutBound = 3
)

var reasonCodes = map[int]string{
	scoreNoGroupType:       "no_group_type",
	scoreNoConditionMatch:  "no_condition_match",
	scoreOutOfRolloutBound: "out_of_rollout_bound",
}

// reasonTracker keeps the highest reason and its condition index; a later
// condition with an equal score wins, as in the service.
type reasonTracker struct {
	score int
	index int // -1: none
}

func (t *reasonTracker) bump(score, index int) {
	if t.score <= score {
		t.score, t.index = score, index
	}
}

type memoEntry struct {
	r   Result
	err error
}

// run is the state of one Evaluate or EvaluateAll call.
type run struct {
	e     *Evaluator
	in    *Input
	now   time.Time
	memo  map[string]memoEntry // flag results, shared by dependencies
	stack [16]string           // flags being evaluated, to spot cycles
	depth int
}

func (c *run) deviceID() string {
	if c.in.DeviceID != "" {
		return c.in.DeviceID
	}
	if s, ok := c.in.PersonProperties["$device_id"].(string); ok {
		return s
	}
	return ""
}

// dep evaluates a flag that another flag (or EvaluateAll) needs, once per run.
func (c *run) dep(key string) (Result, error) {
	if m, ok := c.memo[key]; ok {
		return m.r, m.err
	}
	f, ok := c.e.flags[key]
	if !ok {
		return Result{}, fmt.Errorf("flag dependency %q is not in the definitions", key)
	}
	r, err := c.flag(f)
	if c.memo == nil {
		c.memo = make(map[string]memoEntry)
	}
	c.memo[key] = memoEntry{r, err}
	return r, err
}

// flag is the service's get_match for one flag.
func (c *run) flag(f *flagDef) (Result, error) {
	res := Result{Key: f.key, ID: f.id, Version: f.version}
	if !f.active {
		res.Reason = Reason{Code: "flag_disabled", Description: "Feature flag is disabled"}
		return res, nil
	}
	if f.broken != "" {
		return res, errors.New(f.broken)
	}
	if f.enrollment {
		// Enrollment is read before anything is hashed, so it decides even
		// flags whose bucketing only PostHog knows.
		v, ok := c.in.PersonProperties[enrollmentPrefix+f.key]
		if !ok {
			return res, fmt.Errorf("%w: %q (early access enrollment decides when PostHog has it)", errMissing, enrollmentPrefix+f.key)
		}
		res.Enabled = isEnrolled(v)
		c.setPayload(f, &res, "true")
		idx := 0
		res.Reason = Reason{Code: "super_condition_value", ConditionIndex: &idx, Description: "Super condition value"}
		return res, nil
	}
	if f.eec {
		// The service buckets these by a hash key override stored in its
		// database; only it knows which one applies.
		return res, errors.New("ensure_experience_continuity needs PostHog's stored hash key overrides")
	}
	if f.holdout != nil && c.heldOut(f) {
		res.Enabled, res.Variant = true, f.holdout.variant
		c.setPayload(f, &res, res.Variant)
		res.Reason = Reason{Code: "holdout_condition_value", Description: "Holdout condition value"}
		return res, nil
	}
	// Two trackers: unknown conditions that cannot match count as
	// no_condition_match in low and as out_of_rollout_bound in high. If both
	// end the same, the unknowns did not change the answer.
	low := reasonTracker{score: scoreNoGroupType, index: -1}
	high := low
	var undecided error // a condition that might have matched, had we known
	// undecidedMayEnd: an undecided condition might instead have ended
	// evaluation with "off" (early_exit, properties unknown, rolled out).
	undecidedMayEnd := false
	// undecidedVariant is the variant every undecided condition would give had
	// it matched (its override, or its hashed variant); variantsDiffer: they
	// do not all agree.
	undecidedVariant, variantsDiffer := "", false
	skippedGroup := false
	for i := range f.conds {
		cond := &f.conds[i]
		var bucket string
		switch {
		case cond.hasAgg:
			name, known := c.e.groupTypes[cond.agg]
			key := ""
			if known {
				key = c.in.Groups[name]
			}
			if key == "" {
				// No group given for this condition: it cannot match. An index
				// missing from group_type_mapping gets the same answer from the
				// service (posthog-node gives up instead).
				skippedGroup = true
				low.bump(scoreNoGroupType, i)
				high.bump(scoreNoGroupType, i)
				continue
			}
			bucket = key
		case f.device:
			bucket = c.deviceID()
			if bucket == "" {
				// get_match skips a person condition of a device_id flag
				// when the request has no device id, as out_of_rollout_bound,
				// whatever its rollout, rather than bucketing on distinct_id;
				// posthog-node gives up.
				low.bump(scoreOutOfRolloutBound, i)
				high.bump(scoreOutOfRolloutBound, i)
				continue
			}
		default:
			bucket = c.in.DistinctID
		}

		ok, err := c.conditionProperties(f, cond)
		if err == nil && !ok {
			low.bump(scoreNoConditionMatch, i)
			high.bump(scoreNoConditionMatch, i)
			continue
		}
		// The service skips hashing at 100 % and is in when hash <= pct/100.
		inRollout := cond.rollout == 100 || bucketHash(f.key, bucket, "") <= cond.rollout/100
		if err != nil {
			if !inRollout && !f.earlyExit {
				// Out of rollout whatever the properties say: this condition
				// cannot match; only its reason is unknown.
				low.bump(scoreNoConditionMatch, i)
				high.bump(scoreOutOfRolloutBound, i)
				continue
			}
			v := conditionVariant(f, cond, bucket)
			if undecided == nil {
				undecidedVariant = v
			} else if v != undecidedVariant {
				variantsDiffer = true
			}
			undecided = mergeUnknown(undecided, err)
			undecidedMayEnd = undecidedMayEnd || !inRollout
			continue
		}
		if !inRollout {
			low.bump(scoreOutOfRolloutBound, i)
			high.bump(scoreOutOfRolloutBound, i)
			if f.earlyExit {
				// early_exit: targeted but rolled out of this condition means
				// off, without trying later conditions (as posthog-node does).
				if undecided != nil {
					return res, undecided
				}
				idx := i
				res.Reason = Reason{Code: "out_of_rollout_bound", ConditionIndex: &idx, Description: "Out of rollout bound"}
				return res, nil
			}
			continue
		}
		variant := conditionVariant(f, cond, bucket)
		if undecided != nil && (undecidedMayEnd || !errors.Is(undecided, errMissing) ||
			variantsDiffer || undecidedVariant != variant) {
			// An earlier condition might have matched first with another
			// variant, or ended evaluation. Only a property the caller did
			// not give is an unknown the service settles inside its
			// condition; other unknowns (a cohort or flag dependency missing
			// from the definitions, ...) can change the whole flag's answer.
			return res, undecided
		}
		// Here any undecided earlier condition could only have matched with
		// the same variant (none for a boolean flag), so the value and
		// payload are the same whichever condition the service matches.
		res.Enabled = true
		res.Variant = variant
		pk := res.Variant
		if pk == "" {
			pk = "true"
		}
		c.setPayload(f, &res, pk)
		idx := i
		res.Reason = Reason{Code: "condition_match", ConditionIndex: &idx, Description: "Matched condition set " + strconv.Itoa(i+1)}
		return res, nil
	}
	if undecided != nil {
		return res, undecided
	}
	if low != high {
		return res, errors.New("a condition could not be evaluated and its outcome decides the reason")
	}
	code := reasonCodes[low.score]
	r := Reason{Code: code}
	if low.index >= 0 {
		idx := low.index
		r.ConditionIndex = &idx
	}
	switch low.score {
	case scoreNoGroupType:
		r.Description = "No group type"
	case scoreOutOfRolloutBound:
		r.Description = "Out of rollout bound"
	default:
		r.Description = "No matching condition set"
		if skippedGroup {
			r.Description = "No matching condition set; group conditions not evaluated: group not given"
		}
	}
	res.Reason = r
	return res, nil
}

const enrollmentPrefix = "$feature_enrollment/"

// isEnrolled is the service's enrollment test: the string "true" or true.
func isEnrolled(v any) bool {
	switch x := v.(type) {
	case string:
		return x == "true"
	case bool:
		return x
	}
	return false
}

// heldOut reports whether the flag's holdout excludes this subject. The
// service hashes the flag-level bucketing identifier (get_holdout_hash): the
// group key of a group flag ("" when none is given, which the service hashes
// as is), the device id of a device_id flag when there is one, else the
// distinct id. posthog-node returns false for a group flag without its group
// and gives up on a device_id flag without a device id; with any exclusion
// below 92.7 % (the hash of "holdout-") the first agrees with the service.
func (c *run) heldOut(f *flagDef) bool {
	if f.holdout.pct >= 100 {
		return true
	}
	var id string
	switch {
	case f.hasAgg:
		if name, ok := c.e.groupTypes[f.agg]; ok {
			id = c.in.Groups[name]
		}
	case f.device:
		id = c.deviceID()
		if id == "" {
			id = c.in.DistinctID
		}
	default:
		id = c.in.DistinctID
	}
	return holdoutHash(id) <= f.holdout.pct/100
}

func (c *run) setPayload(f *flagDef, res *Result, key string) {
	if p, ok := f.payloads[key]; ok {
		res.Payload, res.StoredPayload = p.decoded, p.stored
	}
}

// mergeUnknown keeps the first unknown, unless a later one is of a harder
// kind: an unknown is soft (wraps errMissing) when only a property the caller
// did not give is missing, which the service settles within its condition.
func mergeUnknown(cur, next error) error {
	if cur == nil || (errors.Is(cur, errMissing) && !errors.Is(next, errMissing)) {
		return next
	}
	return cur
}

// conditionVariant is the variant a matching condition gives: its valid
// override, else the hashed variant ("" for a flag without variants).
func conditionVariant(f *flagDef, cond *condition, bucket string) string {
	if cond.variant != "" {
		return cond.variant
	}
	return matchingVariant(f, bucket)
}

// matchingVariant walks the variants' cumulative shares with the "variant"
// salted hash, accumulating exactly as the service does.
func matchingVariant(f *flagDef, bucket string) string {
	if len(f.variants) == 0 {
		return ""
	}
	h := bucketHash(f.key, bucket, "variant")
	cum := 0.0
	for _, v := range f.variants {
		cum += v.pct / 100
		if h < cum {
			return v.key
		}
	}
	return ""
}

// conditionProperties ANDs a condition's filters in three-valued logic: any
// definite false makes the condition false even when another filter is
// unknown, since the service (which knows every property) would find it too.
func (c *run) conditionProperties(f *flagDef, cond *condition) (bool, error) {
	var unknown error
	for _, flt := range cond.filters {
		ok, err := c.filter(flt, cond)
		if err == nil && !ok {
			return false, nil
		}
		if err != nil {
			unknown = mergeUnknown(unknown, err)
		}
	}
	for _, flt := range cond.cohorts {
		ok, err := c.cohortFilter(flt)
		if err == nil && !ok {
			return false, nil
		}
		if err != nil {
			unknown = mergeUnknown(unknown, err)
		}
	}
	return unknown == nil, unknown
}

func (c *run) filter(flt *filter, cond *condition) (bool, error) {
	switch flt.kind {
	case kindFlag:
		return c.flagFilter(flt)
	case kindPerson:
		return flt.match(c.personProps(), c.now)
	case kindGroup:
		gti, has := flt.gti, flt.hasGTI
		if !has {
			gti, has = cond.agg, cond.hasAgg
		}
		return c.groupFilter(flt, gti, has)
	case kindDefault:
		if cond.hasAgg {
			return c.groupFilter(flt, cond.agg, true)
		}
		return flt.match(c.personProps(), c.now)
	}
	if flt.broken != "" {
		return false, errors.New(flt.broken)
	}
	return false, fmt.Errorf("property type %q cannot be evaluated locally", flt.typeName)
}

// personProps are the person properties as the service sees them: it always
// adds the request's distinct_id (fetch_and_locally_cache_all_relevant_properties),
// and a distinct_id the caller passed in person_properties wins, as request
// properties override stored ones.
func (c *run) personProps() props {
	return props{m: c.in.PersonProperties, extraKey: "distinct_id", extra: c.in.DistinctID}
}

// groupFilter matches a group property filter against the group's properties
// as the service resolves them (PropertyContext::resolve_for_filter,
// get_group_properties): for each group in the request it sets $group_key to
// the request's key, overwriting a supplied one
// (get_group_property_overrides); stored properties exist only for a group
// the request names, so without a group key (or for an index the project's
// group_type_mapping lacks, or a filter naming no group type) the request's
// properties, or none, are all it has, and an absent key is absent.
func (c *run) groupFilter(flt *filter, gti int, has bool) (bool, error) {
	if !has {
		return flt.match(props{complete: true}, c.now)
	}
	name, ok := c.e.groupTypes[gti]
	if !ok {
		return flt.match(props{complete: true}, c.now)
	}
	p := props{m: c.in.GroupProperties[name]}
	key, named := c.in.Groups[name]
	if named {
		p.extraKey, p.extra, p.override = "$group_key", key, true
	}
	// PostHog stores no group under an empty key.
	p.complete = key == ""
	return flt.match(p, c.now)
}

// flagFilter evaluates a flag_evaluates_to dependency.
func (c *run) flagFilter(flt *filter) (bool, error) {
	if flt.broken != "" {
		return false, errors.New(flt.broken)
	}
	if flt.op == opOther {
		return false, nil
	}
	key := flt.key
	if _, ok := c.e.flags[key]; !ok {
		if k, byID := c.e.byID[key]; byID {
			key = k
		}
	}
	for i := 0; i < c.depth; i++ {
		if c.stack[i] == key {
			// The service fails such flags closed (false, missing_dependency);
			// a cycle means the definitions are inconsistent, so ask PostHog.
			return false, fmt.Errorf("flag dependency cycle through %q", key)
		}
	}
	if c.depth == len(c.stack) {
		return false, errors.New("flag dependencies nested too deeply")
	}
	c.stack[c.depth] = key
	c.depth++
	r, err := c.dep(key)
	c.depth--
	if err != nil {
		return false, fmt.Errorf("flag dependency %q: %w", key, err)
	}
	switch want := flt.value.(type) {
	case bool:
		if want {
			return r.Enabled, nil // true means "any non-false value"
		}
		return !r.Enabled, nil
	case string:
		return r.Enabled && r.Variant == want, nil
	}
	return false, nil // numbers, lists: never equal to a flag value
}

// cohortFilter is a flag condition's cohort filter: membership through the
// operator (in / not_in); cohorts are always about the person, even in group
// conditions, as in the service.
func (c *run) cohortFilter(flt *filter) (bool, error) {
	member, err := c.cohort(flt.cohortID, 0)
	if err != nil {
		return false, err
	}
	switch flt.op {
	case opIn:
		return member, nil
	case opNotIn:
		return !member, nil
	}
	return false, nil
}

func (c *run) cohort(id string, depth int) (bool, error) {
	g, ok := c.e.cohorts[id]
	if !ok {
		// Static cohorts are not shipped with the definitions; membership
		// lives in PostHog's database.
		return false, fmt.Errorf("cohort %s is not in the definitions (static cohort?)", id)
	}
	if depth > 16 {
		return false, fmt.Errorf("cohort %s nests too deeply (cycle?)", id)
	}
	return c.group(g, depth)
}

// group evaluates a cohort property group. Empty groups follow the service:
// an empty AND matches and an empty OR does not (posthog-node matches both).
func (c *run) group(g *propGroup, depth int) (bool, error) {
	if g.bad != nil {
		return false, g.bad
	}
	var unknown error
	for _, it := range g.items {
		var m bool
		var err error
		if it.group != nil {
			m, err = c.group(it.group, depth)
		} else {
			m, err = c.groupFilterItem(it.filter, depth)
		}
		if err != nil {
			unknown = mergeUnknown(unknown, err)
			continue
		}
		if g.and && !m {
			return false, nil
		}
		if !g.and && m {
			return true, nil
		}
	}
	if unknown != nil {
		return false, unknown
	}
	return g.and, nil
}

// groupFilterItem is one filter inside a cohort. Following the service's
// cohort_operations.rs (evaluate_cohort_filter), negation applies to nested
// cohorts and property filters alike, in AND and OR groups, and every
// operator error is a non-match.
func (c *run) groupFilterItem(flt *filter, depth int) (bool, error) {
	switch flt.kind {
	case kindCohort:
		member, err := c.cohort(flt.cohortID, depth+1)
		if err != nil {
			return false, err
		}
		m := false
		switch flt.op {
		case opIn:
			m = member
		case opNotIn:
			m = !member
		}
		return m != flt.negation, nil
	case kindPerson, kindDefault:
		m, err := flt.match(c.personProps(), c.now)
		if err != nil {
			return false, err
		}
		return m != flt.negation, nil
	case kindFlag:
		// The service's cohort matcher has no flag dependencies: its property
		// matcher rejects flag_evaluates_to, which counts as no match.
		return flt.negation, nil
	}
	if flt.broken != "" {
		return false, errors.New(flt.broken)
	}
	return false, fmt.Errorf("cohort filter type %q cannot be evaluated locally", flt.typeName)
}
