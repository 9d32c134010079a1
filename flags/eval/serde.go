package eval

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// refusedByService reports why PostHog's flags service would fail to decode a
// flag's filters, or "" when it decodes them. The service deserializes
// filters into its FlagFilters (flag_models.rs) with serde, which refuses a
// missing required field or a value of the wrong type, and then skips the
// whole flag (FeatureFlagList::from_pg: "one bad property filter costs the
// entire flag"), so such a flag is never served. Extra keys are ignored, as
// serde ignores them, and payloads may be any value (Option<Value>).
//
// One refusal is not reproduced: an operator or property type this package
// does not know might be one a newer service knows, so those stay
// inconclusive (ask PostHog) instead of making the flag vanish.
func refusedByService(filters json.RawMessage) string {
	f, ok := object(filters)
	if !ok {
		return "filters is not an object"
	}
	if why := groupList(f["groups"], "groups", false); why != "" {
		return why
	}
	if why := groupList(f["super_groups"], "super_groups", true); why != "" {
		return why
	}
	if !optional(f["aggregation_group_type_index"], isInt32) {
		return "aggregation_group_type_index is not an integer"
	}
	if !optional(f["feature_enrollment"], isBool) {
		return "feature_enrollment is not a boolean"
	}
	if raw := f["multivariate"]; !absentOrNull(raw) {
		mv, ok := object(raw)
		if !ok {
			return "multivariate is not an object"
		}
		vs, ok := array(mv["variants"])
		if !ok {
			return "multivariate.variants is not a list"
		}
		for i, rv := range vs {
			v, ok := object(rv)
			switch {
			case !ok:
				return fmt.Sprintf("variant %d is not an object", i)
			case !isString(v["key"]):
				return fmt.Sprintf("variant %d has no string key", i)
			case !isNumber(v["rollout_percentage"]):
				return fmt.Sprintf("variant %d has no numeric rollout_percentage", i)
			case !optional(v["name"], isString):
				return fmt.Sprintf("variant %d name is not a string", i)
			}
		}
	}
	if raw := f["holdout"]; !absentOrNull(raw) {
		if _, err := compileHoldout(raw); err != nil {
			return err.Error()
		}
	}
	return ""
}

// groupList checks a list of condition groups (FlagPropertyGroup).
func groupList(raw json.RawMessage, name string, nullable bool) string {
	if len(raw) == 0 || (nullable && isNull(raw)) {
		return ""
	}
	gs, ok := array(raw)
	if !ok {
		return name + " is not a list"
	}
	for i, rg := range gs {
		g, ok := object(rg)
		if !ok {
			return fmt.Sprintf("%s[%d] is not an object", name, i)
		}
		switch {
		case !optional(g["rollout_percentage"], isNumber):
			return fmt.Sprintf("%s[%d].rollout_percentage is not a number", name, i)
		case !optional(g["variant"], isString):
			return fmt.Sprintf("%s[%d].variant is not a string", name, i)
		case !optional(g["aggregation_group_type_index"], isInt32):
			return fmt.Sprintf("%s[%d].aggregation_group_type_index is not an integer", name, i)
		}
		if rp := g["properties"]; !absentOrNull(rp) {
			ps, ok := array(rp)
			if !ok {
				return fmt.Sprintf("%s[%d].properties is not a list", name, i)
			}
			for j, p := range ps {
				if why := propertyFilter(p); why != "" {
					return fmt.Sprintf("%s[%d].properties[%d]: %s", name, i, j, why)
				}
			}
		}
	}
	return ""
}

// propertyFilter checks one PropertyFilter (property_models.rs): key and
// type are required, type has no default.
func propertyFilter(raw json.RawMessage) string {
	p, ok := object(raw)
	switch {
	case !ok:
		return "not an object"
	case !isString(p["key"]):
		return "key is not a string"
	case !isString(p["type"]) || string(bytes.TrimSpace(p["type"])) == `""`:
		return "no type"
	case !optional(p["operator"], isString):
		return "operator is not a string"
	case !optional(p["negation"], isBool):
		return "negation is not a boolean"
	case !optional(p["group_type_index"], isInt32):
		return "group_type_index is not an integer"
	}
	return ""
}

func object(raw json.RawMessage) (map[string]json.RawMessage, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, false
	}
	var m map[string]json.RawMessage
	return m, json.Unmarshal(raw, &m) == nil
}

func array(raw json.RawMessage) ([]json.RawMessage, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '[' {
		return nil, false
	}
	var a []json.RawMessage
	return a, json.Unmarshal(raw, &a) == nil
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

func absentOrNull(raw json.RawMessage) bool { return len(raw) == 0 || isNull(raw) }

// optional: an Option<T> field, absent, null or a T.
func optional(raw json.RawMessage, is func(json.RawMessage) bool) bool {
	return absentOrNull(raw) || is(raw)
}

func isString(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '"'
}

func isBool(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return bytes.Equal(raw, []byte("true")) || bytes.Equal(raw, []byte("false"))
}

func isNumber(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return false
	}
	_, err := strconv.ParseFloat(string(raw), 64)
	return err == nil || isRangeErr(err)
}

// isInt32: serde's i32 takes an integer literal in range, not 1.0.
func isInt32(raw json.RawMessage) bool {
	_, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 32)
	return err == nil
}
