package flags

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"syscall"
	"time"

	"github.com/hogrelay/hogrelay/flags/eval"
)

// remoteRetryDelay is the pause before the one retry, as PostHog's SDKs
// wait (sdk-specs http-client: 300 ms, then doubling).
const remoteRetryDelay = 300 * time.Millisecond

// ownRequest is the body of the agent's own POST /flags/?v=2 (CLI answers,
// send_feature_flags), in the shape PostHog's server SDKs send (wire
// contract §3.2).
type ownRequest struct {
	Token            string                    `json:"token"`
	DistinctID       string                    `json:"distinct_id"`
	DeviceID         string                    `json:"device_id,omitempty"`
	Groups           map[string]string         `json:"groups"`
	PersonProperties map[string]any            `json:"person_properties"`
	GroupProperties  map[string]map[string]any `json:"group_properties"`
	GeoIPDisable     bool                      `json:"geoip_disable"`
	FlagKeys         []string                  `json:"flag_keys_to_evaluate,omitempty"`
}

// flagsResponse covers the v2 shape and the legacy v1/v3 one (§3.3), since
// a proxy, an older self-hosted PostHog or a test double may answer either.
type flagsResponse struct {
	Flags                     map[string]json.RawMessage `json:"flags"`
	FeatureFlags              json.RawMessage            `json:"featureFlags"`
	FeatureFlagPayloads       map[string]json.RawMessage `json:"featureFlagPayloads"`
	ErrorsWhileComputingFlags bool                       `json:"errorsWhileComputingFlags"`
	QuotaLimited              []string                   `json:"quotaLimited"`
	QuotaLimitedSnake         []string                   `json:"quota_limited"` // what posthog-go reads
	RequestID                 string                     `json:"requestId"`
	EvaluatedAt               int64                      `json:"evaluatedAt"`
}

type remoteFlag struct {
	Key     string  `json:"key"`
	Enabled bool    `json:"enabled"`
	Variant *string `json:"variant"`
	Reason  *struct {
		Code           string `json:"code"`
		ConditionIndex *int   `json:"condition_index"`
		Description    string `json:"description"`
	} `json:"reason"`
	Metadata struct {
		ID      int64           `json:"id"`
		Version int64           `json:"version"`
		Payload json.RawMessage `json:"payload"`
	} `json:"metadata"`
}

// remoteAnswer is what /flags said, already in eval's types. raw keeps each
// flag's v2 object as PostHog sent it (fields this agent does not know
// included), so SDKs asking for v2 get it unchanged.
type remoteAnswer struct {
	flags                map[string]eval.Result
	raw                  map[string]json.RawMessage
	errorsWhileComputing bool
	requestID            string
	evaluatedAt          int64 // ms since the epoch, 0 = not said
}

// remoteBlocked says why remote evaluation is not allowed, or "" if it is.
// A project token is all /flags needs: no personal API key.
func (s *Service) remoteBlocked(onlyLocal bool, token string) string {
	switch {
	case onlyLocal || s.onlyLocal:
		return "only_evaluate_locally is set"
	case s.host == "":
		return "there is no PostHog host"
	case token == "" && s.token == "":
		return "there is no project API key ([posthog] api_key)"
	}
	return ""
}

// ownBody is the /flags body for a question the agent asks on its own behalf.
func (s *Service) ownBody(in eval.Input, keys []string) ([]byte, error) {
	return json.Marshal(ownRequest{
		Token:            s.token,
		DistinctID:       in.DistinctID,
		DeviceID:         in.DeviceID,
		Groups:           orEmpty(in.Groups),
		PersonProperties: orEmpty(in.PersonProperties),
		GroupProperties:  orEmpty(in.GroupProperties),
		GeoIPDisable:     s.geoIPDisable,
		FlagKeys:         keys,
	})
}

// passThrough is an SDK's /flags body as PostHog should get it: byte for
// byte as the SDK sent it, except that "groups" is added as {} when the SDK
// sent neither it nor its alias, as PostHog's SDKs always send it. When the
// agent answered some flags from its definitions, only is the rest, and
// flag_keys_to_evaluate is narrowed to it (every other field stays).
func passThrough(body []byte, only []string) []byte {
	var probe struct {
		Groups       json.RawMessage `json:"groups"`
		DollarGroups json.RawMessage `json:"$groups"`
	}
	trimmed := bytes.TrimSpace(body)
	if json.Unmarshal(trimmed, &probe) != nil {
		return body
	}
	if only != nil {
		var fields map[string]json.RawMessage
		if json.Unmarshal(trimmed, &fields) != nil {
			return body
		}
		delete(fields, "flag_keys")
		keys, _ := json.Marshal(only)
		fields["flag_keys_to_evaluate"] = keys
		if len(probe.Groups) == 0 && len(probe.DollarGroups) == 0 {
			fields["groups"] = json.RawMessage(`{}`)
		}
		var out bytes.Buffer
		enc := json.NewEncoder(&out)
		enc.SetEscapeHTML(false)
		if enc.Encode(fields) != nil {
			return body
		}
		return bytes.TrimSpace(out.Bytes())
	}
	if len(probe.Groups) > 0 || len(probe.DollarGroups) > 0 {
		return body
	}
	rest := bytes.TrimSpace(trimmed[1:])
	out := make([]byte, 0, len(trimmed)+14)
	out = append(out, `{"groups":{}`...)
	if len(rest) > 0 && rest[0] != '}' {
		out = append(out, ',')
	}
	return append(out, rest...)
}

// remote asks PostHog's POST /flags/?v=2 with body, retrying once on 502, 504
// or a transport error after remoteRetryDelay, as PostHog's SDKs do. The
// whole call, retry included, is bounded by the remote timeout. No
// Authorization header: /flags authenticates by the token in the body.
func (s *Service) remote(ctx context.Context, body []byte, ua string) (remoteAnswer, error) {
	u := s.host + "/flags/?v=2"
	s.mu.Lock()
	down, downErr := s.remoteDown, s.remoteErr
	s.mu.Unlock()
	if s.now().Before(down) {
		return remoteAnswer{}, fmt.Errorf("not retried yet after: %w", downErr)
	}
	ctx, cancel := context.WithTimeout(ctx, s.remoteTimeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		ans, fail, err := s.remoteOnce(ctx, u, body, ua)
		if fail == failTransport && !isCanceled(ctx) {
			// PostHog is unreachable: further calls fail fast for a while
			// instead of each waiting out the timeout.
			s.mu.Lock()
			s.remoteDown, s.remoteErr = s.now().Add(remoteCooldown), err
			s.mu.Unlock()
		}
		retry := fail == failRetryStatus || (fail == failTransport && !errors.Is(err, syscall.ECONNREFUSED) && ctx.Err() == nil)
		if err == nil || !retry || attempt == 1 {
			return ans, err
		}
		select {
		case <-ctx.Done():
			return remoteAnswer{}, err
		case <-s.after(remoteRetryDelay):
		}
	}
}

// How one attempt failed: it decides the retry and the fail-fast cooldown.
type failKind int

const (
	failNone        failKind = iota
	failFinal                // an answer not worth repeating (4xx, 500, 503, a bad body, a redirect)
	failRetryStatus          // 502 or 504, which the SDKs retry once
	failTransport            // no answer at all: refused, reset, timed out, DNS
)

// remoteOnce is one attempt.
func (s *Service) remoteOnce(ctx context.Context, u string, body []byte, ua string) (remoteAnswer, failKind, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return remoteAnswer{}, failFinal, fmt.Errorf("flags: POST %s: %w", u, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if ua == "" {
		ua = userAgent
	}
	// PostHog picks server-side vs client-side flags from the User-Agent,
	// so the caller's SDK User-Agent is forwarded as is.
	req.Header.Set("User-Agent", ua)
	resp, err := s.client.Do(req)
	if err != nil {
		return remoteAnswer{}, failTransport, fmt.Errorf("flags: POST %s: %w", u, withoutURL(err))
	}
	defer resp.Body.Close()
	switch code := resp.StatusCode; {
	case code == http.StatusPaymentRequired:
		return remoteAnswer{}, failFinal, fmt.Errorf("flags: POST %s: status 402: %w", u, ErrQuotaLimited)
	case code >= 300 && code < 400:
		return remoteAnswer{}, failFinal, redirectError("POST", u, resp)
	case code != http.StatusOK:
		kind := failFinal
		if code == http.StatusBadGateway || code == http.StatusGatewayTimeout {
			kind = failRetryStatus
		}
		return remoteAnswer{}, kind, &StatusError{Code: code, Err: fmt.Errorf("flags: POST %s: status %d%s", u, code, s.detail(resp.Body))}
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxRemoteBytes+1))
	if err != nil {
		return remoteAnswer{}, failTransport, fmt.Errorf("flags: POST %s: reading body: %w", u, err)
	}
	if len(raw) > maxRemoteBytes {
		return remoteAnswer{}, failFinal, fmt.Errorf("flags: POST %s: body larger than %d bytes", u, maxRemoteBytes)
	}
	ans, err := parseFlagsResponse(raw)
	if err != nil {
		return remoteAnswer{}, failFinal, fmt.Errorf("flags: POST %s: %w", u, err)
	}
	return ans, failNone, nil
}

// isCanceled: the caller went away (not a timeout), which says nothing
// about PostHog.
func isCanceled(ctx context.Context) bool {
	return errors.Is(ctx.Err(), context.Canceled)
}

// StatusError is a /flags answer other than 200, with its status, so the
// $feature_flag_called error can name it as the SDKs do (api_error_<code>).
type StatusError struct {
	Code int
	Err  error
}

func (e *StatusError) Error() string { return e.Err.Error() }
func (e *StatusError) Unwrap() error { return e.Err }

// redirectError: a 3xx is never followed. Following a redirect turns a POST
// into a GET (and a definitions request to another host would carry the
// personal key there); a host that redirects is a configuration to fix.
func redirectError(method, u string, resp *http.Response) error {
	loc := resp.Header.Get("Location")
	if loc == "" {
		loc = "(no Location header)"
	}
	return fmt.Errorf("flags: %s %s: status %d redirects to %s; redirects are not followed: set [posthog] host to the address PostHog answers on (usually the https:// one)",
		method, u, resp.StatusCode, loc)
}

func orEmpty[M ~map[K]V, K comparable, V any](m M) M {
	if m == nil {
		return M{}
	}
	return m
}

func parseFlagsResponse(raw []byte) (remoteAnswer, error) {
	var r flagsResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		return remoteAnswer{}, fmt.Errorf("response is not a /flags answer: %w", err)
	}
	if slices.Contains(r.QuotaLimited, "feature_flags") || slices.Contains(r.QuotaLimitedSnake, "feature_flags") {
		return remoteAnswer{}, ErrQuotaLimited
	}
	ans := remoteAnswer{flags: map[string]eval.Result{}, raw: map[string]json.RawMessage{},
		errorsWhileComputing: r.ErrorsWhileComputingFlags, requestID: r.RequestID, evaluatedAt: r.EvaluatedAt}
	if r.Flags != nil {
		for k, rawFlag := range r.Flags {
			res, err := parseV2Flag(k, rawFlag)
			if err != nil {
				return remoteAnswer{}, err
			}
			ans.flags[k], ans.raw[k] = res, rawFlag
		}
		return ans, nil
	}
	if len(r.FeatureFlags) == 0 || string(r.FeatureFlags) == "null" {
		return ans, nil
	}
	// Legacy: {key: true|false|"variant"}, or /decide v1's list of enabled keys.
	var values map[string]any
	if err := json.Unmarshal(r.FeatureFlags, &values); err != nil {
		var enabled []string
		if json.Unmarshal(r.FeatureFlags, &enabled) != nil {
			return remoteAnswer{}, fmt.Errorf("featureFlags is neither an object nor a list: %w", err)
		}
		values = map[string]any{}
		for _, k := range enabled {
			values[k] = true
		}
	}
	for k, v := range values {
		res := eval.Result{Key: k}
		switch v := v.(type) {
		case bool:
			res.Enabled = v
		case string:
			res.Enabled, res.Variant = true, v
		default:
			continue // not a flag value; leave it unanswered rather than guess
		}
		res.Payload = eval.DecodePayload(r.FeatureFlagPayloads[k])
		if res.Payload != nil {
			res.StoredPayload = r.FeatureFlagPayloads[k]
		}
		ans.flags[k] = res
	}
	return ans, nil
}
