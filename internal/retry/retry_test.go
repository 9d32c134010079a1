package retry

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func fixed(v float64) func() float64 { return func() float64 { return v } }

func TestBackoffDoublesToTheCapWithoutJitter(t *testing.T) {
	b := Policy{Initial: time.Second, Max: 5 * time.Second}.Start()
	var got []time.Duration
	for range 6 {
		got = append(got, b.Next(0))
	}
	require.Equal(t, []time.Duration{1, 2, 4, 5, 5, 5}, scale(got, time.Second))
	b.Reset()
	require.Equal(t, time.Second, b.Next(0), "a reset streak starts over")
}

func TestNextDecisions(t *testing.T) {
	for _, tc := range []struct {
		name       string
		p          Policy
		rand       float64
		retryAfter time.Duration
		want       time.Duration
	}{
		{"full jitter picks within [0, d]", Policy{Initial: time.Second, Max: time.Minute, Jitter: 1}, 0.5, 0, 500 * time.Millisecond},
		{"full jitter never below the floor", Policy{Initial: time.Second, Max: time.Minute, Jitter: 1, Floor: 300 * time.Millisecond}, 0, 0, 300 * time.Millisecond},
		{"±10% at the low end", Policy{Initial: time.Minute, Max: time.Hour, Jitter: 0.1}, 0, 0, 54 * time.Second},
		{"±10% at the high end", Policy{Initial: time.Minute, Max: time.Hour, Jitter: 0.1}, 0.999999999, 0, 66 * time.Second},
		{"Retry-After is a floor", Policy{Initial: time.Second, Max: time.Minute, Jitter: 1}, 0.1, 7 * time.Second, 7 * time.Second},
		{"a short Retry-After does not shorten the wait", Policy{Initial: 10 * time.Second, Max: time.Minute}, 0, time.Second, 10 * time.Second},
		{"Retry-After is capped", Policy{Initial: time.Second, Max: time.Minute}, 0, 48 * time.Hour, MaxRetryAfter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.p.Start()
			b.rand = fixed(tc.rand)
			got := b.Next(tc.retryAfter)
			require.InDelta(t, float64(tc.want), float64(got), float64(time.Millisecond))
		})
	}
}

func TestAfterHonoursRetryAfterAndSpreadsAFleet(t *testing.T) {
	for _, tc := range []struct {
		name       string
		rand       float64
		retryAfter time.Duration
		want       time.Duration
	}{
		{"never before the server asked", 0, time.Second, time.Second},
		{"at most a quarter later", 0.999999999, 4 * time.Second, 5 * time.Second},
		{"in between", 0.5, 2 * time.Second, 2250 * time.Millisecond},
		{"no Retry-After, no wait", 0.5, 0, 0},
		{"capped", 0, 48 * time.Hour, MaxRetryAfter},
		{"a long wait is spread by at most 30 s", 0.999999999, 10 * time.Minute, 10*time.Minute + 30*time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.InDelta(t, float64(tc.want), float64(after(tc.retryAfter, fixed(tc.rand))), float64(time.Millisecond))
		})
	}
}

func TestDelayIsTheNthStep(t *testing.T) {
	p := Policy{Initial: time.Minute, Max: 5 * time.Minute}
	require.Equal(t, time.Minute, p.Delay(1, 0))
	require.Equal(t, 2*time.Minute, p.Delay(2, 0))
	require.Equal(t, 5*time.Minute, p.Delay(4, 0))
	require.Equal(t, 5*time.Minute, p.Delay(100000, 0), "many failures stay capped, and cheaply")
	require.Equal(t, 7*time.Minute, p.Delay(1, 7*time.Minute))
}

func TestJitterStaysInRange(t *testing.T) {
	for range 1000 {
		d := Jitter(time.Minute, 0.1)
		require.GreaterOrEqual(t, d, 54*time.Second)
		require.LessOrEqual(t, d, 66*time.Second)
		f := Jitter(time.Second, 1)
		require.GreaterOrEqual(t, f, time.Duration(0))
		require.LessOrEqual(t, f, time.Second)
	}
}

func scale(ds []time.Duration, unit time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d / unit
	}
	return out
}
