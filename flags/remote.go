package flags

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/hogrelay/hogrelay/flags/eval"
)

// flagsRequest is the body of POST /flags/?v=2 (wire contract §3.2).
type flagsRequest struct {
	Token            string                    `json:"token"`
	DistinctID       string                    `json:"distinct_id"`
	DeviceID         string                    `json:"device_id,omitempty"`
	Groups           map[string]string         `json:"groups"`
	PersonProperties map[string]any            `json:"person_properties"`
	GroupProperties  map[string]map[string]any `json:"group_properties"`
	// The agent is not where the end user is: GeoIP would locate the VM.
	GeoIPDisable bool     `json:"geoip_disable"`
	FlagKeys     []string `json:"flag_keys_to_evaluate,omitempty"`
}

// flagsResponse covers the v2 shape and the legacy v1/v3 one (§3.3), since
// a proxy or an older self-hosted PostHog may answer either.
type flagsResponse struct {
	Flags                     map[string]remoteFlag      `json:"flags"`
	FeatureFlags              json.RawMessage            `json:"featureFlags"`
	FeatureFlagPayloads       map[string]json.RawMessage `json:"featureFlagPayloads"`
	ErrorsWhileComputingFlags bool                       `json:"errorsWhileComputingFlags"`
	QuotaLimited              []string                   `json:"quotaLimited"`
	QuotaLimitedSnake         []string                   `json:"quota_limited"` // what posthog-go reads
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

// remoteAnswer is what /flags said, already in eval's types.
type remoteAnswer struct {
	flags                map[string]eval.Result
	errorsWhileComputing bool
}

// remoteBlocked says why remote evaluation is not allowed, or "" if it is.
// Without a personal key the agent is configured as local-only, so it does
// not call /flags either.
func (s *Service) remoteBlocked(onlyLocal bool) string {
	switch {
	case onlyLocal || s.onlyLocal:
		return "only_evaluate_locally is set"
	case s.host == "":
		return "there is no PostHog host"
	case s.token == "":
		return "there is no project API key"
	case s.key == "":
		return "there is no personal API key"
	}
	return ""
}

// remote asks PostHog's /flags for keys (nil = every flag).
func (s *Service) remote(ctx context.Context, in eval.Input, ua string, keys []string) (remoteAnswer, error) {
	u := s.host + "/flags/?v=2"
	s.mu.Lock()
	down, downErr := s.remoteDown, s.remoteErr
	s.mu.Unlock()
	if s.now().Before(down) {
		return remoteAnswer{}, fmt.Errorf("not retried yet after: %w", downErr)
	}
	body, err := json.Marshal(flagsRequest{
		Token:            s.token,
		DistinctID:       in.DistinctID,
		DeviceID:         in.DeviceID,
		Groups:           orEmpty(in.Groups),
		PersonProperties: orEmpty(in.PersonProperties),
		GroupProperties:  orEmpty(in.GroupProperties),
		GeoIPDisable:     true,
		FlagKeys:         keys,
	})
	if err != nil {
		return remoteAnswer{}, fmt.Errorf("flags: encoding /flags request: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.remoteTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return remoteAnswer{}, fmt.Errorf("flags: POST %s: %w", u, err)
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
		err = fmt.Errorf("flags: POST %s: %w", u, err)
		if ctx.Err() == nil || ctx.Err() == context.DeadlineExceeded {
			s.mu.Lock()
			s.remoteDown, s.remoteErr = s.now().Add(remoteCooldown), err
			s.mu.Unlock()
		}
		return remoteAnswer{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusPaymentRequired {
		return remoteAnswer{}, fmt.Errorf("flags: POST %s: status 402: %w", u, ErrQuotaLimited)
	}
	if resp.StatusCode != http.StatusOK {
		return remoteAnswer{}, fmt.Errorf("flags: POST %s: status %d%s", u, resp.StatusCode, s.detail(resp.Body))
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxRemoteBytes+1))
	if err != nil {
		return remoteAnswer{}, fmt.Errorf("flags: POST %s: reading body: %w", u, err)
	}
	if len(raw) > maxRemoteBytes {
		return remoteAnswer{}, fmt.Errorf("flags: POST %s: body larger than %d bytes", u, maxRemoteBytes)
	}
	ans, err := parseFlagsResponse(raw)
	if err != nil {
		return remoteAnswer{}, fmt.Errorf("flags: POST %s: %w", u, err)
	}
	return ans, nil
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
	ans := remoteAnswer{flags: map[string]eval.Result{}, errorsWhileComputing: r.ErrorsWhileComputingFlags}
	if r.Flags != nil {
		for k, f := range r.Flags {
			res := eval.Result{Key: k, Enabled: f.Enabled, ID: f.Metadata.ID, Version: f.Metadata.Version,
				Payload: eval.DecodePayload(f.Metadata.Payload)}
			if res.Payload != nil {
				res.StoredPayload = f.Metadata.Payload
			}
			if f.Variant != nil {
				res.Variant = *f.Variant
			}
			if f.Reason != nil {
				res.Reason = eval.Reason{Code: f.Reason.Code, ConditionIndex: f.Reason.ConditionIndex, Description: f.Reason.Description}
			}
			ans.flags[k] = res
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
