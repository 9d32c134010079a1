package flags

import (
	"encoding/json"
	"fmt"

	"github.com/hogrelay/hogrelay/flags/eval"
)

// WireFlag is one flag in PostHog's /flags v2 answer (flags.<key>), as typed
// structs: encoding a map[string]any per flag cost more than evaluating the
// flags (see bench/flags_test.go).
type WireFlag struct {
	Key      string       `json:"key"`
	Enabled  bool         `json:"enabled"`
	Variant  *string      `json:"variant"`
	Reason   WireReason   `json:"reason"`
	Metadata WireMetadata `json:"metadata"`
}

// WireReason is a v2 flag's reason.
type WireReason struct {
	Code           string `json:"code"`
	ConditionIndex *int   `json:"condition_index"`
	Description    string `json:"description"`
}

// WireMetadata is a v2 flag's metadata; the payload is the JSON-encoded
// string PostHog serves, or null.
type WireMetadata struct {
	ID          int64   `json:"id"`
	Version     int64   `json:"version"`
	Description *string `json:"description"`
	Payload     *string `json:"payload"`
}

// WireFlagOf is res in the v2 wire shape.
func WireFlagOf(res eval.Result) WireFlag {
	f := WireFlag{
		Key: res.Key, Enabled: res.Enabled,
		Reason:   WireReason{Code: res.Reason.Code, ConditionIndex: res.Reason.ConditionIndex, Description: res.Reason.Description},
		Metadata: WireMetadata{ID: res.ID, Version: res.Version, Payload: PayloadString(res)},
	}
	if res.Variant != "" {
		f.Variant = &res.Variant
	}
	return f
}

// PayloadString returns the payload the way PostHog's answers carry it: the
// stored text, which is a JSON-encoded string (nil for none).
func PayloadString(res eval.Result) *string {
	p := res.StoredPayload
	if len(p) == 0 {
		p = res.Payload
	}
	if len(p) == 0 || string(p) == "null" {
		return nil
	}
	if p[0] == '"' {
		var s string
		if err := json.Unmarshal(p, &s); err == nil {
			return &s
		}
	}
	s := string(p)
	return &s
}

// parseV2Flag reads one v2 flag object.
func parseV2Flag(key string, raw json.RawMessage) (eval.Result, error) {
	var f remoteFlag
	if err := json.Unmarshal(raw, &f); err != nil {
		return eval.Result{}, fmt.Errorf("flag %q in the answer: %w", key, err)
	}
	res := eval.Result{Key: key, Enabled: f.Enabled, ID: f.Metadata.ID, Version: f.Metadata.Version,
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
	return res, nil
}
