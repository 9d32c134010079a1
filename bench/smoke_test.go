package bench

import (
	"testing"
	"time"
)

// TestBenchHarnessSmoke runs every benchmark body once at a tiny size, with
// all its checks, so `go test ./...` notices when the harness breaks. It
// measures nothing.
func TestBenchHarnessSmoke(t *testing.T) {
	t.Run("countBatch", func(t *testing.T) {
		for body, want := range map[string]int{
			`{"api_key":"k","batch":[]}`:                               0,
			`{"api_key":"k","batch":[{"a":"],{"}]}`:                    1,
			`{"batch":[{"a":[1,2]},{"b":"\"]"},{"c":{"d":[]}}],"x":1}`: 3,
			`{"api_key":"k"}`:                                          -1,
		} {
			if got := countBatch([]byte(body)); got != want {
				t.Errorf("countBatch(%s) = %d, want %d", body, got, want)
			}
		}
	})
	if testing.Short() {
		t.Skip("the end-to-end bodies start agents and fsync; skipped with -short")
	}
	t.Run("IngestBatch100x8", func(t *testing.T) {
		runIngest(t, ingestCase{producers: 8, eventsPerReq: 100}, 16)
		runIngest(t, ingestCase{producers: 8, eventsPerReq: 100, live: true}, 16)
	})
	t.Run("IngestSingle64", func(t *testing.T) {
		runIngest(t, ingestCase{producers: 64, eventsPerReq: 1}, 128)
	})
	t.Run("Forward", func(t *testing.T) {
		runForward(t, "lean", 1050)
		runForward(t, "fakeposthog", 250)
	})
	t.Run("WANDrain", func(t *testing.T) {
		runWANDrain(t, 20*time.Millisecond, 3000, 4)
	})
	t.Run("FleetRecovery", func(t *testing.T) {
		r := runFleet(t, fleetCase{agents: 3, perAgent: 1000, rate: 40, delay: 5 * time.Millisecond, outage: 2 * time.Second})
		t.Log(r)
	})
	t.Run("FlagsRoundTrip50", func(t *testing.T) {
		runFlags(t, 2, 20)
	})
}
