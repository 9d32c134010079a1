package capture

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// serverEvent is a ~500-byte event as posthog-python sends it in a /batch
// body: distinct_id and uuid top-level, library metadata, some properties.
func serverEvent(i int) string {
	return fmt.Sprintf(`{"event":"$pageview","distinct_id":"user-%05d","uuid":"0190a1b2-c3d4-4e5f-8a6b-7c8d9e%06d",`+
		`"timestamp":"2024-06-01T11:59:50.123456+00:00","type":"capture","library":"posthog-python","library_version":"7.0.0",`+
		`"properties":{"$lib":"posthog-python","$lib_version":"7.0.0","$current_url":"https://example.com/pricing?utm_source=newsletter",`+
		`"$geoip_disable":true,"plan":"pro","seats":%d,"$groups":{"company":"acme-inc"},"feature_flags":["new-onboarding","beta-dashboard"],`+
		`"$session_id":"0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b","referrer":"https://news.ycombinator.com/","screen":{"w":1920,"h":1080}}}`, i, i, i)
}

// browserEvent is the posthog-js shape: token and distinct_id only in
// properties, no uuid in older versions, so both lookups and uuid minting run.
func browserEvent(i int) string {
	return fmt.Sprintf(`{"event":"$autocapture","timestamp":"2024-06-01T11:59:50.123Z","properties":{"token":"phc_benchmark",`+
		`"distinct_id":"0190a1b2-c3d4-7e5f-8a6b-%012d","$os":"Mac OS X","$browser":"Chrome","$browser_version":126,`+
		`"$current_url":"https://example.com/app/settings","$host":"example.com","$pathname":"/app/settings","$screen_height":1080,`+
		`"$screen_width":1920,"$lib":"web","$lib_version":"1.150.0","$insert_id":"k3j4h5g6f7d8s9a0","$time":1717243190.123,`+
		`"$event_type":"click","$ce_version":1,"$elements_chain":"button.btn-primary:text=\"Save\"nth-child=\"2\""}}`, i)
}

func batchBody(n int, event func(int) string) string {
	evs := make([]string, n)
	for i := range evs {
		evs[i] = event(i)
	}
	return `{"api_key":"phc_benchmark","sent_at":"2024-06-01T12:00:00.000000+00:00","batch":[` + strings.Join(evs, ",") + `]}`
}

func benchDecode(b *testing.B, req Request, events int) {
	b.Helper()
	b.SetBytes(int64(len(req.Body)))
	b.ReportAllocs()
	for b.Loop() {
		out, err := Decode(req, Options{})
		if err != nil || len(out.Events) != events {
			b.Fatalf("decode: %v (%d events)", err, len(out.Events))
		}
	}
	b.ReportMetric(float64(events*b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkDecodeBatch is the throughput target: a 100-event /batch body of
// ~500-byte events must decode at >= 200k events/s on one core.
func BenchmarkDecodeBatch(b *testing.B) {
	body := batchBody(100, serverEvent)
	req := Request{Method: "POST", Path: "/batch/", Body: []byte(body), Header: http.Header{}, Query: url.Values{}, Now: time.Now()}
	b.Logf("body %d bytes, %d bytes/event", len(body), len(body)/100)
	benchDecode(b, req, 100)
}

func BenchmarkDecodeBatchGzip(b *testing.B) {
	body := gz(b, batchBody(100, serverEvent))
	req := Request{Method: "POST", Path: "/batch/", Body: body, Header: http.Header{"Content-Encoding": {"gzip"}}, Query: url.Values{}, Now: time.Now()}
	benchDecode(b, req, 100)
}

func BenchmarkDecodeBrowserArray(b *testing.B) {
	evs := make([]string, 100)
	for i := range evs {
		evs[i] = browserEvent(i)
	}
	body := "[" + strings.Join(evs, ",") + "]"
	req := Request{Method: "POST", Path: "/e/", Body: []byte(body), Header: http.Header{}, Query: url.Values{"_": {"1717243200000"}}, Now: time.Now()}
	benchDecode(b, req, 100)
}
