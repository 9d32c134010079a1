package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/hogrelay/hogrelay/client"
)

// eventTarget is how the event commands (capture, identify, alias,
// group-identify, pageview) reach the agent: its socket, and the project
// token to send when the agent has no [posthog] api_key of its own.
type eventTarget struct {
	*target
	token string
}

func addEventTarget(e env, fs *flag.FlagSet) *eventTarget {
	et := &eventTarget{target: addTarget(e, fs)}
	fs.StringVar(&et.token, "token", "", "project token (phc_…) to send the event under; needed when the agent's [posthog] api_key is empty")
	return et
}

// send posts one event to the agent's /batch/ endpoint, exactly as an SDK
// would, and prints its uuid.
func (et *eventTarget) send(ctx context.Context, e env, ev map[string]any) error {
	c, err := et.client()
	if err != nil {
		return err
	}
	if _, ok := ev["uuid"]; !ok {
		id, err := uuid.NewV7()
		if err != nil {
			return err
		}
		ev["uuid"] = id.String()
	}
	props, _ := ev["properties"].(map[string]any)
	if props == nil {
		props = map[string]any{}
		ev["properties"] = props
	}
	props["$lib"] = "hogrelay-cli"
	props["$lib_version"] = Version
	batch := map[string]any{"batch": []any{ev}}
	if et.token != "" {
		batch["api_key"] = et.token
	}
	body, err := json.Marshal(batch)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, client.Timeout)
	defer cancel()
	if err := c.Post(ctx, "/batch/", body, http.Header{"User-Agent": {"hogrelay-cli/" + Version}}); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, ev["uuid"])
	return nil
}

// buildEvent assembles an event from the commands' flags.
func buildEvent(distinctID, name, ts, id string, props, set, setOnce, groups kvList) (map[string]any, error) {
	p, err := kvMap("property", props)
	if err != nil {
		return nil, err
	}
	if p == nil {
		p = map[string]any{}
	}
	ev := map[string]any{"event": name, "distinct_id": distinctID, "properties": p}
	if ts != "" {
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return nil, fmt.Errorf("--timestamp %q is not RFC3339 (e.g. 2026-11-27T10:00:00Z)", ts)
		}
		ev["timestamp"] = t.UTC().Format(time.RFC3339Nano)
	}
	if id != "" {
		if _, err := uuid.Parse(id); err != nil {
			return nil, fmt.Errorf("--uuid %q is not a UUID", id)
		}
		ev["uuid"] = id
	}
	if s, err := kvMap("set", set); err != nil {
		return nil, err
	} else if s != nil {
		ev["$set"] = s
	}
	if s, err := kvMap("set-once", setOnce); err != nil {
		return nil, err
	} else if s != nil {
		ev["$set_once"] = s
	}
	g, err := groupMap(groups)
	if err != nil {
		return nil, err
	}
	if g != nil {
		p["$groups"] = g
	}
	return ev, nil
}
