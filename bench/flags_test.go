package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

// flagDefinitions50 is testdata/flags-50.json, a /flags/definitions body of
// 50 flags shaped like a real project's: 20 plain percentage rollouts
// (rollout-N), 20 flags with three person property filters and a rollout
// (targeted-N), 5 multivariate experiments behind a property
// (experiment-N), 5 with two condition groups, one a regex (two-groups-N).
// None needs a remote call, so every answer is local.
func flagDefinitions50(tb testing.TB) []byte {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "flags-50.json"))
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

// flagsBody is what an SDK sends to /flags/?v=2 for one user.
func flagsBody(i int) string {
	plans := []string{"free", "pro", "team"}
	countries := []string{"NL", "DE", "US", "FR"}
	b, _ := json.Marshal(map[string]any{
		"token": benchToken, "distinct_id": fmt.Sprintf("user-%d", i),
		"person_properties": map[string]any{
			"email": fmt.Sprintf("user%d@Example.com", i), "plan": plans[i%3], "age": 16 + i%40, "country": countries[i%4],
		},
	})
	return string(b)
}

// runFlags asks /flags/?v=2 requests times from clients producers, after
// the agent has loaded the 50 definitions from its fake upstream.
func runFlags(tb testing.TB, clients, requests int) {
	tb.Helper()
	fake, err := fakeposthog.New(fakeposthog.Options{FlagDefinitions: flagDefinitions50(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = fake.Close() })
	a := startAgent(tb, fake.URL())
	if err := waitFor(10*time.Second, func() bool {
		st := a.Status()
		return st.Flags != nil && st.Flags.FlagCount == 50
	}); err != nil {
		tb.Fatalf("agent did not load 50 flag definitions: %+v", a.Status().Flags)
	}

	const url = "http://hogrelay/flags/?v=2"
	bodies := make([]string, 256)
	for i := range bodies {
		bodies[i] = flagsBody(i)
	}
	cs := make([]*http.Client, clients)
	for i := range cs {
		cs[i] = unixClient(a.Socket)
		tb.Cleanup(cs[i].CloseIdleConnections)
	}
	checkFlagsAnswer(tb, cs[0], url, bodies[0])

	resetTimer(tb)
	lat, wall, err := produce(clients, requests, func(c, i int) error {
		return post(cs[c], url, bodies[i%len(bodies)])
	})
	stopTimer(tb)
	if err != nil {
		tb.Fatalf("flags: %v", err)
	}
	if n := len(fake.FlagsRequests()); n != 0 {
		tb.Fatalf("the agent asked PostHog's /flags %d times; every answer should be local", n)
	}
	report(tb, "req/s", requests, wall, lat)
}

// checkFlagsAnswer makes sure the benchmark measures what it claims: 50
// flags answered, none in error.
func checkFlagsAnswer(tb testing.TB, c *http.Client, url, body string) {
	tb.Helper()
	resp, err := c.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var ans struct {
		Flags  map[string]json.RawMessage `json:"flags"`
		Errors bool                       `json:"errorsWhileComputingFlags"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &ans) != nil || len(ans.Flags) != 50 || ans.Errors {
		tb.Fatalf("/flags/?v=2 answered %d with %d flags (errors: %t): %.300s", resp.StatusCode, len(ans.Flags), ans.Errors, raw)
	}
}

// BenchmarkFlagsRoundTrip50: POST /flags/?v=2 with person_properties, 50
// local definitions; op = one request. Targets (clients=1): p50 <= 200µs,
// p99 <= 1ms. clients=8 shows the same under concurrency on two cores.
func BenchmarkFlagsRoundTrip50(b *testing.B) {
	for _, clients := range []int{1, 8} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) { runFlags(b, clients, b.N) })
	}
}
