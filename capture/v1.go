package capture

import (
	"mime"
	"net/http"
	"strings"
)

// Capture v1 (POST /i/v1/analytics/events) is PostHog's newer capture
// protocol, opt-in in posthog-go, posthog-python and posthog-node. The
// token travels in "Authorization: Bearer", the body is
// {"created_at", "historical_migration"?, "batch": [event...]}, and the
// answer is 200 {"results": {uuid: {"result", "details"?}}} with a result
// per event, or a non-2xx {"error", "error_description"} for the request.
//
// DecodeV1 turns such a request into the same normalised events Decode
// produces, so the spool and the forwarder (which sends v0 /batch/) need no
// change. The rules follow PostHog's rust/capture v1 handler (src/v1/
// analytics: context.rs for headers, process.rs for validation and skew,
// types.rs for options and the properties it injects) in
// github.com/PostHog/posthog.
//
// The files split as v0's do: this one is the entry point and the token;
// v1_decode.go reads the body, v1_options.go coerces event options,
// v1_build.go builds the v0 events and v1_errors.go holds the refusals.

// V1Path is the Capture v1 endpoint (also served with a trailing slash).
const V1Path = "/i/v1/analytics/events"

// V1BodyLimit is the body limit for V1Path, the same as /batch.
const V1BodyLimit = BatchBodyLimit

// Limits of PostHog's v1 validation (analytics/constants.rs), in bytes.
const (
	v1MaxEventNameLen  = 200
	v1MaxDistinctIDLen = 200
	v1MaxSDKInfoLen    = 256
)

// The per-event results the SDKs understand.
const (
	V1ResultOK      = "ok"
	V1ResultWarning = "warning"
	V1ResultDrop    = "drop"
	V1ResultRetry   = "retry"
)

// V1Result is one event's entry in the 200 answer. The SDKs re-send only
// "retry"; "drop" is final.
type V1Result struct {
	Result  string `json:"result"`
	Details string `json:"details,omitempty"`
}

// DecodeV1 decodes, validates and normalises one Capture v1 request. On
// success Batch holds the events to store, and results has an entry for
// every event of the request, keyed by its canonical uuid: "ok" for the
// stored ones, "drop" with the reason for those refused one by one. Only
// answer with results after Batch.Events are durably stored. Every error
// is a *V1Error.
func DecodeV1(r Request, opt Options) (Batch, map[string]V1Result, error) {
	token, err := v1Token(r.Header, opt)
	if err != nil {
		return Batch{}, nil, err
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, perr := mime.ParseMediaType(ct); perr != nil || mt != "application/json" {
			return Batch{}, nil, v1Errorf(http.StatusUnsupportedMediaType, "unsupported_content_type",
				"unsupported content type %q: send application/json", ct)
		}
	}
	body, err := v1Body(r)
	if err != nil {
		return Batch{}, nil, err
	}
	if err := r.Reserve.take(DecodeCopies * int64(len(body))); err != nil {
		return Batch{}, nil, err
	}
	now := r.now()
	createdAt, historical, events, err := parseV1(body)
	if err != nil {
		return Batch{}, nil, err
	}
	// PostHog measures the client's clock skew with the per-attempt
	// PostHog-Request-Timestamp header; created_at is fixed when the batch
	// is built, so on a retry it would count the retry delay as skew. The
	// agent falls back to created_at for clients that do not send the
	// header (PostHog would refuse them).
	clientTime := createdAt
	if t, ok := parseRFC3339([]byte(strings.TrimSpace(r.Header.Get("PostHog-Request-Timestamp")))); ok {
		clientTime = t
	}
	skew := clientTime.Sub(now)
	inject := sdkInfoProps(r.Header.Get("PostHog-Sdk-Info"))

	uuids, err := v1UUIDs(events)
	if err != nil {
		return Batch{}, nil, err
	}
	out, results := buildV1(events, uuids, skew, now, inject, opt.maxEventBytes())
	return Batch{Token: token, HistoricalMigration: historical, Events: out}, results, nil
}

// v1Token reads "Authorization: Bearer <token>" and applies the same shape
// check and allow-list as v0. Unlike v0 there is no fallback to the
// agent's default token: PostHog answers 401 to a v1 request without
// Authorization, and every v1 SDK sends it.
func v1Token(h http.Header, opt Options) (string, error) {
	auth := h.Get("Authorization")
	if auth == "" {
		return "", v1Errorf(http.StatusUnauthorized, "missing_authorization", "no Authorization header: send Authorization: Bearer <project token>")
	}
	if len(auth) <= 7 || !strings.EqualFold(auth[:7], "Bearer ") {
		return "", v1Errorf(http.StatusBadRequest, "invalid_header_value", "Authorization must use the Bearer scheme")
	}
	token := strings.TrimSpace(auth[7:])
	if err := opt.Admit(token); err != nil {
		return "", v1Errorf(http.StatusUnauthorized, "invalid_api_token", "%v", err)
	}
	return token, nil
}
