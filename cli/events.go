package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
)

// sendEvent posts one event to the agent's /batch/ endpoint, exactly as an
// SDK would, and prints its uuid.
func sendEvent(e env, t *target, ev map[string]any) error {
	c, err := t.client()
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
	body, err := json.Marshal(map[string]any{"batch": []any{ev}})
	if err != nil {
		return err
	}
	ctx, cancel := callCtx()
	defer cancel()
	if err := c.Post(ctx, "/batch/", body, http.Header{"User-Agent": {"hogrelay-cli/" + Version}}); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, ev["uuid"])
	return nil
}

func runCapture(e env, args []string) error {
	fs := newFlagSet(e, "capture")
	t := addTarget(fs)
	distinctID := fs.String("distinct-id", "", "who did it (required)")
	event := fs.String("event", "", "event name (required)")
	ts := fs.String("timestamp", "", "when it happened, RFC3339 (default: now)")
	id := fs.String("uuid", "", "event uuid (default: a new uuid v7)")
	sendFlags := fs.Bool("send-feature-flags", false, "let the agent add $feature/<key> and $active_feature_flags from local evaluation")
	var props, set, setOnce, groups kvList
	fs.Var(&props, "property", "event property k=v (repeatable; JSON values keep their type)")
	fs.Var(&set, "set", "person property to $set, k=v (repeatable)")
	fs.Var(&setOnce, "set-once", "person property to $set_once, k=v (repeatable)")
	fs.Var(&groups, "group", "group type=key the event belongs to (repeatable)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *distinctID == "" || *event == "" {
		return errors.New("capture needs --distinct-id and --event")
	}
	ev, err := buildEvent(*distinctID, *event, *ts, *id, props, set, setOnce, groups)
	if err != nil {
		return err
	}
	if *sendFlags {
		ev["send_feature_flags"] = true
	}
	return sendEvent(e, t, ev)
}

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

func runIdentify(e env, args []string) error {
	fs := newFlagSet(e, "identify")
	t := addTarget(fs)
	distinctID := fs.String("distinct-id", "", "the person's id (required)")
	var set, setOnce kvList
	fs.Var(&set, "set", "person property k=v (repeatable)")
	fs.Var(&setOnce, "set-once", "person property set only if unset, k=v (repeatable)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *distinctID == "" {
		return errors.New("identify needs --distinct-id")
	}
	ev, err := buildEvent(*distinctID, "$identify", "", "", nil, set, setOnce, nil)
	if err != nil {
		return err
	}
	return sendEvent(e, t, ev)
}

func runAlias(e env, args []string) error {
	fs := newFlagSet(e, "alias")
	t := addTarget(fs)
	distinctID := fs.String("distinct-id", "", "the id to keep (required)")
	alias := fs.String("alias", "", "the other id to merge into it (required)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *distinctID == "" || *alias == "" {
		return errors.New("alias needs --distinct-id and --alias")
	}
	return sendEvent(e, t, map[string]any{
		"event": "$create_alias", "distinct_id": *distinctID,
		"properties": map[string]any{"distinct_id": *distinctID, "alias": *alias},
	})
}

func runGroupIdentify(e env, args []string) error {
	fs := newFlagSet(e, "group-identify")
	t := addTarget(fs)
	typ := fs.String("type", "", "group type, e.g. company (required)")
	key := fs.String("key", "", "group key, e.g. acme (required)")
	distinctID := fs.String("distinct-id", "", "distinct id to send it as (default: $<type>_<key>, as the SDKs do)")
	var props kvList
	fs.Var(&props, "property", "group property k=v (repeatable)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *typ == "" || *key == "" {
		return errors.New("group-identify needs --type and --key")
	}
	set, err := kvMap("property", props)
	if err != nil {
		return err
	}
	if set == nil {
		set = map[string]any{}
	}
	id := *distinctID
	if id == "" {
		id = "$" + *typ + "_" + *key
	}
	return sendEvent(e, t, map[string]any{
		"event": "$groupidentify", "distinct_id": id,
		"properties": map[string]any{"$group_type": *typ, "$group_key": *key, "$group_set": set},
	})
}

func runPageview(e env, args []string) error {
	fs := newFlagSet(e, "pageview")
	t := addTarget(fs)
	distinctID := fs.String("distinct-id", "", "who viewed (required)")
	url := fs.String("url", "", "the page's URL, sent as $current_url (required)")
	var props kvList
	fs.Var(&props, "property", "event property k=v (repeatable)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *distinctID == "" || *url == "" {
		return errors.New("pageview needs --distinct-id and --url")
	}
	ev, err := buildEvent(*distinctID, "$pageview", "", "", props, nil, nil, nil)
	if err != nil {
		return err
	}
	ev["properties"].(map[string]any)["$current_url"] = *url
	return sendEvent(e, t, ev)
}
