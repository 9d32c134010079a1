package eval

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// PostHog's cross-library consistency vectors (posthog/test/test_feature_flag.py,
// repeated in every SDK's test suite): "simple-flag" at 45 % and
// "multivariate-flag" at 55 % with five variants, for distinct_id_0..199.
// Encoded here as one character per distinct id.
const (
	simpleFlag45 = "01101001010110100011010010110001111000000110110001100001010101101010110010010100100011011011111011001111001011100000100111001010010000000011001001100101011100010000110110101101011101001101011001111011"
	multivariate = "221--21---13-121--41-3---1111113-321-3--12-112-1--11121-22321-124-111-12-3------15-212-33----3--11-33-323--21--1----111---11-11---------111121112-2121-22-1---31--1----1-------11311--1--52-2-13153--4--"
)

func TestHash_PostHogConsistencyVectorsSimpleFlag(t *testing.T) {
	e := defs(t, arr{flag("simple-flag", cond(45))})
	for i, c := range simpleFlag45 {
		r, err := e.Evaluate("simple-flag", Input{DistinctID: fmt.Sprintf("distinct_id_%d", i)})
		require.NoError(t, err)
		require.Equal(t, c == '1', r.Enabled, "distinct_id_%d", i)
	}
}

func TestHash_PostHogConsistencyVectorsMultivariate(t *testing.T) {
	f := flag("multivariate-flag", cond(55))
	f["filters"].(obj)["multivariate"] = obj{"variants": arr{
		obj{"key": "first-variant", "rollout_percentage": 50},
		obj{"key": "second-variant", "rollout_percentage": 20},
		obj{"key": "third-variant", "rollout_percentage": 20},
		obj{"key": "fourth-variant", "rollout_percentage": 5},
		obj{"key": "fifth-variant", "rollout_percentage": 5},
	}}
	e := defs(t, arr{f})
	names := map[rune]any{'-': false, '1': "first-variant", '2': "second-variant", '3': "third-variant", '4': "fourth-variant", '5': "fifth-variant"}
	for i, c := range multivariate {
		r, err := e.Evaluate("multivariate-flag", Input{DistinctID: fmt.Sprintf("distinct_id_%d", i)})
		require.NoError(t, err)
		require.Equal(t, names[c], r.Value(), "distinct_id_%d", i)
	}
}

func TestHash_Range(t *testing.T) {
	// sha1("a.b") starts 0x...; whatever it is, the value lies in [0, 1).
	for _, id := range []string{"", "a", "distinct_id_0", string(make([]byte, 400))} {
		h := flagHash("k", id, "variant")
		require.GreaterOrEqual(t, h, 0.0)
		require.Less(t, h, 1.0)
	}
	// Long inputs take the heap path and hash the same bytes.
	long := string(make([]byte, 300))
	require.Equal(t, flagHash("k", long, ""), flagHash("k", long, ""))
}
