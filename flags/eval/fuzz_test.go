package eval

import (
	"fmt"
	"regexp"
	"testing"
)

// FuzzCompile feeds arbitrary definitions to Compile and, when they compile,
// evaluates every flag: neither may panic.
func FuzzCompile(f *testing.F) {
	f.Add([]byte(`{"flags":[{"key":"a","active":true,"filters":{"groups":[{"properties":[{"key":"x","operator":"regex","value":"(","type":"person"}],"rollout_percentage":50}]}}]}`))
	f.Add([]byte(`{"flags":[{"key":"g","active":true,"filters":{"aggregation_group_type_index":0,"groups":[{"properties":[{"key":"id","type":"cohort","value":1}]}],"multivariate":{"variants":[{"key":"a","rollout_percentage":100}]},"payloads":{"a":"{"}}}],"group_type_mapping":{"0":"company"},"cohorts":{"1":{"type":"OR","values":[{"type":"AND","values":[{"key":"d","operator":"is_date_after","value":"-3m","type":"person"}]}]}}}`))
	f.Add([]byte(`{"flags":[{"key":"d","active":true,"filters":{"groups":[{"properties":[{"key":"d","type":"flag","value":true,"operator":"flag_evaluates_to"}]}]}}]}`))
	f.Add([]byte(`{"flags":[{"key":"s","active":true,"filters":{"groups":[{"properties":[{"key":"v","operator":"semver_wildcard","value":"1.*.x"},{"key":"v","operator":"semver_caret","value":"0.0.0-0"}]}]}}]}`))
	f.Add([]byte(`{"flags":null,"cohorts":{"x":{"values":[{"values":[{"values":[]}]}]}}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"property_matching_version":2,"flags":[{"key":"u","active":true,"filters":{"payloads":"x","groups":[{"properties":[{"key":"x","operator":"regex","value":"^[\\d\\W]+\\b$","type":"person"},{"key":"d","operator":"is_date_before","value":"06/14/2024 1:05 PM","type":"person"},{"key":"$group_key","operator":"exact","value":[false,"a"],"type":"group","group_type_index":7}]}]}}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, err := Compile(raw)
		if err != nil {
			return
		}
		in := Input{
			DistinctID: "u", DeviceID: "d",
			Groups:           map[string]string{"company": "acme"},
			PersonProperties: map[string]any{"x": "1.2.3", "v": 3.5, "d": "2024-01-01", "n": nil, "l": []any{"a", 1.0}},
			GroupProperties:  map[string]map[string]any{"company": {"x": true}},
		}
		for _, k := range e.Keys() {
			_, _ = e.Evaluate(k, in)
			_, _ = e.Flag(k)
		}
		_, _ = e.EvaluateAll(in)
		_ = fmt.Sprint(e.Len())
	})
}

// FuzzUnicodeRegex: a pattern RE2 accepts still compiles once its classes are
// made Unicode-aware, and the rewrite never panics.
func FuzzUnicodeRegex(f *testing.F) {
	for _, p := range []string{`\d+`, `[\w-]+@\S+`, `[^\s\d]`, `\bfoo\B`, `\p{Greek}\pL[\p{Lu}\d]`, `[]\d]`, `[^]\w]`, `[[:alpha:]\d]`, `\\d`, `(?i)\W`} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		out, _ := unicodeRegex(p)
		if _, err := regexp.Compile(p); err != nil {
			return
		}
		if _, err := regexp.Compile(out); err != nil {
			t.Fatalf("%q compiles but its rewrite %q does not: %v", p, out, err)
		}
	})
}
