package eval

import (
	"fmt"
	"testing"
)

// A typical flag: three person property filters and a partial rollout.
func typicalFlag(key string) obj {
	return flag(key, cond(50,
		prop("email", "icontains", "@example.com"),
		prop("plan", "exact", arr{"pro", "team"}),
		prop("age", "gte", 18),
	))
}

var typicalInput = Input{
	DistinctID: "user-123456",
	PersonProperties: map[string]any{
		"email": "someone@Example.com", "plan": "team", "age": 31.0, "country": "NL",
	},
}

func BenchmarkEvaluateTypicalFlag(b *testing.B) {
	e := defs(b, arr{typicalFlag("typical")})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Evaluate("typical", typicalInput); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEvaluateAll50(b *testing.B) {
	var flags arr
	for i := range 40 {
		flags = append(flags, typicalFlag(fmt.Sprintf("typical-%d", i)))
	}
	for i := range 5 {
		flags = append(flags, multivariateFlag(fmt.Sprintf("mv-%d", i), cond(100, prop("country", "exact", "NL"))))
	}
	for i := range 5 {
		flags = append(flags, flag(fmt.Sprintf("dep-%d", i), cond(100, depProp(fmt.Sprintf("typical-%d", i), true))))
	}
	e := defs(b, flags)
	b.ReportAllocs()
	for b.Loop() {
		res, incon := e.EvaluateAll(typicalInput)
		if len(res) != 50 || len(incon) != 0 {
			b.Fatal(len(res), incon)
		}
	}
}
