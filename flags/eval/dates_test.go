package eval

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestOperators_Dates(t *testing.T) {
	// fixedNow is 2024-03-31T12:00:00Z.
	runOpCases(t, []opCase{
		{"is_date_before", "2024-01-01", "2023-12-31", on},
		{"is_date_before", "2024-01-01", "2024-01-01", off},
		{"is_date_after", "2023-06-04", "2025-01-24T23:20:24.865148+00:00", on},
		{"is_date_after", "2023-06-04", "2023-01-24T23:20:24.865148+00:00", off},
		{"is_date_after", "2027-03-21T00:00:00Z", 1836277747, on}, // Unix seconds
		{"is_date_after", "2027-03-21T00:00:00Z", "1836277747", on},
		{"is_date_after", "2027-03-21T00:00:00Z", 1747793088, off},
		{"is_date_exact", "2024-03-21T00:00:00Z", "2024-03-21T00:00:00Z", on},
		{"is_date_exact", "2024-03-21T00:00:00Z", 1710979200, on},
		{"is_date_exact", "2024-03-21T00:00:00Z", 1710979200.0, on},
		{"is_date_exact", "2024-03-21T00:00:00Z", "2024-03-22T00:00:00Z", off},
		{"is_date_exact", "2024-03-21", "2024-03-21 00:00:00", on}, // naive: UTC
		{"is_date_before", "2024-01-01", "invalid-date", off},
		{"is_date_before", "2024-01-01", true, off},
		{"is_date_before", "2024-01-01", "2023-12-31 23:59", on},
		{"is_date_before", "2024-01-01", "Sun, 31 Dec 2023 10:00:00 +0000", on},
		{"is_date_before", "not a date", "2023-12-31", off},
		{"is_date_before", 20240101, "2023-12-31", off}, // the filter value must be a string
		// Relative filter values, anchored at the injected clock.
		{"is_date_before", "-3d", "2024-03-27T12:00:00Z", on},
		{"is_date_before", "-3d", "2024-03-29T12:00:00Z", off},
		{"is_date_after", "-1h", "2024-03-31T11:30:00Z", on},
		{"is_date_after", "-2w", "2024-03-16T12:00:00Z", off},
		{"is_date_after", "-2w", "2024-03-17T12:00:01Z", on},
		{"is_date_after", "7d", "2024-03-25T00:00:00Z", on}, // the minus is optional
		{"is_date_before", "-1y", "2023-03-30T00:00:00Z", on},
		{"is_date_before", "-1d", missing, inco},
	})
}

// A date written in a way the service's fallback parser (dateparser) may read
// but we cannot is not guessed at.
func TestOperators_UnreadableDateIsInconclusive(t *testing.T) {
	runOpCases(t, []opCase{
		{"is_date_before", "2024-01-01", "12th of March 2023", inco},
	})
}

// Months step back one at a time, clamping the day each step (the service's
// loop), so Mar 31 - 1m is Feb 29 and - 2m is Jan 29, not Jan 31.
func TestServiceSemantics_RelativeMonthsClampEachStep(t *testing.T) {
	now := time.Date(2024, 3, 31, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Time
	}{
		{"-1m", time.Date(2024, 2, 29, 12, 0, 0, 0, time.UTC)},
		{"-2m", time.Date(2024, 1, 29, 12, 0, 0, 0, time.UTC)},
		{"-1y", time.Date(2023, 3, 31, 12, 0, 0, 0, time.UTC)},
		{"-3d", time.Date(2024, 3, 28, 12, 0, 0, 0, time.UTC)},
		{"-24h", time.Date(2024, 3, 30, 12, 0, 0, 0, time.UTC)},
		{"-1w", time.Date(2024, 3, 24, 12, 0, 0, 0, time.UTC)},
	}
	for _, c := range cases {
		r, ok := parseRelative(c.in)
		require.True(t, ok, c.in)
		require.Equal(t, c.want, r.resolve(now), c.in)
	}
	leap := time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)
	r, _ := parseRelative("-1y")
	require.Equal(t, time.Date(2023, 2, 28, 0, 0, 0, 0, time.UTC), r.resolve(leap))

	for _, bad := range []string{"1", "1x", "1.2y", "bazinga", "000hello", "10000d", "-d", ""} {
		_, ok := parseRelative(bad)
		require.False(t, ok, bad)
	}
	_, ok := parseRelative("000h")
	require.True(t, ok)
}

func TestDates_ClockIsInjected(t *testing.T) {
	e := defs(t, arr{flag("f", cond(100, prop("joined", "is_date_after", "-1d")))})
	in := Input{DistinctID: "u", PersonProperties: map[string]any{"joined": "2024-03-31T00:00:00Z"}}
	r, err := e.Evaluate("f", in)
	require.NoError(t, err)
	require.True(t, r.Enabled)
	e.now = func() time.Time { return fixedNow.AddDate(0, 0, 5) }
	r, err = e.Evaluate("f", in)
	require.NoError(t, err)
	require.False(t, r.Enabled)
}
