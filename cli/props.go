package cli

import (
	"encoding/json"
	"fmt"
	"strings"
)

// parseValue keeps JSON types where the text is JSON (n=3, ok=true,
// tags=["a"]); anything else is a string.
func parseValue(s string) any {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err == nil {
		return v
	}
	return s
}

// kvMap turns k=v flags into a property map.
func kvMap(flagName string, list []string) (map[string]any, error) {
	if len(list) == 0 {
		return nil, nil
	}
	m := make(map[string]any, len(list))
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--%s %q: expected key=value", flagName, kv)
		}
		m[k] = parseValue(v)
	}
	return m, nil
}

// groupMap turns --group type=key flags into {type: key}.
func groupMap(list []string) (map[string]string, error) {
	if len(list) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(list))
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("--group %q: expected type=key (e.g. company=acme)", kv)
		}
		m[k] = v
	}
	return m, nil
}

// groupPropMap turns --group-property type.k=v flags into {type: {k: v}}.
func groupPropMap(list []string) (map[string]map[string]any, error) {
	if len(list) == 0 {
		return nil, nil
	}
	m := map[string]map[string]any{}
	for _, kv := range list {
		tk, v, ok := strings.Cut(kv, "=")
		typ, k, ok2 := strings.Cut(tk, ".")
		if !ok || !ok2 || typ == "" || k == "" {
			return nil, fmt.Errorf("--group-property %q: expected type.key=value (e.g. company.plan=pro)", kv)
		}
		if m[typ] == nil {
			m[typ] = map[string]any{}
		}
		m[typ][k] = parseValue(v)
	}
	return m, nil
}
