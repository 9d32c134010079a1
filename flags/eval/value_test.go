package eval

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// serde_json prints numbers through ryu; these are the texts the service
// compares.
func TestValue_SerdeNumberText(t *testing.T) {
	cases := map[string]string{
		"1": "1", "-7": "-7", "1.0": "1.0", "1e2": "100.0", "0.1": "0.1", "1.5": "1.5",
		"1e16": "1e16", "1e15": "1000000000000000.0", "1e-7": "1e-7", "0.00001": "0.00001",
		"123456.789": "123456.789", "1.5e300": "1.5e300", "18446744073709551615": "18446744073709551615",
		"18446744073709551616": "1.8446744073709552e19",
	}
	for in, want := range cases {
		require.Equal(t, want, serdeNumberText(in), in)
	}
}

func TestValue_Repr(t *testing.T) {
	require.Equal(t, "null", reprOf(nil))
	require.Equal(t, "true", reprOf(true))
	require.Equal(t, "30", reprOf(30.0))
	require.Equal(t, "2.5", reprOf(2.5))
	require.Equal(t, "7", reprOf(int32(7)))
	require.Equal(t, `["a",1,"<b>"]`, reprOf([]any{"a", 1.0, "<b>"}))
	require.Equal(t, `{"a":1,"b":[true]}`, reprOf(map[string]any{"b": []any{true}, "a": 1.0}))
}

func TestValue_RustFloatParsing(t *testing.T) {
	for _, ok := range []string{"1", "-1.5", "+3", ".5", "1.", "1e5", "inf", "-Infinity", "NaN", "1e400"} {
		_, good := rustParseFloat(ok)
		require.True(t, good, ok)
	}
	for _, bad := range []string{"", " 1", "1 ", "0x10", "1_000", "abc", "1,5"} {
		_, good := rustParseFloat(bad)
		require.False(t, good, bad)
	}
}
