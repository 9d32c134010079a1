package eval

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Holdout bucket hashes, sha1("holdout-<id>") on PostHog's 60-bit scale,
// computed independently: distinct_id_3 0.0139, distinct_id_7 0.2293,
// distinct_id_0 0.6561, globex 0.2275, "" (no group key) 0.9269.

func withHoldout(f obj, holdout any) obj {
	f["filters"].(obj)["holdout"] = holdout
	return f
}

// Holdouts follow the service's get_match / is_holdout_condition_match: before
// any condition, hashed on "holdout-<bucketing id>", variant "holdout-<id>",
// reason holdout_condition_value without a condition index, and the payload
// stored under the holdout variant. posthog-node's getHoldoutVariant agrees
// (same hash, same variant) for person flags.
func TestServiceSemantics_Holdouts(t *testing.T) {
	hd := func(id, pct any) obj { return obj{"id": id, "exclusion_percentage": pct} }
	mv := func(key string, h any) obj {
		f := multivariateFlag(key, cond(100, prop("plan", "exact", "pro")))
		f["filters"].(obj)["payloads"].(obj)["holdout-42"] = `{"held": true}`
		return withHoldout(f, h)
	}
	device := withHoldout(flag("device", cond(100)), hd(42, 30))
	device["bucketing_identifier"] = "device_id"
	group := withHoldout(groupFlag("group", cond(100)), hd(42, 30))
	groupAll := withHoldout(groupFlag("group-95", cond(100)), hd(42, 95))
	legacy := flag("legacy", cond(100, prop("plan", "exact", "pro")))
	legacy["filters"].(obj)["holdout_groups"] = arr{obj{"properties": arr{}, "rollout_percentage": 100, "variant": "holdout-1"}}
	dependent := flag("dependent", cond(100, depProp("mv-30", "holdout-42")))
	e := defs(t, arr{
		mv("mv-30", hd(42, 30)), mv("mv-10", hd(42, 10)), mv("mv-0", hd(42, 0)), mv("mv-100", hd(42, 100)),
		mv("mv-150", hd(42, 150)), mv("mv-null", nil),
		withHoldout(flag("bool-30", cond(100, prop("plan", "exact", "pro"))), hd(7, 30.5)),
		mv("bad-id", hd("42", 30)), mv("bad-float-id", hd(42.5, 30)), mv("no-pct", obj{"id": 42}),
		mv("null-pct", hd(42, nil)), mv("str-pct", hd(42, "30")), mv("not-object", "holdout-42"),
		device, group, groupAll, legacy, dependent,
	}, mapping)

	pro := map[string]any{"plan": "pro"}
	free := map[string]any{"plan": "free"}
	held := func(variant string) outcome { return outcome{value: variant} }
	for _, tc := range []struct {
		name, flag string
		in         Input
		want       outcome
		heldOut    bool
	}{
		{"in the 30 %", "mv-30", Input{DistinctID: "distinct_id_7", PersonProperties: free}, held("holdout-42"), true},
		{"held out even when no condition matches", "mv-30", Input{DistinctID: "distinct_id_3"}, held("holdout-42"), true},
		{"outside: conditions decide", "mv-30", Input{DistinctID: "distinct_id_0", PersonProperties: free}, off, false},
		{"outside: conditions decide (on)", "mv-30", Input{DistinctID: "distinct_id_0", PersonProperties: pro},
			outcome{value: matchingVariantFor(t, e, "mv-30", "distinct_id_0")}, false},
		{"outside the 10 %", "mv-10", Input{DistinctID: "distinct_id_7", PersonProperties: free}, off, false},
		{"inside the 10 %", "mv-10", Input{DistinctID: "distinct_id_3"}, held("holdout-42"), true},
		{"0 % holds nobody out", "mv-0", Input{DistinctID: "distinct_id_3", PersonProperties: free}, off, false},
		{"100 % holds everyone out, unhashed", "mv-100", Input{}, held("holdout-42"), true},
		{"over 100 % is clamped", "mv-150", Input{DistinctID: "distinct_id_0"}, held("holdout-42"), true},
		{"holdout: null is detached", "mv-null", Input{DistinctID: "distinct_id_3", PersonProperties: free}, off, false},
		{"boolean flag", "bool-30", Input{DistinctID: "distinct_id_7", PersonProperties: free}, held("holdout-7"), true},
		{"boolean flag outside", "bool-30", Input{DistinctID: "distinct_id_0", PersonProperties: pro}, on, false},
		// Shapes the service's serde rejects (Holdout {id: i64,
		// exclusion_percentage: f64}): its whole flag fails to decode and is
		// not served (FeatureFlagList::from_pg skips it), where posthog-node
		// would ignore the holdout.
		{"string id", "bad-id", Input{DistinctID: "distinct_id_0", PersonProperties: pro}, unserved, false},
		{"fractional id", "bad-float-id", Input{DistinctID: "distinct_id_0", PersonProperties: pro}, unserved, false},
		{"no exclusion_percentage", "no-pct", Input{DistinctID: "distinct_id_0", PersonProperties: pro}, unserved, false},
		{"null exclusion_percentage", "null-pct", Input{DistinctID: "distinct_id_0", PersonProperties: pro}, unserved, false},
		{"string exclusion_percentage", "str-pct", Input{DistinctID: "distinct_id_0", PersonProperties: pro}, unserved, false},
		{"holdout not an object", "not-object", Input{DistinctID: "distinct_id_0", PersonProperties: pro}, unserved, false},
		// Bucketing: the device id for device_id flags, the distinct id when
		// there is none (posthog-node gives up there), the group key for
		// group flags.
		{"device id bucketed", "device", Input{DistinctID: "distinct_id_0", DeviceID: "distinct_id_3"}, held("holdout-42"), true},
		{"device id from $device_id", "device", Input{DistinctID: "distinct_id_3", PersonProperties: map[string]any{"$device_id": "distinct_id_0"}}, on, false},
		{"no device id: distinct id", "device", Input{DistinctID: "distinct_id_3"}, held("holdout-42"), true},
		{"group key bucketed", "group", Input{DistinctID: "distinct_id_3", Groups: map[string]string{"company": "globex"}}, held("holdout-42"), true},
		{"group key outside", "group", Input{DistinctID: "distinct_id_3", Groups: map[string]string{"company": "acme"}}, on, false},
		{"no group: the empty key is hashed (0.927)", "group", Input{DistinctID: "distinct_id_3"}, off, false},
		{"no group, 95 %: held out", "group-95", Input{DistinctID: "distinct_id_3"}, held("holdout-42"), true},
		{"legacy holdout_groups are ignored", "legacy", Input{DistinctID: "distinct_id_3", PersonProperties: pro}, on, false},
		{"a dependency sees the holdout variant", "dependent", Input{DistinctID: "distinct_id_7", PersonProperties: free}, on, false},
		{"a dependency outside the holdout", "dependent", Input{DistinctID: "distinct_id_0", PersonProperties: free}, off, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := e.Evaluate(tc.flag, tc.in)
			requireOutcome(t, tc.want, r, err)
			if !tc.heldOut {
				if err == nil {
					require.NotEqual(t, "holdout_condition_value", r.Reason.Code)
				}
				return
			}
			require.Equal(t, Reason{Code: "holdout_condition_value", Description: "Holdout condition value"}, r.Reason)
			if r.Variant == "holdout-42" && tc.flag != "device" && tc.flag != "group" && tc.flag != "group-95" {
				require.JSONEq(t, `{"held":true}`, string(r.Payload))
			} else {
				require.Nil(t, r.Payload)
			}
		})
	}
}

func matchingVariantFor(t *testing.T, e *Evaluator, key, id string) string {
	t.Helper()
	v := matchingVariant(e.flags[key], id)
	require.NotEmpty(t, v)
	return v
}

// Early access: the service reads $feature_enrollment/<key> before anything
// else (get_match, feature_enrollment branch) and answers from it alone
// ("true" or true: on) with super_condition_value, condition 0 and the "true"
// payload. Without the property the service falls through to the conditions,
// but only because the person lacks it; a caller not passing it proves
// nothing, so that is inconclusive. posthog-node ignores enrollment.
func TestServiceSemantics_FeatureEnrollment(t *testing.T) {
	enrolled := func(key string, f obj) obj {
		f["filters"].(obj)["feature_enrollment"] = true
		f["filters"].(obj)["payloads"] = obj{"true": `{"beta": 1}`}
		return f
	}
	eec := enrolled("eec", flag("eec", cond(50)))
	eec["ensure_experience_continuity"] = true
	legacy := flag("legacy", cond(100, prop("plan", "exact", "pro")))
	legacy["filters"].(obj)["super_groups"] = arr{obj{"properties": arr{prop("$feature_enrollment/legacy", "exact", arr{"true"})}, "rollout_percentage": 100}}
	notEnrolled := flag("off-switch", cond(100))
	notEnrolled["filters"].(obj)["feature_enrollment"] = false
	e := defs(t, arr{enrolled("ea", flag("ea", cond(0))), eec, legacy, notEnrolled})

	super := Reason{Code: "super_condition_value", ConditionIndex: intp(0), Description: "Super condition value"}
	for _, tc := range []struct {
		name, flag string
		value      any // the enrollment property; absent when nil and !present
		present    bool
		want       outcome
	}{
		{"string true", "ea", "true", true, on},
		{"bool true", "ea", true, true, on},
		{"string false", "ea", "false", true, off},
		{"bool false", "ea", false, true, off},
		{"other casing is not true", "ea", "True", true, off},
		{"null", "ea", nil, true, off},
		{"number", "ea", 1.0, true, off},
		{"absent: PostHog may have it", "ea", nil, false, inco},
		{"decides before experience continuity", "eec", true, true, on},
		{"experience continuity without it", "eec", nil, false, inco},
		{"feature_enrollment false is no enrollment", "off-switch", nil, false, on},
	} {
		t.Run(tc.name, func(t *testing.T) {
			props := map[string]any{"plan": "free"}
			if tc.present {
				props["$feature_enrollment/"+tc.flag] = tc.value
			}
			r, err := e.Evaluate(tc.flag, Input{DistinctID: "u", PersonProperties: props})
			requireOutcome(t, tc.want, r, err)
			if tc.want.inconclusive || tc.flag == "off-switch" {
				return
			}
			require.Equal(t, super, r.Reason)
			// The service serves the "true" payload with the answer, on or off.
			require.JSONEq(t, `{"beta":1}`, string(r.Payload))
		})
	}

	// Legacy super_groups are no longer read by the service (nor by
	// posthog-node): the conditions decide, whatever the property says.
	for _, v := range []any{true, false} {
		r, err := e.Evaluate("legacy", Input{DistinctID: "u", PersonProperties: map[string]any{"plan": "pro", "$feature_enrollment/legacy": v}})
		require.NoError(t, err)
		require.Equal(t, "condition_match", r.Reason.Code)
	}
	_, err := e.Evaluate("legacy", Input{DistinctID: "u"})
	require.ErrorIs(t, err, ErrInconclusive, "plan is not given")
}

// An earlier condition undecided only for want of a property cannot change
// the answer once a later condition matches, when it would give the same
// variant (none for a boolean flag): on, with the same payload. The service
// (get_match) returns the first matching condition's override, else the
// hashed variant (get_matching_variant), so an undecided condition without
// an override, or whose override equals the hashed variant, gives what the
// later one gives. The condition index reported is the later one (the
// service, which has the property, may report the earlier). A differing
// override, early_exit flags that might have stopped on the undecided
// condition, and unknowns that can change the whole flag's answer on the
// server stay inconclusive.
func TestServiceSemantics_MatchPastAnUndecidedCondition(t *testing.T) {
	missing := prop("beta", "exact", true) // never given below
	groupCond := cond(100, gprop("plan", "exact", "enterprise"))
	groupCond["aggregation_group_type_index"] = 0
	earlyExit := func(f obj) obj { f["filters"].(obj)["early_exit"] = true; return f }
	withPayload := func(f obj) obj { f["filters"].(obj)["payloads"] = obj{"true": `{"on": 1}`}; return f }
	withVariant := func(c obj, v string) obj { c["variant"] = v; return c }
	override := withVariant(cond(100, missing), "test")
	e := defs(t, arr{
		withPayload(flag("bool", cond(100, missing), cond(100, prop("plan", "exact", "pro")))),
		flag("bool-3", cond(100, prop("plan", "exact", "team")), cond(100, missing), cond(30, missing), cond(100)),
		flag("group-first", groupCond, cond(100, prop("plan", "exact", "pro"))),
		multivariateFlag("mv", cond(100, missing), cond(100, prop("plan", "exact", "pro"))),
		multivariateFlag("mv-override", override, cond(100)),
		multivariateFlag("mv-two-overrides", override, withVariant(cond(100, missing), "control"), cond(100)),
		// "simple-flag" at 45 %: distinct_id_1 is inside, distinct_id_0 outside.
		earlyExit(flag("simple-flag", cond(45, missing), cond(100))),
		flag("cohort-first", cond(100, cohortProp(99, "in")), cond(100)),
		flag("mixed-unknowns", cond(100, missing, cohortProp(99, "in")), cond(100)),
		flag("dep-missing", cond(100, depProp("nowhere", true)), cond(100)),
		flag("dep-undecided", cond(100, depProp("bool-undecided", true)), cond(100)),
		flag("bool-undecided", cond(100, missing)),
		flag("nothing-after", cond(100, missing), cond(100, prop("plan", "exact", "enterprise"))),
	}, mapping)
	pro := map[string]any{"plan": "pro"}

	for _, tc := range []struct {
		name, flag string
		in         Input
		want       outcome
		index      int
	}{
		{"missing property, then a match", "bool", Input{DistinctID: "u", PersonProperties: pro}, on, 1},
		{"several undecided, one rolled out", "bool-3", Input{DistinctID: "u", PersonProperties: pro}, on, 3},
		{"group properties not given, then a match", "group-first",
			Input{DistinctID: "u", PersonProperties: pro, Groups: map[string]string{"company": "acme"}}, on, 1},
		{"no later match", "nothing-after", Input{DistinctID: "u", PersonProperties: pro}, inco, 0},
		// "mv" hashes u to test (0.692) in both conditions.
		{"multivariate", "mv", Input{DistinctID: "u", PersonProperties: pro}, outcome{value: "test"}, 1},
		// The override "test" equals u's hashed variant (0.620): decided.
		{"multivariate, override equal to the hashed variant", "mv-override", Input{DistinctID: "u"}, outcome{value: "test"}, 1},
		// user-1 hashes to control (0.157): the override could win.
		{"multivariate, override differing from the hashed variant", "mv-override", Input{DistinctID: "user-1"}, inco, 0},
		{"multivariate, undecided overrides that differ", "mv-two-overrides", Input{DistinctID: "u"}, inco, 0},
		// early_exit: an undecided condition inside its rollout either matches
		// or falls through; outside it, matching properties would end
		// evaluation with off.
		{"early_exit, undecided in rollout", "simple-flag", Input{DistinctID: "distinct_id_1"}, on, 1},
		{"early_exit, undecided rolled out", "simple-flag", Input{DistinctID: "distinct_id_0"}, inco, 0},
		// A cohort missing from the definitions (static, or deleted) or a
		// missing flag dependency can change the whole flag on the server.
		{"unknown cohort first", "cohort-first", Input{DistinctID: "u"}, inco, 0},
		{"missing property and unknown cohort", "mixed-unknowns", Input{DistinctID: "u"}, inco, 0},
		{"dependency not in the definitions", "dep-missing", Input{DistinctID: "u"}, inco, 0},
		{"dependency undecided for a missing property", "dep-undecided", Input{DistinctID: "u"}, on, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := e.Evaluate(tc.flag, tc.in)
			requireOutcome(t, tc.want, r, err)
			if tc.want.inconclusive {
				return
			}
			require.Equal(t, intp(tc.index), r.Reason.ConditionIndex)
			require.Equal(t, "condition_match", r.Reason.Code)
			if tc.flag == "bool" {
				require.JSONEq(t, `{"on":1}`, string(r.Payload))
			}
		})
	}
}

// The service's /flags leaves inactive flags out (fetch_and_filter puts them
// in filtered_out_flag_ids, evaluate_flags_in_level skips them) and seeds them
// as false for flag dependencies. posthog-node's local getAllFlags lists them
// as false instead; its remote getAllFlags, like PostHog, does not.
func TestServiceSemantics_InactiveFlagsLeftOutOfEvaluateAll(t *testing.T) {
	inactive := flag("inactive", cond(100))
	inactive["active"] = false
	e := defs(t, arr{
		inactive,
		flag("on", cond(100)),
		flag("needs-inactive-off", cond(100, depProp("inactive", false))),
		flag("needs-inactive-on", cond(100, depProp("inactive", true))),
	})
	results, incon := e.EvaluateAll(Input{DistinctID: "u"})
	require.Empty(t, incon)
	require.NotContains(t, results, "inactive")
	for k, want := range map[string]bool{"on": true, "needs-inactive-off": true, "needs-inactive-on": false} {
		require.Contains(t, results, k)
		require.Equal(t, want, results[k].Enabled, k)
	}
	// Asked for by key, an inactive flag is off, as the SDKs' get calls say.
	r, err := e.Evaluate("inactive", Input{DistinctID: "u"})
	require.NoError(t, err)
	require.Equal(t, Result{Key: "inactive", ID: 1, Version: 3,
		Reason: Reason{Code: "flag_disabled", Description: "Feature flag is disabled"}}, r)
	info, ok := e.Flag("inactive")
	require.True(t, ok)
	require.False(t, info.Active)
}
