package eval

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func cohortProp(id any, op string) obj {
	return obj{"key": "id", "type": "cohort", "value": id, "operator": op}
}

func negated(p obj) obj {
	q := obj{}
	for k, v := range p {
		q[k] = v
	}
	q["negation"] = true
	return q
}

var cohorts = obj{"cohorts": obj{
	// (country is US and age >= 18) or email ends with @posthog.com
	"1": obj{"type": "OR", "values": arr{
		obj{"type": "AND", "values": arr{prop("country", "exact", "US"), prop("age", "gte", 18)}},
		obj{"type": "AND", "values": arr{prop("email", "ends_with", "@posthog.com")}},
	}},
	// in cohort 1 and not a bot
	"2": obj{"type": "AND", "values": arr{
		obj{"type": "AND", "values": arr{cohortProp(1, "in"), negated(prop("bot", "exact", true))}},
	}},
	// refers to a static cohort (not shipped)
	"3":         obj{"type": "OR", "values": arr{obj{"type": "OR", "values": arr{cohortProp(99, "in")}}}},
	"empty-or":  obj{"type": "OR", "values": arr{}},
	"empty-and": obj{"type": "AND", "values": arr{}},
	// stored-cohort shape: {"properties": {...}}
	"4": obj{"properties": obj{"type": "OR", "values": arr{obj{"type": "OR", "values": arr{prop("plan", "exact", "pro")}}}}},
	// negated nested cohort inside an OR: negated there too (evaluate_cohort_filter)
	"5":      obj{"type": "OR", "values": arr{obj{"type": "OR", "values": arr{negated(cohortProp(4, "in"))}}}},
	"6":      obj{"type": "OR", "values": arr{obj{"type": "AND", "values": arr{negated(cohortProp(4, "in"))}}}},
	"cyclic": obj{"type": "OR", "values": arr{obj{"type": "OR", "values": arr{cohortProp("cyclic", "in")}}}},
}}

func TestCohorts(t *testing.T) {
	e := defs(t, arr{
		flag("c1", cond(100, cohortProp(1, "in"))),
		flag("c2", cond(100, cohortProp(2, "in"))),
		flag("not-c1", cond(100, cohortProp("1", "not_in"))),
		flag("static", cond(100, cohortProp(99, "in"))),
		flag("c3", cond(100, cohortProp(3, "in"))),
		flag("empty-or", cond(100, cohortProp("empty-or", "in"))),
		flag("empty-and", cond(100, cohortProp("empty-and", "in"))),
		flag("c4", cond(100, cohortProp(4, "in"))),
		flag("c5", cond(100, cohortProp(5, "in"))),
		flag("c6", cond(100, cohortProp(6, "in"))),
		flag("cyclic", cond(100, cohortProp("cyclic", "in"))),
	}, cohorts)
	cases := []struct {
		flag  string
		props map[string]any
		want  outcome
	}{
		{"c1", map[string]any{"country": "us", "age": 30}, on},
		{"c1", map[string]any{"country": "us", "age": 12, "email": "a@posthog.com"}, on},
		{"c1", map[string]any{"country": "us", "age": 12, "email": "a@gmail.com"}, off},
		// age unknown, but the second group matches: the OR is decided.
		{"c1", map[string]any{"country": "us", "email": "a@posthog.com"}, on},
		// age unknown and the second group fails: undecided.
		{"c1", map[string]any{"country": "us", "email": "a@gmail.com"}, inco},
		// country is not US: the first group fails whatever age is.
		{"c1", map[string]any{"country": "de", "email": "a@gmail.com"}, off},
		{"not-c1", map[string]any{"country": "de", "email": "a@gmail.com"}, on},
		{"c2", map[string]any{"email": "a@posthog.com", "bot": false}, on},
		{"c2", map[string]any{"email": "a@posthog.com", "bot": true}, off},
		{"c2", map[string]any{"email": "a@posthog.com"}, inco},
		{"static", map[string]any{}, inco},
		{"c3", map[string]any{}, inco},
		{"empty-and", map[string]any{}, on},
		{"c4", map[string]any{"plan": "pro"}, on},
		{"c5", map[string]any{"plan": "pro"}, off},
		{"c5", map[string]any{"plan": "free"}, on},
		{"c6", map[string]any{"plan": "pro"}, off},
		{"cyclic", map[string]any{}, inco},
	}
	for _, c := range cases {
		r, err := e.Evaluate(c.flag, Input{DistinctID: "u", PersonProperties: c.props})
		requireOutcome(t, c.want, r, err, c.flag, c.props)
	}
}

// An empty OR group matches nothing in the service (its loop finds no true
// member); posthog-node treats every empty group as a match.
func TestServiceSemantics_EmptyOrCohortDoesNotMatch(t *testing.T) {
	e := defs(t, arr{flag("f", cond(100, cohortProp("empty-or", "in")))}, cohorts)
	r, err := e.Evaluate("f", Input{DistinctID: "u"})
	require.NoError(t, err)
	require.False(t, r.Enabled)
}

// Cohorts are about people: in a group flag the service matches them against
// person properties.
func TestServiceSemantics_CohortInGroupFlagUsesPersonProperties(t *testing.T) {
	e := defs(t, arr{groupFlag("g", cond(100, cohortProp(4, "in")))}, mapping, cohorts)
	r, err := e.Evaluate("g", Input{DistinctID: "u", Groups: map[string]string{"company": "acme"},
		PersonProperties: map[string]any{"plan": "pro"}, GroupProperties: map[string]map[string]any{"company": {"plan": "free"}}})
	require.NoError(t, err)
	require.True(t, r.Enabled)
}

func depProp(key string, value any) obj {
	return obj{"key": key, "type": "flag", "value": value, "operator": "flag_evaluates_to", "dependency_chain": arr{key}}
}

func TestDependencies(t *testing.T) {
	base := flag("base", cond(100, prop("plan", "exact", "pro")))
	mv := multivariateFlag("mv", cond(100))
	inactive := flag("inactive", cond(100))
	inactive["active"] = false
	byID := flag("by-id", cond(100, depProp("77", true)))
	target := flag("target", cond(100))
	target["id"] = 77
	e := defs(t, arr{
		base, mv, inactive, byID, target,
		flag("needs-base", cond(100, depProp("base", true))),
		flag("needs-not-base", cond(100, depProp("base", false))),
		flag("needs-variant", cond(100, depProp("mv", matchingVariant(compileFlag([]byte(mustJSON(t, mv)), nil, false), "u")))),
		flag("needs-other-variant", cond(100, depProp("mv", "nope"))),
		flag("needs-mv-true", cond(100, depProp("mv", true))),
		flag("needs-inactive-false", cond(100, depProp("inactive", false))),
		flag("needs-missing", cond(100, depProp("missing", true))),
		flag("cycle-a", cond(100, depProp("cycle-b", true))),
		flag("cycle-b", cond(100, depProp("cycle-a", true))),
		flag("chain", cond(100, depProp("needs-base", true))),
	})
	pro := map[string]any{"plan": "pro"}
	cases := []struct {
		flag  string
		props map[string]any
		want  outcome
	}{
		{"needs-base", pro, on},
		{"needs-base", map[string]any{"plan": "free"}, off},
		{"needs-base", map[string]any{}, inco}, // base is undecided
		{"needs-not-base", map[string]any{"plan": "free"}, on},
		{"needs-variant", nil, on},
		{"needs-other-variant", nil, off},
		{"needs-mv-true", nil, on}, // true means any variant
		{"needs-inactive-false", nil, on},
		{"needs-missing", nil, inco},
		{"cycle-a", nil, inco},
		{"chain", pro, on},
		{"by-id", nil, on},
	}
	for _, c := range cases {
		r, err := e.Evaluate(c.flag, Input{DistinctID: "u", PersonProperties: c.props})
		requireOutcome(t, c.want, r, err, c.flag)
	}

	results, incon := e.EvaluateAll(Input{DistinctID: "u", PersonProperties: pro})
	require.True(t, results["chain"].Enabled)
	require.Contains(t, incon, "cycle-a")
	require.Contains(t, incon, "cycle-b")
	require.Contains(t, incon, "needs-missing")
}
