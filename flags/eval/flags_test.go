package eval

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFlags_BasicsAndReasons(t *testing.T) {
	inactive := flag("inactive", cond(100))
	inactive["active"] = false
	e := defs(t, arr{
		flag("always", cond(100)),
		flag("never", cond(0)),
		flag("null-rollout", cond(nil)),
		flag("two", cond(100, prop("plan", "exact", "pro")), cond(100, prop("plan", "exact", "team"))),
		inactive,
	})
	in := Input{DistinctID: "u", PersonProperties: map[string]any{"plan": "team"}}

	r, err := e.Evaluate("always", in)
	require.NoError(t, err)
	require.Equal(t, Result{Key: "always", Enabled: true, ID: 1, Version: 3,
		Reason: Reason{Code: "condition_match", ConditionIndex: intp(0), Description: "Matched condition set 1"}}, r)

	r, err = e.Evaluate("never", in)
	require.NoError(t, err)
	require.False(t, r.Enabled)
	require.Equal(t, "out_of_rollout_bound", r.Reason.Code)

	r, err = e.Evaluate("null-rollout", in)
	require.NoError(t, err)
	require.True(t, r.Enabled)

	r, err = e.Evaluate("two", in)
	require.NoError(t, err)
	require.True(t, r.Enabled)
	require.Equal(t, intp(1), r.Reason.ConditionIndex)

	r, err = e.Evaluate("two", Input{DistinctID: "u", PersonProperties: map[string]any{"plan": "free"}})
	require.NoError(t, err)
	require.Equal(t, Reason{Code: "no_condition_match", ConditionIndex: intp(1), Description: "No matching condition set"}, r.Reason)

	r, err = e.Evaluate("inactive", Input{})
	require.NoError(t, err)
	require.False(t, r.Enabled)
	require.Equal(t, "flag_disabled", r.Reason.Code)

	_, err = e.Evaluate("nope", in)
	require.ErrorIs(t, err, ErrUnknownFlag)
}

func TestFlags_RolloutUsesDistinctID(t *testing.T) {
	// From PostHog's vectors: simple-flag at 45 % is off for distinct_id_0 and
	// on for distinct_id_1; behind a matching property filter too.
	e := defs(t, arr{flag("simple-flag", cond(45, prop("plan", "exact", "pro")))})
	props := map[string]any{"plan": "pro"}
	r, err := e.Evaluate("simple-flag", Input{DistinctID: "distinct_id_0", PersonProperties: props})
	require.NoError(t, err)
	require.False(t, r.Enabled)
	require.Equal(t, "out_of_rollout_bound", r.Reason.Code)
	r, err = e.Evaluate("simple-flag", Input{DistinctID: "distinct_id_1", PersonProperties: props})
	require.NoError(t, err)
	require.True(t, r.Enabled)
}

func TestFlags_AllConditionsAndedOrOred(t *testing.T) {
	e := defs(t, arr{flag("f",
		cond(100, prop("a", "exact", "1"), prop("b", "exact", "2")),
		cond(100, prop("c", "exact", "3")),
	)})
	cases := []struct {
		props map[string]any
		want  outcome
	}{
		{map[string]any{"a": "1", "b": "2"}, on},
		{map[string]any{"a": "1", "b": "x", "c": "x"}, off},
		{map[string]any{"a": "x", "b": "x", "c": "3"}, on},
		// b is unknown but a is definitely false: the first condition cannot
		// match whatever b is, and the second decides.
		{map[string]any{"a": "x", "c": "x"}, off},
		// The first condition is undecided and could have matched first, but
		// the flag has no variants: on either way.
		{map[string]any{"a": "1", "c": "3"}, on},
		// Undecided, and nothing later matches.
		{map[string]any{"a": "1", "c": "x"}, inco},
	}
	for _, c := range cases {
		r, err := e.Evaluate("f", Input{DistinctID: "u", PersonProperties: c.props})
		requireOutcome(t, c.want, r, err, c.props)
	}
}

// A condition we cannot decide but whose rollout excludes the user cannot
// match, so a later condition decides (posthog-node would also answer; with
// early_exit it could short-circuit, so then we do not).
func TestFlags_UndecidedConditionOutOfRollout(t *testing.T) {
	f := flag("simple-flag", cond(45, prop("a", "exact", "1")), cond(100))
	e := defs(t, arr{f})
	r, err := e.Evaluate("simple-flag", Input{DistinctID: "distinct_id_0"}) // out of the 45 %
	require.NoError(t, err)
	require.True(t, r.Enabled)
	require.Equal(t, intp(1), r.Reason.ConditionIndex)
	// Inside the 45 %: a decides which condition matches, not the value.
	r, err = e.Evaluate("simple-flag", Input{DistinctID: "distinct_id_1"})
	require.NoError(t, err)
	require.True(t, r.Enabled)
	// Multivariate, no overrides: either condition hashes distinct_id_1 to
	// the same variant (test, 0.507), so a decides only the condition index.
	mv := multivariateFlag("simple-flag", cond(45, prop("a", "exact", "1")), cond(100))
	r, err = defs(t, arr{mv}).Evaluate("simple-flag", Input{DistinctID: "distinct_id_1"})
	require.NoError(t, err)
	require.Equal(t, "test", r.Variant)
	// With an override on the undecided condition that differs from the
	// hashed variant, a decides the variant.
	mv = multivariateFlag("simple-flag", cond(45, prop("a", "exact", "1")), cond(100))
	mv["filters"].(obj)["groups"].(arr)[0].(obj)["variant"] = "control"
	_, err = defs(t, arr{mv}).Evaluate("simple-flag", Input{DistinctID: "distinct_id_1"})
	require.ErrorIs(t, err, ErrInconclusive)

	f["filters"].(obj)["early_exit"] = true
	e = defs(t, arr{f})
	_, err = e.Evaluate("simple-flag", Input{DistinctID: "distinct_id_0"})
	require.ErrorIs(t, err, ErrInconclusive)
}

func TestFlags_EarlyExit(t *testing.T) {
	f := flag("simple-flag", cond(45, prop("plan", "exact", "pro")), cond(100))
	in := Input{DistinctID: "distinct_id_0", PersonProperties: map[string]any{"plan": "pro"}}
	r, err := defs(t, arr{f}).Evaluate("simple-flag", in)
	require.NoError(t, err)
	require.True(t, r.Enabled, "without early_exit the second condition matches")

	f["filters"].(obj)["early_exit"] = true
	r, err = defs(t, arr{f}).Evaluate("simple-flag", in)
	require.NoError(t, err)
	require.False(t, r.Enabled)
	require.Equal(t, Reason{Code: "out_of_rollout_bound", ConditionIndex: intp(0), Description: "Out of rollout bound"}, r.Reason)

	// early_exit only fires when the properties matched.
	in.PersonProperties = map[string]any{"plan": "free"}
	r, err = defs(t, arr{f}).Evaluate("simple-flag", in)
	require.NoError(t, err)
	require.True(t, r.Enabled)
}

func multivariateFlag(key string, groups ...obj) obj {
	f := flag(key, groups...)
	f["filters"].(obj)["multivariate"] = obj{"variants": arr{
		obj{"key": "control", "rollout_percentage": 50},
		obj{"key": "test", "rollout_percentage": 50},
	}}
	f["filters"].(obj)["payloads"] = obj{
		"control": `{"color": "blue"}`,
		"test":    "not json",
		"true":    `[1, 2]`,
	}
	return f
}

func TestFlags_VariantOverridesAndPayloads(t *testing.T) {
	override := cond(100, prop("email", "icontains", "@posthog.com"))
	override["variant"] = "test"
	bogus := cond(100, prop("email", "icontains", "@example.com"))
	bogus["variant"] = "no-such-variant"
	e := defs(t, arr{multivariateFlag("mv", override, bogus)})

	r, err := e.Evaluate("mv", Input{DistinctID: "u", PersonProperties: map[string]any{"email": "a@posthog.com"}})
	require.NoError(t, err)
	require.Equal(t, "test", r.Value())
	require.JSONEq(t, `"not json"`, string(r.Payload), "a payload that is not JSON is a JSON string")

	// An override naming no variant is ignored: the hash picks.
	for _, id := range []string{"a", "b", "c", "d", "e", "f"} {
		r, err = e.Evaluate("mv", Input{DistinctID: id, PersonProperties: map[string]any{"email": "x@example.com"}})
		require.NoError(t, err)
		require.Equal(t, matchingVariant(e.flags["mv"], id), r.Variant)
		require.NotEmpty(t, r.Variant)
		if r.Variant == "control" {
			require.JSONEq(t, `{"color":"blue"}`, string(r.Payload))
		}
	}

	// Off: no payload.
	r, err = e.Evaluate("mv", Input{DistinctID: "u", PersonProperties: map[string]any{"email": "x@gmail.com"}})
	require.NoError(t, err)
	require.Nil(t, r.Payload)

	// Boolean flags use the "true" payload.
	b := flag("b", cond(100))
	b["filters"].(obj)["payloads"] = obj{"true": `{"a": 1}`}
	r, err = defs(t, arr{b}).Evaluate("b", Input{DistinctID: "u"})
	require.NoError(t, err)
	require.JSONEq(t, `{"a":1}`, string(r.Payload))
	info, ok := defs(t, arr{b}).Flag("b")
	require.True(t, ok)
	require.True(t, info.HasPayloads)
}

func TestFlags_ServerOnlyFeaturesAreInconclusive(t *testing.T) {
	eec := flag("eec", cond(100))
	eec["ensure_experience_continuity"] = true
	inactiveEEC := flag("inactive-eec", cond(100))
	inactiveEEC["ensure_experience_continuity"] = true
	inactiveEEC["active"] = false
	e := defs(t, arr{eec, inactiveEEC})
	_, err := e.Evaluate("eec", Input{DistinctID: "u"})
	require.ErrorIs(t, err, ErrInconclusive)
	// Inactive wins over continuity (as in posthog-node and the service).
	r, err := e.Evaluate("inactive-eec", Input{DistinctID: "u"})
	require.NoError(t, err)
	require.Equal(t, "flag_disabled", r.Reason.Code)
}

// A flag without condition groups: the service seeds its reason with
// no_group_type and nothing outranks it.
func TestServiceSemantics_NoConditionsReportsNoGroupType(t *testing.T) {
	r, err := defs(t, arr{flag("empty")}).Evaluate("empty", Input{DistinctID: "u"})
	require.NoError(t, err)
	require.False(t, r.Enabled)
	require.Equal(t, "no_group_type", r.Reason.Code)
}

func groupFlag(key string, groups ...obj) obj {
	f := flag(key, groups...)
	f["filters"].(obj)["aggregation_group_type_index"] = 0
	return f
}

func gprop(key, op string, value any) obj {
	return obj{"key": key, "operator": op, "value": value, "type": "group", "group_type_index": 0}
}

var mapping = obj{"group_type_mapping": obj{"0": "company", "1": "project"}}

func TestFlags_GroupFlags(t *testing.T) {
	e := defs(t, arr{
		groupFlag("g", cond(100, gprop("plan", "exact", "enterprise"))),
		groupFlag("g-rollout", cond(100)),
	}, mapping)
	info, _ := e.Flag("g")
	require.Equal(t, "company", info.GroupType)

	// No group given: off, no_group_type.
	r, err := e.Evaluate("g", Input{DistinctID: "u"})
	require.NoError(t, err)
	require.False(t, r.Enabled)
	require.Equal(t, "no_group_type", r.Reason.Code)

	// Group given without its properties: inconclusive.
	_, err = e.Evaluate("g", Input{DistinctID: "u", Groups: map[string]string{"company": "acme"}})
	require.ErrorIs(t, err, ErrInconclusive)

	r, err = e.Evaluate("g", Input{DistinctID: "u", Groups: map[string]string{"company": "acme"},
		GroupProperties: map[string]map[string]any{"company": {"plan": "Enterprise"}}})
	require.NoError(t, err)
	require.True(t, r.Enabled)

	// Person properties do not stand in for group properties.
	_, err = e.Evaluate("g", Input{DistinctID: "u", Groups: map[string]string{"company": "acme"},
		PersonProperties: map[string]any{"plan": "enterprise"}})
	require.ErrorIs(t, err, ErrInconclusive)

	r, err = e.Evaluate("g-rollout", Input{Groups: map[string]string{"company": "acme"}})
	require.NoError(t, err)
	require.True(t, r.Enabled)
}

func TestFlags_GroupRolloutHashesTheGroupKey(t *testing.T) {
	// "simple-flag" at 45 % with the group key in place of the distinct id
	// gives PostHog's vectors.
	e := defs(t, arr{groupFlag("simple-flag", cond(45))}, mapping)
	for i, want := range []bool{false, true, true, false} {
		r, err := e.Evaluate("simple-flag", Input{DistinctID: "ignored", Groups: map[string]string{"company": "distinct_id_" + string(rune('0'+i))}})
		require.NoError(t, err)
		require.Equal(t, want, r.Enabled, i)
	}
}

// Mixed targeting: each condition may aggregate differently.
func TestFlags_PerConditionAggregation(t *testing.T) {
	groupCond := cond(100, gprop("plan", "exact", "enterprise"))
	groupCond["aggregation_group_type_index"] = 0
	e := defs(t, arr{flag("mixed", cond(100, prop("email", "icontains", "@posthog.com")), groupCond)}, mapping)

	r, err := e.Evaluate("mixed", Input{DistinctID: "u", PersonProperties: map[string]any{"email": "x@posthog.com"}})
	require.NoError(t, err)
	require.True(t, r.Enabled)

	// The person condition fails and the group condition is skipped.
	r, err = e.Evaluate("mixed", Input{DistinctID: "u", PersonProperties: map[string]any{"email": "x@gmail.com"}})
	require.NoError(t, err)
	require.False(t, r.Enabled)
	require.Equal(t, "no_condition_match", r.Reason.Code)
	require.Contains(t, r.Reason.Description, "group conditions not evaluated")

	r, err = e.Evaluate("mixed", Input{DistinctID: "u", PersonProperties: map[string]any{"email": "x@gmail.com"},
		Groups: map[string]string{"company": "acme"}, GroupProperties: map[string]map[string]any{"company": {"plan": "enterprise"}}})
	require.NoError(t, err)
	require.True(t, r.Enabled)
	require.Equal(t, intp(1), r.Reason.ConditionIndex)
}

// The service reads each filter from its own source: a person filter in a
// group condition reads person properties. posthog-node reads group
// properties for every filter of a group flag.
func TestServiceSemantics_PersonFilterInGroupFlagReadsPersonProperties(t *testing.T) {
	e := defs(t, arr{groupFlag("g", cond(100, prop("email", "icontains", "@posthog.com")))}, mapping)
	r, err := e.Evaluate("g", Input{DistinctID: "u", Groups: map[string]string{"company": "acme"},
		PersonProperties: map[string]any{"email": "x@posthog.com"},
		GroupProperties:  map[string]map[string]any{"company": {"email": "nobody"}}})
	require.NoError(t, err)
	require.True(t, r.Enabled)
}

// An aggregation index missing from group_type_mapping: the service cannot
// find a group key and reports no_group_type; posthog-node gives up.
func TestServiceSemantics_UnknownGroupTypeIndexIsNoGroupType(t *testing.T) {
	f := flag("g", cond(100))
	f["filters"].(obj)["aggregation_group_type_index"] = 7
	r, err := defs(t, arr{f}, mapping).Evaluate("g", Input{DistinctID: "u", Groups: map[string]string{"company": "acme"}})
	require.NoError(t, err)
	require.False(t, r.Enabled)
	require.Equal(t, "no_group_type", r.Reason.Code)
}

func TestFlags_DeviceIDBucketing(t *testing.T) {
	f := flag("simple-flag", cond(45))
	f["bucketing_identifier"] = "device_id"
	full := flag("full", cond(100))
	full["bucketing_identifier"] = "device_id"
	e := defs(t, arr{f, full})

	// Bucketed on the device id, not the distinct id.
	r, err := e.Evaluate("simple-flag", Input{DistinctID: "distinct_id_0", DeviceID: "distinct_id_1"})
	require.NoError(t, err)
	require.True(t, r.Enabled)
	r, err = e.Evaluate("simple-flag", Input{DistinctID: "distinct_id_1", PersonProperties: map[string]any{"$device_id": "distinct_id_0"}})
	require.NoError(t, err)
	require.False(t, r.Enabled)

	r, err = e.Evaluate("full", Input{DistinctID: "u", DeviceID: "d"})
	require.NoError(t, err)
	require.True(t, r.Enabled)
}

// Without a device id the service's get_match skips every person condition
// of a device_id flag (out_of_rollout_bound), even at 100 %, instead of
// bucketing on distinct_id; posthog-node gives up.
func TestServiceSemantics_DeviceIDMissingWithholdsRollout(t *testing.T) {
	f := flag("partial", cond(45))
	f["bucketing_identifier"] = "device_id"
	full := flag("full", cond(100))
	full["bucketing_identifier"] = "device_id"
	e := defs(t, arr{f, full})
	r, err := e.Evaluate("partial", Input{DistinctID: "distinct_id_1"})
	require.NoError(t, err)
	require.False(t, r.Enabled)
	require.Equal(t, "out_of_rollout_bound", r.Reason.Code)
	r, err = e.Evaluate("full", Input{DistinctID: "u"})
	require.NoError(t, err)
	require.False(t, r.Enabled)
	require.Equal(t, Reason{Code: "out_of_rollout_bound", ConditionIndex: intp(0), Description: "Out of rollout bound"}, r.Reason)
}

func TestFlags_KeysLenFlagAndEvaluateAll(t *testing.T) {
	e := defs(t, arr{flag("a", cond(100)), flag("b", cond(100, prop("x", "exact", 1))), flag("a", cond(0))})
	require.Equal(t, []string{"a", "b"}, e.Keys())
	require.Equal(t, 2, e.Len())
	_, ok := e.Flag("zzz")
	require.False(t, ok)

	results, incon := e.EvaluateAll(Input{DistinctID: "u"})
	require.Len(t, results, 1)
	require.False(t, results["a"].Enabled, "a later duplicate key replaces the earlier flag")
	require.ErrorIs(t, incon["b"], ErrInconclusive)
	require.Contains(t, incon["b"].Error(), `flag "b"`)
}

func TestCompile_RejectsNonObjectsButKeepsBrokenFlags(t *testing.T) {
	_, err := Compile([]byte(`[1,2]`))
	require.Error(t, err)
	// "unserved": filters the service cannot decode (see
	// TestServiceSemantics_DefinitionShapes); "bad": filters it decodes but
	// a flag field we cannot read.
	e, err := Compile([]byte(`{"flags":[{"key":"unserved","filters":{"groups":"nope"}},{"key":"bad","active":"yes","filters":{}},{"key":"gone","deleted":true,"active":true},{"nokey":1}]}`))
	require.NoError(t, err)
	require.Equal(t, []string{"bad"}, e.Keys())
	_, err = e.Evaluate("bad", Input{DistinctID: "u"})
	require.ErrorIs(t, err, ErrInconclusive)
	_, err = e.Evaluate("gone", Input{DistinctID: "u"})
	require.ErrorIs(t, err, ErrUnknownFlag)
}

func TestResult_Value(t *testing.T) {
	require.Equal(t, true, Result{Enabled: true}.Value())
	require.Equal(t, false, Result{}.Value())
	require.Equal(t, "v", Result{Enabled: true, Variant: "v"}.Value())
}

func TestPayload_Decoding(t *testing.T) {
	cases := map[string]string{
		`"{\"a\": [1, 2]}"`:  `{"a":[1,2]}`,
		`"plain text"`:       `"plain text"`,
		`"42"`:               `42`,
		`{"already":"json"}`: `{"already":"json"}`,
		`true`:               `true`,
	}
	for in, want := range cases {
		require.JSONEq(t, want, string(DecodePayload(json.RawMessage(in))), in)
	}
	require.Nil(t, DecodePayload(json.RawMessage(`""`)))
	require.Nil(t, DecodePayload(json.RawMessage(`null`)))
}

func TestEvaluator_ConcurrentUse(t *testing.T) {
	e := defs(t, arr{typicalFlag("a"), multivariateFlag("b", cond(100)), flag("c", cond(100, depProp("a", true)))})
	done := make(chan struct{})
	for range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 200 {
				_, _ = e.Evaluate("c", typicalInput)
				_, _ = e.EvaluateAll(typicalInput)
			}
		}()
	}
	for range 8 {
		<-done
	}
}

// PostHog's /flags serves a payload as stored; decoding loses the difference
// between a stored JSON string literal and plain text, so both forms are kept.
func TestResultKeepsThePayloadAsStored(t *testing.T) {
	defs := `{"flags":[{"id":1,"key":"f","active":true,"filters":{"groups":[{"properties":[],"rollout_percentage":100}],
		"payloads":{"true":"\"q\""}}}]}`
	ev, err := Compile([]byte(defs))
	require.NoError(t, err)
	res, err := ev.Evaluate("f", Input{DistinctID: "d"})
	require.NoError(t, err)
	require.Equal(t, `"\"q\""`, string(res.StoredPayload))
	require.Equal(t, `"q"`, string(res.Payload))
}
