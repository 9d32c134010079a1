package flags

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hogrelay/hogrelay/flags/eval"
	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

// BenchmarkRemoteAnswer is one remote question with a project key only: the
// /flags round trip to a loopback PostHog plus queueing the answer for the
// answer cache.
func BenchmarkRemoteAnswer(b *testing.B) {
	f := newFake(b)
	f.setFlags(perUser)
	s := newBenchService(b, f.URL)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.All(ctx, Ask{Input: eval.Input{DistinctID: fmt.Sprintf("u%d", i%1000)}}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOfflineAnswer is a question answered from the answer cache while
// PostHog is unreachable (in the fail-fast pause, so no dial is paid).
func BenchmarkOfflineAnswer(b *testing.B) {
	f := newFake(b)
	f.setFlags(perUser)
	s := newBenchService(b, f.URL)
	ctx := context.Background()
	for i := range 1000 {
		if _, err := s.All(ctx, Ask{Input: eval.Input{DistinctID: fmt.Sprintf("u%d", i)}}); err != nil {
			b.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond) // let the writer commit
	f.setFlags(func(*fakeposthog.Request) fakeposthog.Response {
		return fakeposthog.Response{Drop: true} // no answer at all: the agent pauses remote calls
	})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		all, err := s.All(ctx, Ask{Input: eval.Input{DistinctID: fmt.Sprintf("u%d", i%1000)}})
		if err != nil || all.CachedAt.IsZero() {
			b.Fatalf("not answered from the cache: %v", err)
		}
	}
}

func newBenchService(b *testing.B, host string) *Service {
	s, err := New(Options{Host: host, ProjectToken: testToken, Dir: b.TempDir(), RemoteTimeout: 2 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}
