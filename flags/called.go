package flags

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/hogrelay/hogrelay/flags/eval"
)

// Called is one flag answer a caller looked at, the input to a
// $feature_flag_called event.
type Called struct {
	DistinctID string
	Groups     map[string]string
	Result     eval.Result
	Local      bool // the answer came from local evaluation
}

// CalledEvents builds $feature_flag_called events the way PostHog's SDKs
// send them: once per distinct id, flag and value, remembered up to a bound
// (the oldest are forgotten first, as the SDKs' bounded caches do).
// It is safe for concurrent use.
type CalledEvents struct {
	mu    sync.Mutex
	seen  map[string]struct{}
	order []string // ring of keys, oldest at next
	next  int
	now   func() time.Time
}

// NewCalledEvents remembers up to n reported (distinct id, flag, value) triples.
func NewCalledEvents(n int) *CalledEvents {
	n = max(n, 1)
	return &CalledEvents{seen: make(map[string]struct{}, n), order: make([]string, n), now: time.Now}
}

// Event returns the event to capture for c, or ok false when this distinct
// id was already reported with this flag value.
func (e *CalledEvents) Event(c Called) (ev []byte, ok bool, err error) {
	res := c.Result
	value := res.Value()
	valueJSON, err := json.Marshal(value)
	if err != nil {
		return nil, false, fmt.Errorf("flags: $feature_flag_called for %q: encoding the value: %w", res.Key, err)
	}
	if !e.firstTime(c.DistinctID + "\x00" + res.Key + "\x00" + string(valueJSON)) {
		return nil, false, nil
	}
	props := map[string]any{
		"$feature_flag": res.Key, "$feature_flag_response": value, "locally_evaluated": c.Local,
		"$feature_flag_id": res.ID, "$feature_flag_version": res.Version, "$feature_flag_reason": res.Reason.Description,
		"$feature/" + res.Key: value, "$lib": "hogrelay",
	}
	if len(c.Groups) > 0 {
		props["$groups"] = c.Groups
	}
	ev, err = json.Marshal(map[string]any{
		"uuid": newV7(), "event": "$feature_flag_called", "distinct_id": c.DistinctID,
		"timestamp": e.now().UTC().Format("2006-01-02T15:04:05.000Z"), "properties": props,
	})
	if err != nil {
		return nil, false, fmt.Errorf("flags: $feature_flag_called for %q: %w", res.Key, err)
	}
	return ev, true, nil
}

func (e *CalledEvents) firstTime(k string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.seen[k]; ok {
		return false
	}
	if old := e.order[e.next]; old != "" {
		delete(e.seen, old)
	}
	e.order[e.next] = k
	e.next = (e.next + 1) % len(e.order)
	e.seen[k] = struct{}{}
	return true
}

func newV7() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}
