package eval

import (
	"encoding/json"
	"fmt"
	"testing"
)

// missing marks a property the caller does not pass.
type missingT struct{}

var missing = missingT{}

type opCase struct {
	op     string
	filter any // filter value
	prop   any // person property value, or missing
	want   outcome
}

func runOpCases(t *testing.T, cases []opCase) {
	t.Helper()
	for i, c := range cases {
		t.Run(fmt.Sprintf("%d_%s_%v_%v", i, c.op, c.filter, c.prop), func(t *testing.T) {
			e := defs(t, arr{flag("f", cond(100, prop("p", c.op, c.filter)))})
			props := map[string]any{"other": 1}
			if _, isMissing := c.prop.(missingT); !isMissing {
				props["p"] = c.prop
			}
			r, err := e.Evaluate("f", Input{DistinctID: "u", PersonProperties: props})
			requireOutcome(t, c.want, r, err)
		})
	}
}

func TestOperators_ExactAndIsNot(t *testing.T) {
	runOpCases(t, []opCase{
		{"exact", "value", "value", on},
		{"exact", "value", "VALUE", on}, // case-insensitive
		{"exact", "value", "value2", off},
		{"exact", "value", "", off},
		{"exact", "value", missing, inco},
		{"exact", arr{"US", "CA", "Uk"}, "us", on},
		{"exact", arr{"US", "CA", "Uk"}, "UK", on},
		{"exact", arr{"US", "CA", "Uk"}, "de", off},
		{"exact", arr{}, "us", off},
		{"exact", 5, 5.0, on},
		{"exact", "5", 5, on},
		{"exact", arr{1, 2, 3}, "2", on},
		{"exact", true, "true", on}, // boolean-like values compare truthiness
		{"exact", "True", true, on},
		{"exact", true, false, off},
		{"exact", "false", "FALSE", on},
		{"exact", "ÉCOLE", "école", on}, // Unicode lower-casing for exact
		{"is_not", "value", "value2", on},
		{"is_not", "value", "Value", off},
		{"is_not", "value", "", on},
		{"is_not", "value", nil, on},
		{"is_not", arr{"value1", "value2"}, "value1", off},
		{"is_not", arr{"value1", "value2"}, "value4", on},
		{"is_not", "null", nil, off},
		{"is_not", "value", missing, inco},
		{"exact", nil, "x", off}, // a filter without a value matches nothing
	})
}

func TestOperators_ContainsPrefixSuffix(t *testing.T) {
	runOpCases(t, []opCase{
		{"icontains", "valUe", "343tfvalue5", on},
		{"icontains", "valUe", "Alakazam", off},
		{"icontains", "valUe", 123, off},
		{"icontains", "3", 323, on},
		{"icontains", "3", "three", off},
		{"not_icontains", "valUe", "Alakazam", on},
		{"not_icontains", "valUe", "xVALUEx", off},
		{"starts_with", "Val", "VALUE", on},
		{"starts_with", "Val", "prevalue", off},
		{"starts_with", "3", 323, on},
		{"not_starts_with", "Val", "value", off},
		{"not_starts_with", "Val", "Alakazam", on},
		{"ends_with", "Lue", "VALUE", on},
		{"ends_with", "Lue", "valueish", off},
		{"ends_with", "3", 321, off},
		{"not_ends_with", "Lue", "value", off},
		{"not_ends_with", "Lue", "Alakazam", on},
		{"icontains_multi", arr{"foo", "BAR"}, "xbarx", on},
		{"icontains_multi", arr{"foo", "BAR"}, "baz", off},
		{"not_icontains_multi", arr{"foo", "BAR"}, "baz", on},
		{"icontains", "x", missing, inco},
	})
}

func TestOperators_Regex(t *testing.T) {
	runOpCases(t, []opCase{
		{"regex", `\.com$`, "value.com", on},
		{"regex", `\.com$`, ".com343tfvalue5", off},
		{"regex", `\.com$`, 123, off},
		{"regex", "3", 323, on},
		{"regex", 4, "4", on},
		{"regex", 4, 4, on},
		{"not_regex", `\.com$`, "value.com", off},
		{"not_regex", `\.com$`, "value.org", on},
		{"regex", `\.com$`, missing, inco},
	})
}

// The service compiles patterns once; one that does not compile makes both
// regex and not_regex false.
func TestServiceSemantics_InvalidRegexIsFalseForBothOperators(t *testing.T) {
	runOpCases(t, []opCase{
		{"regex", `?*`, "value", off},
		{"not_regex", `?*`, "value", off},
	})
}

// fancy_regex accepts lookaround and backreferences, RE2 does not: we cannot
// know what the service would match, so we do not guess.
func TestServiceSemantics_BacktrackingRegexIsInconclusive(t *testing.T) {
	runOpCases(t, []opCase{
		{"regex", `^(?!admin).*$`, "user", inco},
		{"regex", `(a)\1`, "aa", inco},
	})
}

func TestOperators_Numeric(t *testing.T) {
	runOpCases(t, []opCase{
		{"gt", 1, 2, on},
		{"gt", 1, 0, off},
		{"gt", 1, "23", on}, // numeric strings are numbers
		{"lt", 1, "1", off},
		{"gte", 1, 1, on},
		{"gte", 1, "3", on},
		{"lte", 1, 0, on},
		{"lt", "43", "42", on},
		{"lt", "43", 44, off},
		{"lt", "30", "100", off}, // numerically, not as text
		{"gt", "1.5", 1.6, on},
		{"gt", 10, json.Number("11"), on},
		{"gt", 10, int64(11), on},
		{"lt", 1, missing, inco},
		{"between", arr{70000, 80000}, 70000, on},
		{"between", arr{70000, 80000}, "75000", on},
		{"between", arr{70000, 80000}, 80001, off},
		{"not_between", arr{70000, 80000}, 80001, on},
		{"between", arr{80000, 70000}, 75000, off}, // malformed bounds
	})
}

// posthog-node compares non-numeric values as strings ("b" > "a"); the service
// only compares numbers and treats anything else as no match.
func TestServiceSemantics_GtNonNumericIsFalse(t *testing.T) {
	runOpCases(t, []opCase{
		{"gt", "a", "b", off},
		{"lt", "b", "a", off},
		{"gt", 1, "abc", off},
		{"gt", 1, true, off},
		{"gt", 1, nil, off},
	})
}

// posthog-node answers false for every operator but is_not when the value is
// null; the service compares the text "null", so icontains "nu" matches and
// exact false matches (null is falsy).
func TestServiceSemantics_NullComparesAsText(t *testing.T) {
	runOpCases(t, []opCase{
		{"icontains", "nu", nil, on},
		{"exact", "value", nil, off},
		{"exact", false, nil, on},
		{"regex", "Nu", nil, off},
		{"regex", "nu", nil, on},
		{"is_date_before", "2024-01-01", nil, off},
	})
}

// The service compares serde_json's text of numbers: 1.0 in JSON is "1.0",
// not "1". encoding/json float64s cannot tell 1 from 1.0 and print as the
// integer the application almost certainly sent; json.Number keeps the text.
func TestServiceSemantics_ExactComparesJSONTextOfNumbers(t *testing.T) {
	runOpCases(t, []opCase{
		{"exact", "1", 1.0, on},
		{"exact", "1", json.Number("1.0"), off}, // posthog-node: on (String(1.0) == "1")
		{"exact", "1.0", json.Number("1.0"), on},
		{"exact", 1, json.Number("1"), on},
		{"exact", "1.5", 1.5, on},
		{"exact", "100.0", json.Number("1e2"), on},
	})
}

// is_set/is_not_set look at presence. A property the caller did not pass is
// unknown: posthog-node answers is_not_set true, the service (given partial
// properties) declines, and so do we.
func TestServiceSemantics_IsNotSetMissingIsInconclusive(t *testing.T) {
	runOpCases(t, []opCase{
		{"is_set", "is_set", "x", on},
		{"is_set", "is_set", nil, on},
		{"is_set", "is_set", missing, inco},
		{"is_not_set", "is_not_set", "x", off},
		{"is_not_set", "is_not_set", nil, off},
		{"is_not_set", "is_not_set", missing, inco},
	})
}

func TestOperators_UnknownOperatorIsInconclusive(t *testing.T) {
	runOpCases(t, []opCase{{"fuzzy_match", "x", "x", inco}})
}

func TestOperators_Semver(t *testing.T) {
	runOpCases(t, []opCase{
		{"semver_gt", "1.0.0", "1.0.1", on},
		{"semver_gt", "1.0.0", "1.0.0", off},
		{"semver_gt", "1.0.0", "v1.0.1", on},
		{"semver_gt", "v1.0.0", "1.0.1", on},
		{"semver_gte", "0.0.0", "0.0.0", on},
		{"semver_lt", "2.0.0", "1.9.9", on},
		{"semver_lte", "2.0.0", "2.0.1", off},
		{"semver_eq", "1.2.3", "1.2.3", on},
		{"semver_neq", "1.2.3", "1.2.4", on},
		{"semver_gt", "1.0.0", " 1.2.3 ", on},
		{"semver_gt", "1.0.0", "1.2.3.4", off},
		{"semver_gt", "1.0.0", "1..2", off},
		{"semver_gt", "1.0.0", "not-a-version", off},
		{"semver_gt", "invalid-semver", "1.0.0", off},
		{"semver_gte", "3.08", "3.10", on}, // mobile-style versions are canonicalised
		{"semver_gte", "3.08", "3.7", off},
		{"semver_gt", "3.9", "3.10", on},
		{"semver_tilde", "1.2.3", "1.2.10", on},
		{"semver_tilde", "1.2.3", "1.3.0", off},
		{"semver_tilde", "1.2.3", "1.2.2", off},
		{"semver_tilde", "3.08", "3.8.5", on},
		{"semver_caret", "1.2.3", "1.10.5", on},
		{"semver_caret", "1.2.3", "2.0.0", off},
		{"semver_caret", "0.2.3", "0.3.0", off},
		{"semver_caret", "0.0.3", "0.0.4", off},
		{"semver_wildcard", "1.2.*", "1.2.99", on},
		{"semver_wildcard", "1.2.*", "1.3.0", off},
		{"semver_wildcard", "1.*.*", "1.5.9", on},
		{"semver_wildcard", "1.*", "2.0.0", off},
		{"semver_wildcard", "*", "99.99.99", on},
		{"semver_wildcard", "3.08.*", "3.8.5", on},
		{"semver_wildcard", "1.*.3", "1.2.3", off},
		{"semver_gt", "1.0.0", missing, inco},
	})
}

// The service orders pre-releases below their release (semver crate);
// posthog-node strips pre-release tags, so 1.0.0-alpha.1 equals 1.0.0 there.
func TestServiceSemantics_SemverPrereleaseOrdering(t *testing.T) {
	runOpCases(t, []opCase{
		{"semver_gt", "1.0.0", "1.0.0-alpha.1", off},
		{"semver_eq", "1.0.0", "1.0.0-alpha.1", off},
		{"semver_gt", "1.0.0", "1.0.1-beta.2", on},
		{"semver_lt", "1.0.0-alpha.1", "1.0.0-alpha.0", on},
		{"semver_lt", "1.0.0-alpha.10", "1.0.0-alpha.9", on}, // numeric identifiers by value: 9 < 10
		{"semver_tilde", "1.2.3-beta.1", "1.2.3-beta.2", on},
		{"semver_tilde", "1.2.3-beta.1", "1.2.3", on},
		{"semver_tilde", "1.2.3", "1.2.4-beta.1", off}, // pre-releases need an opted-in comparator
		{"semver_wildcard", "1.2.*", "1.2.5-rc.1", off},
	})
}
