// Package eval evaluates PostHog feature flags locally from a /flags/definitions
// document, with the same answers PostHog's own flags service would give.
//
// It is pure: definitions JSON in, flag answers out; no I/O and no clock other
// than an injectable one for relative dates. When a flag cannot be decided
// from the definitions and the given properties alone, Evaluate returns an
// error wrapping ErrInconclusive so the caller can ask PostHog remotely.
package eval

import (
	"encoding/json"
	"errors"
)

// ErrInconclusive means the flag cannot be decided locally; ask PostHog's /flags.
var ErrInconclusive = errors.New("cannot be evaluated locally")

// ErrUnknownFlag means the definitions have no flag with that key.
var ErrUnknownFlag = errors.New("no such flag")

// Input is what is known about the subject of an evaluation.
type Input struct {
	DistinctID       string
	DeviceID         string                    // for bucketing_identifier == "device_id"
	Groups           map[string]string         // group type -> group key
	PersonProperties map[string]any            // as decoded by encoding/json; json.Number and Go ints accepted too
	GroupProperties  map[string]map[string]any // group type -> properties
}

// Reason says why a flag has its value; codes are PostHog's.
type Reason struct {
	Code           string
	ConditionIndex *int
	Description    string
}

// Result is one flag's answer.
type Result struct {
	Key     string
	Enabled bool
	Variant string          // "" = none
	Payload json.RawMessage // nil = none
	Reason  Reason
	ID      int64
	Version int64
}

// Value is what PostHog SDKs return for a flag: the variant if there is one, else Enabled.
func (r Result) Value() any {
	if r.Variant != "" {
		return r.Variant
	}
	return r.Enabled
}

// FlagInfo describes a compiled flag.
type FlagInfo struct {
	Key                        string
	ID                         int64
	Version                    int64
	Active                     bool
	EnsureExperienceContinuity bool
	GroupType                  string // "" for person flags
	HasPayloads                bool
}

// Evaluator holds compiled definitions. It is immutable after Compile and safe for concurrent use.
type Evaluator struct {
	keys []string
}

// Compile parses a /flags/definitions response.
func Compile(raw []byte) (*Evaluator, error) {
	return &Evaluator{}, nil
}

// Keys returns the flag keys in definition order.
func (e *Evaluator) Keys() []string { return append([]string(nil), e.keys...) }

// Len returns the number of flags.
func (e *Evaluator) Len() int { return len(e.keys) }

// Flag describes one flag.
func (e *Evaluator) Flag(key string) (FlagInfo, bool) { return FlagInfo{}, false }

// Evaluate answers one flag.
func (e *Evaluator) Evaluate(key string, in Input) (Result, error) {
	return Result{}, ErrInconclusive
}

// EvaluateAll answers every flag; flags that cannot be decided locally are in inconclusive.
func (e *Evaluator) EvaluateAll(in Input) (results map[string]Result, inconclusive map[string]error) {
	return map[string]Result{}, map[string]error{}
}
