package fakeposthog

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// sampleDefs mirrors the parts of PostHog's definitions shape the sample must
// get right for local evaluation to work against it.
type sampleDefs struct {
	Flags []struct {
		ID      int    `json:"id"`
		Key     string `json:"key"`
		Active  bool   `json:"active"`
		Filters struct {
			Groups []struct {
				Properties []struct {
					Key      string `json:"key"`
					Type     string `json:"type"`
					Value    any    `json:"value"`
					Operator string `json:"operator"`
				} `json:"properties"`
				RolloutPercentage *float64 `json:"rollout_percentage"`
			} `json:"groups"`
			Multivariate *struct {
				Variants []struct {
					Key               string  `json:"key"`
					RolloutPercentage float64 `json:"rollout_percentage"`
				} `json:"variants"`
			} `json:"multivariate"`
			AggregationGroupTypeIndex *int              `json:"aggregation_group_type_index"`
			Payloads                  map[string]string `json:"payloads"`
		} `json:"filters"`
	} `json:"flags"`
	GroupTypeMapping map[string]string `json:"group_type_mapping"`
	Cohorts          map[string]struct {
		Type   string            `json:"type"`
		Values []json.RawMessage `json:"values"`
	} `json:"cohorts"`
}

func TestSampleFlagDefinitionsShape(t *testing.T) {
	var d sampleDefs
	require.NoError(t, json.Unmarshal(SampleFlagDefinitions, &d))
	require.Equal(t, map[string]string{"0": "company"}, d.GroupTypeMapping)

	byKey := map[string]int{}
	for i, f := range d.Flags {
		require.True(t, f.Active, f.Key)
		require.NotZero(t, f.ID, f.Key)
		byKey[f.Key] = i
	}
	require.Len(t, byKey, 5)

	boolean := d.Flags[byKey["new-onboarding"]]
	require.Nil(t, boolean.Filters.Multivariate)
	require.Equal(t, 50.0, *boolean.Filters.Groups[0].RolloutPercentage)

	mv := d.Flags[byKey["checkout-button"]]
	require.NotNil(t, mv.Filters.Multivariate)
	require.Len(t, mv.Filters.Multivariate.Variants, 3)
	total := 0.0
	for _, v := range mv.Filters.Multivariate.Variants {
		total += v.RolloutPercentage
		payload, ok := mv.Filters.Payloads[v.Key]
		require.True(t, ok, "variant %s has a payload", v.Key)
		require.True(t, json.Valid([]byte(payload)), "payloads are JSON-encoded strings")
	}
	require.Equal(t, 100.0, total)

	person := d.Flags[byKey["internal-tools"]].Filters.Groups[0].Properties[0]
	require.Equal(t, "email", person.Key)
	require.Equal(t, "person", person.Type)
	require.Equal(t, "icontains", person.Operator)
	require.Equal(t, "@example.com", person.Value)

	group := d.Flags[byKey["company-beta"]]
	require.NotNil(t, group.Filters.AggregationGroupTypeIndex)
	require.Contains(t, d.GroupTypeMapping, strconv.Itoa(*group.Filters.AggregationGroupTypeIndex))

	cohort := d.Flags[byKey["power-users-banner"]].Filters.Groups[0].Properties[0]
	require.Equal(t, "cohort", cohort.Type)
	id, ok := cohort.Value.(float64)
	require.True(t, ok)
	c, ok := d.Cohorts[strconv.Itoa(int(id))]
	require.True(t, ok, "the cohort a flag references is in the cohorts map")
	require.Contains(t, []string{"AND", "OR"}, c.Type)
	require.NotEmpty(t, c.Values)
}
