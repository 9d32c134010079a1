package eval

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// Pins for issue 10: each test names the function of PostHog's flags service
// (rust/feature-flags) whose answer it reproduces, with the exact inputs.

// flag_matching_utils.rs fetch_and_locally_cache_all_relevant_properties
// always adds the request's distinct_id to the person properties; request
// properties then override (get_person_properties), so a supplied
// person_properties.distinct_id wins. Decidable from the request alone.
func TestServiceSemantics_DistinctIDIsAPersonProperty(t *testing.T) {
	e := defs(t, arr{
		flag("ids", cond(100, prop("distinct_id", "icontains", "user"))),
		flag("not-set", cond(100, prop("distinct_id", "is_not_set", ""))),
		flag("in-cohort", cond(100, cohortProp(1, "in"))),
	}, obj{"cohorts": obj{"1": obj{"type": "AND", "values": arr{prop("distinct_id", "regex", "^user-[0-9]+$")}}}})
	for _, tc := range []struct {
		name, flag string
		in         Input
		want       outcome
	}{
		{"matching id", "ids", Input{DistinctID: "User-42"}, on},
		{"other id", "ids", Input{DistinctID: "bot-1"}, off},
		{"a supplied distinct_id wins", "ids", Input{DistinctID: "user-42", PersonProperties: map[string]any{"distinct_id": "bot-1"}}, off},
		{"always set", "not-set", Input{DistinctID: "user-42"}, off},
		{"in a cohort", "in-cohort", Input{DistinctID: "user-42"}, on},
		{"not in the cohort", "in-cohort", Input{DistinctID: "user-x"}, off},
	} {
		r, err := e.Evaluate(tc.flag, tc.in)
		requireOutcome(t, tc.want, r, err, tc.name)
	}
}

// handler/properties.rs get_group_property_overrides sets $group_key to the
// request's group key in each requested group's properties, overwriting a
// supplied one.
func TestServiceSemantics_GroupKeyIsAGroupProperty(t *testing.T) {
	e := defs(t, arr{
		groupFlag("by-key", cond(100, gprop("$group_key", "exact", "acme"))),
		flag("person-by-key", cond(100, gprop("$group_key", "starts_with", "ac"))),
	}, mapping)
	acme := map[string]string{"company": "acme"}
	for _, tc := range []struct {
		name, flag string
		in         Input
		want       outcome
	}{
		{"group key matches", "by-key", Input{DistinctID: "u", Groups: acme}, on},
		{"other group key", "by-key", Input{DistinctID: "u", Groups: map[string]string{"company": "globex"}}, off},
		{"a supplied $group_key is overwritten", "by-key", Input{DistinctID: "u", Groups: map[string]string{"company": "globex"},
			GroupProperties: map[string]map[string]any{"company": {"$group_key": "acme"}}}, off},
		{"a group filter on a person flag", "person-by-key", Input{DistinctID: "u", Groups: acme}, on},
	} {
		r, err := e.Evaluate(tc.flag, tc.in)
		requireOutcome(t, tc.want, r, err, tc.name)
	}
}

// flag_matching.rs get_hash: an empty hashed identifier is 0.0 without SHA-1,
// so check_rollout includes it at any rollout (0.0 <= 0 %) and
// get_matching_variant picks the first variant with a share;
// get_holdout_hash hashes "holdout-" alone (0.927). flag_request.rs
// extract_distinct_id accepts "".
func TestServiceSemantics_EmptyDistinctID(t *testing.T) {
	mv := flag("mv", cond(100))
	mv["filters"].(obj)["multivariate"] = obj{"variants": arr{
		obj{"key": "none", "rollout_percentage": 0}, obj{"key": "first", "rollout_percentage": 50}, obj{"key": "second", "rollout_percentage": 50}}}
	e := defs(t, arr{
		flag("zero", cond(0)),
		flag("half", cond(50, prop("plan", "exact", "pro"))),
		mv,
		withHoldout(flag("held-95", cond(100)), obj{"id": 3, "exclusion_percentage": 95}),
		withHoldout(flag("held-90", cond(100)), obj{"id": 3, "exclusion_percentage": 90}),
	})
	for _, tc := range []struct {
		flag string
		in   Input
		want outcome
	}{
		{"zero", Input{}, on},
		{"half", Input{PersonProperties: map[string]any{"plan": "pro"}}, on},
		{"half", Input{PersonProperties: map[string]any{"plan": "free"}}, off},
		{"mv", Input{}, outcome{value: "first"}},
		{"held-95", Input{}, outcome{value: "holdout-3"}},
		{"held-90", Input{}, on},
	} {
		r, err := e.Evaluate(tc.flag, tc.in)
		requireOutcome(t, tc.want, r, err, tc.flag)
	}
}

// flag_request.rs extract_distinct_id: longer than MAX_DISTINCT_ID_LEN (200)
// bytes, the id keeps its first 200 characters.
func TestServiceSemantics_DistinctIDCutAt200Characters(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{strings.Repeat("a", 250), strings.Repeat("a", 200)},
		{strings.Repeat("é", 250), strings.Repeat("é", 200)}, // 500 bytes
		{strings.Repeat("é", 150), strings.Repeat("é", 150)}, // 300 bytes, 150 characters: kept
		{strings.Repeat("a", 199) + "日本", strings.Repeat("a", 199) + "日"},
		{"", ""},
	} {
		got := TruncateDistinctID(tc.in)
		require.Equal(t, tc.want, got)
		require.True(t, utf8.ValidString(got))
	}
}

// property_matching.rs match_property: exact/is_not lower-case both sides
// with Rust's to_lowercase (full Unicode mapping, Final_Sigma), while
// icontains/starts_with/ends_with use to_ascii_lowercase.
func TestServiceSemantics_CaseFolding(t *testing.T) {
	for _, tc := range []struct {
		op, filter, person string
		want               bool
	}{
		{"exact", "istanbul", "İstanbul", false}, // İ lowers to i + U+0307
		{"exact", "i\u0307stanbul", "İstanbul", true},
		{"is_not", "istanbul", "İstanbul", true},
		{"exact", "οδος", "ΟΔΟΣ", true},   // final sigma: ς
		{"exact", "οδοσ", "ΟΔΟΣ", false},  // not σ at the end of a word
		{"exact", "σα", "ΣΑ", true},       // σ inside a word
		{"exact", "ärger", "ÄRGER", true}, // plain simple mappings
		{"icontains", "é", "CAFÉ", false}, // ASCII-only: É stays É
		{"icontains", "caf", "CAFÉ", true},
		{"starts_with", "ä", "Ärger", false},
		{"ends_with", "GER", "Ärger", true},
		// is_truthy_or_falsy lower-cases too: "falſe" (long s) is no boolean,
		// so it is compared as text.
		{"exact", "falſe", "banana", false},
		{"exact", "falſe", "false", false},
		{"exact", "FALSE", "banana", true}, // a boolean filter: "banana" is falsy
	} {
		e := defs(t, arr{flag("f", cond(100, prop("p", tc.op, tc.filter)))})
		r, err := e.Evaluate("f", Input{DistinctID: "u", PersonProperties: map[string]any{"p": tc.person}})
		require.NoError(t, err)
		require.Equal(t, tc.want, r.Enabled, "%q %s %q", tc.person, tc.op, tc.filter)
	}
}

// property_matching.rs parse_date_string_in_tz falls back to dateparser::parse
// (UTC here), which reads US dates ("06/14/2024", month first) and date-only
// shapes at the current time of day (12:00 in these tests), for the filter and
// for the person's value (determine_parsed_date_for_property_matching, which
// reads the person's value first, so of two such dates on the same day the
// person's is the earlier). A filter value that is not a string is false
// whatever the person's value.
func TestServiceSemantics_DateparserDates(t *testing.T) {
	for _, tc := range []struct {
		person any
		op     string
		filter any
		want   outcome
	}{
		{"06/14/2024", "is_date_after", "2024-06-14", on}, // 12:00 > midnight
		{"06/14/2024", "is_date_before", "2024-06-14T12:00:01Z", on},
		{"06/14/2024", "is_date_after", "2024-06-14T11:59:59Z", on},
		{"06/14/2024", "is_date_before", "06/15/2024", on},
		{"6/14/24", "is_date_after", "06/13/2024", on}, // two-digit year: 2024
		{"06/14/2024", "is_date_exact", "06/14/2024", off},
		{"06/14/2024", "is_date_before", "06/14/2024", on},
		{"06/14/2024", "is_date_after", "06/14/2024", off},
		{"2024-06-14T12:30:00Z", "is_date_before", "06/14/2024 13:00", on},
		{"2024-06-14T13:30:00Z", "is_date_before", "06/14/2024 1:00 PM", off},
		{"2024-06-14T00:30:00Z", "is_date_before", "06/14/2024 12:45 AM", on},
		{"2024-06-14", "is_date_after", "2024/06/13", on},
		{"2024-06-15", "is_date_after", "1718323200", on},   // ten digits: Unix seconds (2024-06-14)
		{"13/45/2024", "is_date_before", "2030-01-01", off}, // no such date: no date
		{"2024-01-01", "is_date_before", 1718000000, off},
		{"garbage 42", "is_date_before", 1718000000, off}, // a numeric filter decides alone
		{"2024-01-01", "is_date_before", "May 25, 2024", on},
	} {
		e := defs(t, arr{flag("f", cond(100, prop("d", tc.op, tc.filter)))})
		r, err := e.Evaluate("f", Input{DistinctID: "u", PersonProperties: map[string]any{"d": tc.person}})
		requireOutcome(t, tc.want, r, err, "%v %s %v", tc.person, tc.op, tc.filter)
	}
}

// flag_matching.rs PropertyContext::resolve_for_filter and
// get_group_properties: a group filter reads the group's stored properties
// merged with the request's, and properties are stored only for groups the
// request names (prepare_group_data). For a group type index the project's
// group_type_mapping lacks, or a group the request gives no key for, the
// request's properties (or none) are all there is, and match_property
// (partial_props false) finds an absent key false, true for the negative
// operators.
func TestServiceSemantics_GroupFilterWithoutStoredGroup(t *testing.T) {
	unmapped := func(key, op string, value any) obj {
		p := gprop(key, op, value)
		p["group_type_index"] = 5
		return p
	}
	e := defs(t, arr{
		flag("unmapped-exact", cond(100, unmapped("plan", "exact", "pro"))),
		flag("unmapped-is-not", cond(100, unmapped("plan", "is_not", "pro"))),
		flag("unmapped-not-set", cond(100, unmapped("plan", "is_not_set", ""))),
		flag("company-plan", cond(100, gprop("plan", "exact", "enterprise"))),
		flag("company-seats", cond(100, gprop("seats", "gt", 10))),
	}, mapping)
	given := map[string]map[string]any{"company": {"plan": "enterprise"}}
	for _, tc := range []struct {
		name, flag string
		in         Input
		want       outcome
	}{
		{"unmapped: exact is false", "unmapped-exact", Input{DistinctID: "u"}, off},
		{"unmapped: is_not is true", "unmapped-is-not", Input{DistinctID: "u"}, on},
		{"unmapped: is_not_set is true", "unmapped-not-set", Input{DistinctID: "u"}, on},
		{"no group key: given properties decide", "company-plan", Input{DistinctID: "u", GroupProperties: given}, on},
		{"no group key: an absent one is absent", "company-seats", Input{DistinctID: "u", GroupProperties: given}, off},
		{"no group key, no properties", "company-plan", Input{DistinctID: "u"}, off},
		// With a key PostHog may have the group stored: ask it.
		{"group key: a missing property is unknown", "company-seats",
			Input{DistinctID: "u", Groups: map[string]string{"company": "acme"}, GroupProperties: given}, inco},
	} {
		r, err := e.Evaluate(tc.flag, tc.in)
		requireOutcome(t, tc.want, r, err, tc.name)
	}
}

// flag_matching_utils.rs match_flag_value_to_flag_filter: a flag filter
// whose operator is not flag_evaluates_to is false, whatever the dependency.
func TestServiceSemantics_FlagDependencyOperator(t *testing.T) {
	exact := depProp("dep", true)
	exact["operator"] = "exact"
	none := depProp("dep", true)
	delete(none, "operator")
	e := defs(t, arr{
		flag("dep", cond(100)),
		flag("exact", cond(100, exact)),
		flag("none", cond(100, none)),
		flag("missing-dep", cond(100, obj{"key": "nowhere", "type": "flag", "value": true, "operator": "exact"})),
	})
	for _, k := range []string{"exact", "none", "missing-dep"} {
		r, err := e.Evaluate(k, Input{DistinctID: "u"})
		requireOutcome(t, off, r, err, k)
	}
}

// flag_models.rs FlagFilters is decoded with serde, and
// feature_flag_list.rs FeatureFlagList::from_pg skips a flag whose filters do
// not decode: a variant without rollout_percentage, a property filter
// without type, ... are never served. payloads is Option<Value>: any value is
// accepted, and only an object holds payloads.
func TestServiceSemantics_DefinitionShapes(t *testing.T) {
	mvWith := func(key string, variant obj) obj {
		f := flag(key, cond(100))
		f["filters"].(obj)["multivariate"] = obj{"variants": arr{variant}}
		return f
	}
	withFilters := func(key string, mutate func(obj)) obj {
		f := flag(key, cond(100, prop("plan", "exact", "pro")))
		mutate(f["filters"].(obj))
		return f
	}
	untyped := prop("plan", "exact", "pro")
	delete(untyped, "type")
	emptyType := prop("plan", "exact", "pro")
	emptyType["type"] = ""
	eventType := prop("plan", "exact", "pro")
	eventType["type"] = "event"
	numericKey := prop("plan", "exact", "pro")
	numericKey["key"] = 7
	e := defs(t, arr{
		mvWith("variant-no-rollout", obj{"key": "a"}),
		mvWith("variant-null-rollout", obj{"key": "a", "rollout_percentage": nil}),
		mvWith("variant-string-rollout", obj{"key": "a", "rollout_percentage": "100"}),
		mvWith("variant-no-key", obj{"rollout_percentage": 100}),
		mvWith("variant-ok", obj{"key": "a", "rollout_percentage": 100, "name": nil}),
		flag("untyped", cond(100, untyped)),
		flag("empty-type", cond(100, emptyType)),
		flag("numeric-key", cond(100, numericKey)),
		withFilters("groups-null", func(f obj) { f["groups"] = nil }),
		withFilters("rollout-string", func(f obj) { f["groups"].(arr)[0].(obj)["rollout_percentage"] = "100" }),
		withFilters("aggregation-float", func(f obj) { f["aggregation_group_type_index"] = 0.5 }),
		withFilters("variants-null", func(f obj) { f["multivariate"] = obj{"variants": nil} }),
		withFilters("payloads-string", func(f obj) { f["payloads"] = "not an object" }),
		withFilters("payloads-list", func(f obj) { f["payloads"] = arr{1, 2} }),
		withFilters("multivariate-null", func(f obj) { f["multivariate"] = nil }),
		withFilters("super-groups-untyped", func(f obj) { f["super_groups"] = arr{obj{"properties": arr{untyped}}} }),
		// A type the service does not know might be one a newer service
		// knows: not dropped, left to PostHog.
		flag("event-type", cond(100, eventType)),
	})
	pro := Input{DistinctID: "u", PersonProperties: map[string]any{"plan": "pro"}}
	for _, tc := range []struct {
		flag string
		want outcome
	}{
		{"variant-no-rollout", unserved},
		{"variant-null-rollout", unserved},
		{"variant-string-rollout", unserved},
		{"variant-no-key", unserved},
		{"variant-ok", outcome{value: "a"}},
		{"untyped", unserved},
		{"empty-type", unserved},
		{"numeric-key", unserved},
		{"groups-null", unserved},
		{"rollout-string", unserved},
		{"aggregation-float", unserved},
		{"variants-null", unserved},
		{"payloads-string", on},
		{"payloads-list", on},
		{"multivariate-null", on},
		{"super-groups-untyped", unserved},
		{"event-type", inco},
	} {
		r, err := e.Evaluate(tc.flag, pro)
		requireOutcome(t, tc.want, r, err, tc.flag)
		if tc.want == on {
			require.Nil(t, r.Payload, tc.flag)
		}
		_, known := e.Flag(tc.flag)
		require.Equal(t, !tc.want.unserved, known, tc.flag)
	}
	results, incon := e.EvaluateAll(pro)
	require.NotContains(t, results, "untyped")
	require.NotContains(t, incon, "untyped")
}

// cohort_operations.rs apply_cohort_membership_logic: no operator means in;
// in and not_in test membership; any other operator, exact included, is
// false. The same holds for a cohort nested in a cohort.
func TestServiceSemantics_CohortOperators(t *testing.T) {
	noOp := cohortProp(1, "in")
	delete(noOp, "operator")
	e := defs(t, arr{
		flag("in", cond(100, cohortProp(1, "in"))),
		flag("no-operator", cond(100, noOp)),
		flag("not-in", cond(100, cohortProp(1, "not_in"))),
		flag("exact", cond(100, cohortProp(1, "exact"))),
		flag("gt", cond(100, cohortProp(1, "gt"))),
		flag("nested-exact", cond(100, cohortProp(2, "in"))),
	}, obj{"cohorts": obj{
		"1": obj{"type": "AND", "values": arr{prop("plan", "exact", "pro")}},
		"2": obj{"type": "OR", "values": arr{cohortProp(1, "exact")}},
	}})
	pro := map[string]any{"plan": "pro"}
	for _, tc := range []struct {
		flag string
		want outcome
	}{
		{"in", on}, {"no-operator", on}, {"not-in", off}, {"exact", off}, {"gt", off}, {"nested-exact", off},
	} {
		r, err := e.Evaluate(tc.flag, Input{DistinctID: "u", PersonProperties: pro})
		requireOutcome(t, tc.want, r, err, tc.flag)
	}
}

// cohort_operations.rs evaluate_cohort_filter applies negation to a nested
// cohort in OR groups as in AND groups.
func TestServiceSemantics_NestedCohortNegationInOr(t *testing.T) {
	e := defs(t, arr{flag("f", cond(100, cohortProp(2, "in")))}, obj{"cohorts": obj{
		"1": obj{"type": "AND", "values": arr{prop("plan", "exact", "pro")}},
		"2": obj{"type": "OR", "values": arr{obj{"type": "OR", "values": arr{negated(cohortProp(1, "in"))}}}},
	}})
	for plan, want := range map[string]outcome{"pro": off, "free": on} {
		r, err := e.Evaluate("f", Input{DistinctID: "u", PersonProperties: map[string]any{"plan": plan}})
		requireOutcome(t, want, r, err, plan)
	}
}

// property_matching.rs matches regex filters with fancy_regex, whose \d \w \s
// classes are Unicode (Nd; alphabetic, marks, digits, connectors; White_Space,
// including \v). \b and \B are Unicode too, which RE2 cannot express: on
// non-ASCII text such a pattern is left to PostHog.
func TestServiceSemantics_UnicodeRegexClasses(t *testing.T) {
	for _, tc := range []struct {
		pattern, value string
		want           outcome
	}{
		{`^\d+$`, "٣٤٥", on}, // Arabic-Indic digits
		{`^\d+$`, "12", on},
		{`^[\d]+$`, "٣", on},
		{`^[^\d]+$`, "٣", off},
		{`^\D$`, "٣", off},
		{`^\w+$`, "café", on},
		{`^\w+$`, "Ⓐ", on},
		{`^\W+$`, "é", off},
		{`^a\sb$`, "a\u00a0b", on},
		{`^\s$`, "\v", on},
		{`^\S$`, "\u3000", off},
		{`\bfoo\b`, "a foo b", on},
		{`\bcafé\b`, "le café noir", inco},
		{`^[a\W]+$`, "é", inco},
		{`^\p{Greek}+$`, "αβ", on},
	} {
		e := defs(t, arr{flag("f", cond(100, prop("p", "regex", tc.pattern)))})
		r, err := e.Evaluate("f", Input{DistinctID: "u", PersonProperties: map[string]any{"p": tc.value}})
		requireOutcome(t, tc.want, r, err, "%q on %q", tc.pattern, tc.value)
	}
}

// property_matching_version 2 in the definitions selects explicit exact
// matching; absent, 1 and other versions keep the legacy rules. The rows are
// posthog-js core's matchFeatureFlagProperty table (filter value, person
// value, legacy answer, explicit answer), which posthog-go, -php and -elixir
// follow; is_not is the negation of each.
func TestServiceSemantics_PropertyMatchingVersion2(t *testing.T) {
	rows := []struct {
		filter, person   any
		legacy, version2 bool
	}{
		{false, "banana", true, false},
		{false, 0.0, true, false},
		{arr{"true", "false"}, "true", false, true},
		{arr{"true", "false"}, "pro", true, false},
		{arr{}, true, true, true},
		{arr{}, arr{}, true, true},
		{true, arr{true}, true, false},
		{false, "FALSE", true, true},
		{false, nil, true, false},
		{false, "", true, false},
		{arr{}, arr{true, arr{"TRUE", arr{}}}, true, true},
		{arr{}, arr{true, false}, false, false},
		{arr{}, false, false, false},
		{arr{}, 0.0, false, false},
		{arr{}, "banana", false, false},
		{arr{true, "PRO"}, "TRUE", true, true},
		{arr{false, "PRO"}, "banana", false, false},
		{arr{"FREE", "PRO"}, "pro", true, true},
		{"Ä", "ä", true, true},
	}
	for _, version := range []any{nil, 1, 2, 3, "2"} {
		for _, row := range rows {
			extra := obj{}
			if version != nil {
				extra["property_matching_version"] = version
			}
			e := defs(t, arr{
				flag("exact", cond(100, prop("p", "exact", row.filter))),
				flag("is-not", cond(100, prop("p", "is_not", row.filter))),
			}, extra)
			want := row.legacy
			if version == 2 {
				want = row.version2
			}
			in := Input{DistinctID: "u", PersonProperties: map[string]any{"p": row.person}}
			r, err := e.Evaluate("exact", in)
			require.NoError(t, err)
			require.Equal(t, want, r.Enabled, "version %v: %v exact %v", version, row.person, row.filter)
			r, err = e.Evaluate("is-not", in)
			require.NoError(t, err)
			require.Equal(t, !want, r.Enabled, "version %v: %v is_not %v", version, row.person, row.filter)
		}
	}
}
