package flags

import (
	"context"
	"encoding/json"
	"sort"
	"strings"

	"github.com/hogrelay/hogrelay/flags/eval"
)

// CaptureProperties answers capture's send_feature_flags: the flag
// properties ($feature/<key>, $active_feature_flags) for an event of
// distinctID in groups, as the inside of a JSON object ("" adds nothing).
// Like the SDKs' capture(send_feature_flags=True), what local evaluation
// cannot decide is asked of PostHog's /flags (bounded by the remote timeout,
// failing fast while PostHog is unreachable, answered from the answer cache
// then). Flags nobody could answer are left out, as the SDKs leave out
// flags they could not evaluate.
func (s *Service) CaptureProperties(distinctID string, groups map[string]string) string {
	all, err := s.All(context.Background(), Ask{
		Input: eval.Input{DistinctID: distinctID, Groups: groups}, UserAgent: userAgent,
	})
	if err != nil && len(all.Flags) == 0 {
		return ""
	}
	return featureProperties(all.Flags)
}

// featureProperties writes the properties the SDKs add for send_feature_flags.
func featureProperties(flags map[string]eval.Result) string {
	keys := make([]string, 0, len(flags))
	for k := range flags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	active := make([]string, 0, len(keys))
	for _, k := range keys {
		v, _ := json.Marshal(flags[k].Value())
		name, _ := json.Marshal("$feature/" + k)
		b.Write(name)
		b.WriteByte(':')
		b.Write(v)
		b.WriteByte(',')
		if flags[k].Enabled {
			active = append(active, k)
		}
	}
	list, _ := json.Marshal(active)
	b.WriteString(`"$active_feature_flags":`)
	b.Write(list)
	return b.String()
}
