package e2e

import (
	"crypto/sha1"
	be "encoding/binary"
	"encoding/json"
	"fmt"
)

// sdkDifference is a flag on which posthog-node 5.70.0's local evaluation and
// PostHog's flags service (rust/feature-flags) answer differently. The
// compatibility test serves it with the others, checks that the agent
// answers as the service (service gives that answer for a subject;
// sdkDeferred means the agent must ask PostHog), and that posthog-node
// really differs on some subject, so an entry that stops differing (a new
// posthog-node, or a change here) fails by name instead of lingering.
type sdkDifference struct {
	id      int
	filters map[string]any
	why     string
	service func(s sdkSubject) any
}

// sdkDeferred: the agent cannot decide and asks PostHog (which the fake
// answers with sdkUpstreamVariant).
const sdkDeferred = sdkUpstreamVariant

var sdkServiceDifferences = map[string]sdkDifference{
	"diff-gt-not-a-number": {
		id:      41,
		filters: map[string]any{"groups": []map[string]any{sdkCond(100, sdkPersonProp("name", "gt", "a"))}},
		why: "gt on a value that is not a number in Rust's f64 grammar: the service's match_property " +
			"says false (validation error), posthog-node compares the strings (\"alice\" > \"a\")",
		service: func(sdkSubject) any { return false },
	},
	"diff-cohort-exact-operator": {
		id: 42,
		filters: map[string]any{"groups": []map[string]any{sdkCond(100,
			map[string]any{"key": "id", "type": "cohort", "value": 7, "operator": "exact", "negation": false})}},
		why: "a cohort filter whose operator is not in/not_in: apply_cohort_membership_logic says false, " +
			"posthog-node tests membership",
		service: func(sdkSubject) any { return false },
	},
	"diff-flag-dependency-exact-operator": {
		id: 43,
		filters: map[string]any{"groups": []map[string]any{sdkCond(100,
			map[string]any{"key": "rollout-100-payload", "type": "flag", "value": true, "operator": "exact", "dependency_chain": []string{"rollout-100-payload"}})}},
		why:     "a flag dependency whose operator is not flag_evaluates_to: match_flag_value_to_flag_filter says false",
		service: func(sdkSubject) any { return false },
	},
	"diff-unmapped-group-type": {
		id:      44,
		filters: map[string]any{"groups": []map[string]any{sdkCond(100, sdkGroupProp("plan", "is_not", "enterprise", 5))}},
		why: "a group filter on a group type index group_type_mapping lacks: the service matches it against " +
			"empty properties (is_not: true), posthog-node cannot evaluate it",
		service: func(sdkSubject) any { return true },
	},
	"diff-group-filter-without-group-key": {
		id:      45,
		filters: map[string]any{"groups": []map[string]any{sdkCond(100, sdkGroupProp("plan", "exact", "enterprise", 0))}},
		why: "a group filter in a person flag for a subject in no company: the service has no stored group " +
			"without a key, so the request's (no) properties decide (false); posthog-node cannot evaluate it",
		service: func(s sdkSubject) any {
			return s.Groups["company"] != "" && s.GroupProperties["company"]["plan"] == "enterprise"
		},
	},
	"diff-early-access": {
		id: 46,
		filters: map[string]any{"feature_enrollment": true,
			"groups": []map[string]any{sdkCond(100, sdkPersonProp("plan", "exact", "pro"))}},
		why: "early access (feature_enrollment): the service answers from $feature_enrollment/<key> when the " +
			"person has it, which PostHog may have stored; posthog-node ignores enrollment and answers from the conditions",
		service: func(sdkSubject) any { return sdkDeferred },
	},
	"diff-date-numeric-seconds": {
		id:      48,
		filters: map[string]any{"groups": []map[string]any{sdkCond(100, sdkPersonProp("sessions", "is_date_before", "1970-01-01T00:00:10Z"))}},
		why: "a date filter on a number: the service's determine_parsed_date_for_property_matching reads it " +
			"as Unix seconds, posthog-node as milliseconds (so 20 is before 00:00:10 in node)",
		service: func(s sdkSubject) any { return s.PersonProperties["sessions"].(int) < 10 },
	},
	"diff-semver-prerelease": {
		id:      49,
		filters: map[string]any{"groups": []map[string]any{sdkCond(100, sdkPersonProp("app_version", "semver_gt", "2.3.0-beta.1"))}},
		why: "semver with a pre-release: the service's semver crate orders 2.3.0 after 2.3.0-beta.1, " +
			"posthog-node drops the pre-release and finds 2.3.0 not greater than 2.3.0",
		service: func(s sdkSubject) any {
			switch s.PersonProperties["app_version"] {
			case "2.3.0", "2.3.1", "2.10.0", "3.1.4":
				return true
			}
			return false
		},
	},
	"diff-early-exit-undecided": {
		id: 47,
		filters: map[string]any{"early_exit": true, "groups": []map[string]any{
			sdkCond(45, sdkPersonProp("beta_opt_in", "exact", []any{"true"})), sdkCond(100)}},
		why: "early_exit with a first condition posthog-node cannot decide (beta_opt_in not passed) and a " +
			"100 % condition: node says true; the service, for a person who has the property and is out of " +
			"the first condition's rollout, stops there with false, so the agent asks PostHog",
		service: func(s sdkSubject) any {
			in := sdkRolloutHash("diff-early-exit-undecided", s.DistinctID) <= 0.45
			beta, known := s.PersonProperties["beta_opt_in"].(bool)
			switch {
			case !known && !in:
				return sdkDeferred
			case known && beta && !in:
				return false
			}
			return true
		},
	},
}

// sdkRolloutHash is PostHog's rollout hash of "<key>.<id>" on the 60-bit scale.
func sdkRolloutHash(key, id string) float64 {
	sum := sha1.Sum([]byte(key + "." + id))
	return float64(be.BigEndian.Uint64(sum[:8])>>4) / float64(0xFFFFFFFFFFFFFFF)
}

// sdkDifferenceFlags are the definitions of sdkServiceDifferences.
func sdkDifferenceFlags() []map[string]any {
	var out []map[string]any
	for key, d := range sdkServiceDifferences {
		out = append(out, sdkFlagDef(d.id, key, d.filters))
	}
	return out
}

// sdkCheckDifference says what is wrong with the agent's answer on a named
// difference, or "", and whether posthog-node differed from the service.
func sdkCheckDifference(d sdkDifference, s sdkSubject, local, remote json.RawMessage) (problem string, nodeDiffers bool) {
	want, err := json.Marshal(d.service(s))
	if err != nil {
		panic(err)
	}
	if !sdkJSONEqual(remote, want) {
		return fmt.Sprintf("agent /flags=%s, the service answers %s (%s)", remote, want, d.why), false
	}
	return "", !sdkJSONEqual(local, want)
}
