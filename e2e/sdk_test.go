package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

// TestSDKPosthogNodeCompat runs an unmodified posthog-node (pinned in
// e2e/sdk/package-lock.json) against the real agent over its loopback TCP
// listener. One client evaluates locally from the definitions it polls from
// the agent; the other sends every flag question to the agent's /flags, which
// answers from hogrelay's own evaluator. Both must agree on every flag for
// every subject, and what the SDK captured must reach PostHog.
//
// The definitions stay within semantics where PostHog's flags service and
// posthog-node agree; the comment above sdkFlagDefinitions lists the cases
// where they do not, and what each side answers.
func TestSDKPosthogNodeCompat(t *testing.T) {
	sdkDir, nodeBin := sdkRequireNode(t)

	defs := sdkFlagDefinitions()
	var doc struct {
		Flags []struct {
			Key string `json:"key"`
		} `json:"flags"`
	}
	require.NoError(t, json.Unmarshal(defs, &doc))
	flagKeys := make([]string, len(doc.Flags))
	for i, f := range doc.Flags {
		flagKeys[i] = f.Key
	}

	up, err := fakeposthog.New(fakeposthog.Options{FlagDefinitions: defs})
	require.NoError(t, err)
	t.Cleanup(func() { _ = up.Close() })
	// What hogrelay cannot decide locally it asks PostHog's /flags. The fake
	// answers every such question with a variant no definition has, so the
	// test sees which flags the agent deferred.
	up.SetFlagsHandler(func(body map[string]any) (int, any) {
		out := map[string]any{}
		keys, _ := body["flag_keys_to_evaluate"].([]any)
		for _, k := range keys {
			ks, _ := k.(string)
			out[ks] = map[string]any{"key": ks, "enabled": true, "variant": sdkUpstreamVariant,
				"reason":   map[string]any{"code": "condition_match", "condition_index": 0, "description": "upstream"},
				"metadata": map[string]any{"id": 1, "version": 1, "payload": nil}}
		}
		return 200, map[string]any{"flags": out, "errorsWhileComputingFlags": false, "requestId": "00000000-0000-4000-8000-000000000000"}
	})

	a := startAgent(t, up, `listen.http = "127.0.0.1:0"`, `flags.poll_interval = "1h"`)
	host := sdkAgentURL(a)
	require.Eventually(t, func() bool {
		fl, _ := a.status()["flags"].(map[string]any)
		n, _ := fl["flag_count"].(float64)
		return int(n) == len(flagKeys)
	}, 20*time.Second, 20*time.Millisecond, "the agent did not load the %d flag definitions", len(flagKeys))

	subjects := sdkSubjects(200)
	eventsFor := []string{subjects[0].DistinctID, subjects[1].DistinctID, subjects[2].DistinctID, subjects[3].DistinctID}
	captureUUIDs := []string{
		"01970000-0000-7000-8000-00000000c001", "01970000-0000-7000-8000-00000000c002",
		"01970000-0000-7000-8000-00000000c003", "01970000-0000-7000-8000-00000000c004",
	}
	// The capture checks use a subject in groups, so group flags are on it.
	capSubject := subjects[0]
	for _, s := range subjects {
		if s.Groups["company"] != "" && s.Groups["project"] != "" {
			capSubject = s
			break
		}
	}
	input := map[string]any{
		"host": host, "projectKey": projectKey, "personalKey": personalKey,
		"flagKeys": flagKeys, "subjects": subjects, "eventsFor": eventsFor,
		"captures": map[string]any{
			"distinctId": capSubject.DistinctID, "company": "company-compat", "alias": "compat-alias",
			"uuids": captureUUIDs, "timestamp": "2026-03-04T05:06:07.890Z",
			"personProperties": capSubject.PersonProperties,
			"groups":           capSubject.Groups, "groupProperties": capSubject.GroupProperties,
		},
	}
	dir := t.TempDir()
	inPath, outPath := filepath.Join(dir, "input.json"), filepath.Join(dir, "output.json")
	b, err := json.Marshal(input)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(inPath, b, 0o600))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeBin, "compat.mjs", inPath, outPath)
	cmd.Dir = sdkDir
	// posthog-node's default transport is /batch/; keep a stray
	// POSTHOG_CAPTURE_MODE=v1 in the environment from switching it.
	cmd.Env = append(os.Environ(), "POSTHOG_CAPTURE_MODE=")
	start := time.Now()
	combined, err := cmd.CombinedOutput()
	require.NoError(t, err, "node compat.mjs failed:\n%s", tail(string(combined), 80))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node compat.mjs output:\n%s", tail(string(combined), 40))
		}
	})
	t.Logf("posthog-node run took %s", time.Since(start).Round(time.Millisecond))

	var out sdkOutput
	raw, err := os.ReadFile(outPath)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &out))
	require.True(t, out.Ready)
	require.Empty(t, out.Errors, "posthog-node reported errors")
	t.Logf("posthog-node %s", out.SDKVersion)

	// Where each client sent its requests.
	sdkCheckRequests(t, host, out)

	// (a) and (b): every subject × flag, value and payload.
	require.Len(t, out.Results, len(subjects))
	var mismatches []string
	counts := map[string]int{}
	nodeDiffers := map[string]int{} // named differences: subjects on which posthog-node differs
	for _, s := range subjects {
		r, ok := out.Results[s.DistinctID]
		require.True(t, ok, "no results for %s", s.DistinctID)
		for _, k := range flagKeys {
			lv, rv := r.Local[k], r.Remote[k]
			lp, rp := r.LocalPayload[k], r.RemotePayload[k]
			if d, ok := sdkServiceDifferences[k]; ok {
				problem, differs := sdkCheckDifference(d, s, lv, rv)
				if problem != "" {
					mismatches = append(mismatches, fmt.Sprintf("flag %q, %s: %s\n    subject: %s", k, s.DistinctID, problem, s.describe()))
				}
				if differs {
					nodeDiffers[k]++
				}
				counts["named differences"]++
				continue
			}
			if sdkLeftOutByFlags[k] {
				if problem := sdkCheckLeftOut(r, k); problem != "" {
					mismatches = append(mismatches, fmt.Sprintf("flag %q, %s: %s", k, s.DistinctID, problem))
				}
				counts["left out by /flags"]++
				continue
			}
			if problem := sdkCompareAnswer(lv, rv); problem != "" {
				mismatches = append(mismatches, fmt.Sprintf("flag %q, %s: value %s: local posthog-node=%s, agent /flags=%s\n    subject: %s",
					k, s.DistinctID, problem, lv, rv, s.describe()))
			}
			if problem := sdkComparePayload(lv, lp, rp); problem != "" {
				mismatches = append(mismatches, fmt.Sprintf("flag %q, %s: payload %s: local posthog-node=%s, agent /flags=%s (value %s)\n    subject: %s",
					k, s.DistinctID, problem, lp, rp, lv, s.describe()))
			}
			counts[sdkClassify(lv)]++
			// getAllFlags must say what getFeatureFlag said.
			if la, ok := r.LocalAll[k]; ok || string(lv) != sdkUndefinedJSON {
				if !sdkJSONEqual(la, lv) {
					mismatches = append(mismatches, fmt.Sprintf("flag %q, %s: local getAllFlags=%s but getFeatureFlag=%s", k, s.DistinctID, la, lv))
				}
			}
			if ra, ok := r.RemoteAll[k]; !ok || !sdkJSONEqual(ra, rv) {
				mismatches = append(mismatches, fmt.Sprintf("flag %q, %s: agent getAllFlags=%s but getFeatureFlag=%s", k, s.DistinctID, ra, rv))
			}
		}
	}
	t.Logf("compared %d subjects × %d flags: %v", len(subjects), len(flagKeys), counts)
	for k, d := range sdkServiceDifferences {
		if nodeDiffers[k] == 0 {
			mismatches = append(mismatches, fmt.Sprintf("named difference %q: posthog-node now answers as the service for every subject; "+
				"move it to the compared flags (%s)", k, d.why))
		}
		t.Logf("named difference %q: posthog-node differs from the service for %d of %d subjects: %s", k, nodeDiffers[k], len(subjects), d.why)
	}
	if len(mismatches) > 0 {
		const show = 40
		msg := strings.Join(mismatches[:min(show, len(mismatches))], "\n")
		t.Fatalf("%d disagreements between posthog-node's local evaluation and the agent:\n%s", len(mismatches), msg)
	}
	// The definitions must give most flags more than one answer across the
	// subjects, or the comparison proves little for them.
	sdkCheckSpread(t, out, subjects, flagKeys)

	// (c) and (d): what the SDK captured reaches PostHog through the spool.
	sdkCheckEvents(t, up, out, eventsFor, captureUUIDs, capSubject)
}

const (
	sdkUpstreamVariant = "hogrelay-asked-upstream"
	sdkUndefinedJSON   = `"<undefined>"`
)

// sdkLeftOutByFlags are the flags PostHog's flags service leaves out of its
// /flags answers (inactive flags: fetch_and_filter puts them in
// filtered_out_flag_ids), and so does the agent. posthog-node's local
// evaluation answers them false instead, so its two clients differ there by
// design: remote getFeatureFlag says undefined and getAllFlags lacks them.
var sdkLeftOutByFlags = map[string]bool{"inactive": true}

// sdkCheckLeftOut says what is wrong with a left-out flag's answers, or "".
func sdkCheckLeftOut(r sdkResult, k string) string {
	switch {
	case string(r.Local[k]) != "false":
		return fmt.Sprintf("local posthog-node=%s, want false", r.Local[k])
	case string(r.LocalPayload[k]) != "null":
		return fmt.Sprintf("local payload=%s, want null", r.LocalPayload[k])
	case string(r.Remote[k]) != sdkUndefinedJSON:
		return fmt.Sprintf("agent /flags answered %s; PostHog leaves inactive flags out", r.Remote[k])
	case string(r.RemotePayload[k]) != sdkUndefinedJSON:
		return fmt.Sprintf("agent /flags payload %s; PostHog leaves inactive flags out", r.RemotePayload[k])
	}
	if v, ok := r.RemoteAll[k]; ok {
		return fmt.Sprintf("agent getAllFlags lists it (%s); PostHog leaves inactive flags out", v)
	}
	if v := r.LocalAll[k]; string(v) != "false" {
		return fmt.Sprintf("local getAllFlags=%s, want false", v)
	}
	return ""
}

type sdkSubject struct {
	DistinctID       string                    `json:"distinctId"`
	PersonProperties map[string]any            `json:"personProperties"`
	Groups           map[string]string         `json:"groups,omitempty"`
	GroupProperties  map[string]map[string]any `json:"groupProperties,omitempty"`
}

func (s sdkSubject) describe() string {
	b, _ := json.Marshal(map[string]any{"person": s.PersonProperties, "groups": s.Groups, "group_properties": s.GroupProperties})
	return string(b)
}

type sdkResult struct {
	Local         map[string]json.RawMessage `json:"local"`
	Remote        map[string]json.RawMessage `json:"remote"`
	LocalPayload  map[string]json.RawMessage `json:"localPayload"`
	RemotePayload map[string]json.RawMessage `json:"remotePayload"`
	LocalAll      map[string]json.RawMessage `json:"localAll"`
	RemoteAll     map[string]json.RawMessage `json:"remoteAll"`
}

type sdkRequest struct {
	Method string `json:"method"`
	URL    string `json:"url"`
	Status int    `json:"status"`
	Error  string `json:"error"`
}

type sdkOutput struct {
	Ready      bool                    `json:"ready"`
	SDKVersion string                  `json:"sdkVersion"`
	Results    map[string]sdkResult    `json:"results"`
	Errors     []string                `json:"errors"`
	Requests   map[string][]sdkRequest `json:"requests"`
}

// requireNodeSDK returns e2e/sdk and the node binary, or skips (fails when
// HOGRELAY_REQUIRE_NODE_SDK=1, as CI sets after `npm ci`).
func sdkRequireNode(t *testing.T) (string, string) {
	t.Helper()
	required := os.Getenv("HOGRELAY_REQUIRE_NODE_SDK") == "1"
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if required {
			t.Fatalf("HOGRELAY_REQUIRE_NODE_SDK=1 but %s", msg)
		}
		t.Skipf("skipping the posthog-node compatibility test: %s (install Node.js 20.20+ and run `npm ci` in e2e/sdk)", msg)
	}
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		missing("node is not on PATH")
	}
	dir, err := filepath.Abs("sdk")
	require.NoError(t, err)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "posthog-node", "package.json")); err != nil {
		missing("%s/node_modules/posthog-node is not installed", dir)
	}
	return dir, nodeBin
}

// sdkAgentURL is the agent's loopback TCP listener, as its status reports it.
func sdkAgentURL(a *agentProc) string {
	a.t.Helper()
	ls, _ := a.status()["listeners"].([]any)
	for _, l := range ls {
		if s, _ := l.(string); strings.HasPrefix(s, "tcp:") {
			return "http://" + strings.TrimPrefix(s, "tcp:")
		}
	}
	a.t.Fatalf("the agent reports no tcp listener: %v", ls)
	return ""
}

func sdkClassify(v json.RawMessage) string {
	switch string(v) {
	case sdkUndefinedJSON:
		return "undecided locally"
	case "true":
		return "true"
	case "false":
		return "false"
	}
	return "variant"
}

func sdkCanonicalJSON(b json.RawMessage) string {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return string(b)
	}
	c, _ := json.Marshal(v)
	return string(c)
}

func sdkJSONEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// compareSDKAnswer says what is wrong with a pair of answers, or "". The
// agent's answer for a flag posthog-node cannot decide locally is PostHog's
// (the fake's sdkUpstreamVariant); the agent must defer exactly those.
func sdkCompareAnswer(local, remote json.RawMessage) string {
	localUndecided := string(local) == sdkUndefinedJSON
	remoteUpstream := string(remote) == `"`+sdkUpstreamVariant+`"`
	switch {
	case localUndecided && remoteUpstream:
		return ""
	case localUndecided:
		return "decided by the agent but not by posthog-node"
	case remoteUpstream:
		return "decided by posthog-node but deferred to PostHog by the agent"
	case !sdkJSONEqual(local, remote):
		return "differs"
	}
	return ""
}

func sdkComparePayload(value, local, remote json.RawMessage) string {
	if string(value) == sdkUndefinedJSON {
		return "" // no local answer; the agent's came from upstream
	}
	if !sdkJSONEqual(local, remote) {
		return "differs"
	}
	return ""
}

func sdkCheckSpread(t *testing.T, out sdkOutput, subjects []sdkSubject, keys []string) {
	t.Helper()
	constant := map[string]bool{"rollout-0": true, "rollout-100-payload": true, "inactive": true, "static-cohort": true, "continuity": true}
	for _, k := range keys {
		seen := map[string]bool{}
		for _, s := range subjects {
			seen[string(out.Results[s.DistinctID].Local[k])] = true
		}
		if _, named := sdkServiceDifferences[k]; !constant[k] && !named {
			require.GreaterOrEqual(t, len(seen), 2, "flag %q had one answer for every subject (%v): the comparison proves nothing for it", k, seen)
		}
	}
}

func sdkCheckRequests(t *testing.T, host string, out sdkOutput) {
	t.Helper()
	paths := func(reqs []sdkRequest) map[string]int {
		m := map[string]int{}
		for _, r := range reqs {
			require.True(t, strings.HasPrefix(r.URL, host+"/"), "request to %s, not the agent", r.URL)
			require.Empty(t, r.Error, "%s %s failed", r.Method, r.URL)
			p, _, _ := strings.Cut(strings.TrimPrefix(r.URL, host), "?")
			m[fmt.Sprintf("%s %s %d", r.Method, p, r.Status)]++
		}
		return m
	}
	local, remote := paths(out.Requests["local"]), paths(out.Requests["remote"])
	t.Logf("local client requests: %v", local)
	t.Logf("remote client requests: %v", remote)
	require.Positive(t, local["GET /flags/definitions 200"], "the local client did not load definitions from the agent")
	for k := range local {
		require.True(t, k == "GET /flags/definitions 200" || k == "POST /batch/ 200",
			"the local-only client made an unexpected request: %s", k)
	}
	require.Positive(t, remote["POST /flags/ 200"], "the remote client never asked the agent's /flags")
	for k := range remote {
		require.True(t, k == "POST /flags/ 200" || k == "POST /batch/ 200", "the remote client made an unexpected request: %s", k)
	}
}

func sdkCheckEvents(t *testing.T, up *fakeposthog.Server, out sdkOutput, eventsFor, uuids []string, capSubject sdkSubject) {
	t.Helper()
	ctx := waitCtx(t, 60*time.Second)
	require.NoError(t, up.WaitForUUIDs(ctx, uuids))

	// $feature_flag_called: one per client, subject and flag for the subjects
	// whose getFeatureFlag calls sent them, each carrying the value that call
	// returned (none when local evaluation could not decide).
	type calledKey struct{ distinct, flag, response string }
	want := map[calledKey]int{}
	nWant := 0
	for _, id := range eventsFor {
		r := out.Results[id]
		for _, vals := range []map[string]json.RawMessage{r.Local, r.Remote} {
			for k, v := range vals {
				resp := "none"
				if string(v) != sdkUndefinedJSON {
					resp = sdkCanonicalJSON(v)
				}
				want[calledKey{id, k, resp}]++
				nWant++
			}
		}
	}
	got := map[calledKey]int{}
	byName := map[string][]fakeposthog.Event{}
	nGot := 0
	sdkEventually(t, func() bool {
		got, byName, nGot = map[calledKey]int{}, map[string][]fakeposthog.Event{}, 0
		for _, ev := range up.Events() {
			byName[ev.Event] = append(byName[ev.Event], ev)
			if ev.Event != "$feature_flag_called" {
				continue
			}
			flag, _ := ev.Properties["$feature_flag"].(string)
			resp := "none"
			if v, ok := ev.Properties["$feature_flag_response"]; ok && v != nil {
				b, _ := json.Marshal(v)
				resp = sdkCanonicalJSON(b)
			}
			got[calledKey{ev.DistinctID, flag, resp}]++
			nGot++
		}
		return nGot >= nWant && len(byName["$identify"]) > 0 && len(byName["$create_alias"]) > 0 && len(byName["$groupidentify"]) > 0
	}, 60*time.Second, 50*time.Millisecond, "SDK events did not all arrive upstream")
	n := map[string]int{}
	for k, v := range byName {
		n[k] = len(v)
	}
	require.Equal(t, want, got, "$feature_flag_called events upstream (distinct id, flag, response) differ from the SDK's calls; events by name: %v", n)
	require.Equal(t, nWant, len(byName["$feature_flag_called"]))

	version := strings.TrimSpace(out.SDKVersion)
	for _, ev := range up.Events() {
		require.Equal(t, "posthog-node", ev.Properties["$lib"], "event %s %s", ev.Event, ev.UUID)
		require.Equal(t, version, ev.Properties["$lib_version"], "event %s %s", ev.Event, ev.UUID)
		require.NotEmpty(t, ev.UUID, "event %s arrived without its uuid", ev.Event)
		require.Equal(t, projectKey, ev.Token)
		var rawEv map[string]any
		require.NoError(t, json.Unmarshal(ev.Raw, &rawEv))
		require.NotContains(t, rawEv, "sent_at")
	}
	for _, r := range up.Requests() {
		require.False(t, r.SentAt, "sent_at was forwarded (%q): PostHog would re-skew the SDK's timestamps", r.SentAtValue)
	}
	counts := up.UniqueUUIDs()
	for _, u := range uuids {
		require.Equal(t, 1, counts[u], "uuid %s", u)
	}

	find := func(name string) fakeposthog.Event {
		evs := byName[name]
		require.Len(t, evs, 1, "events named %q", name)
		return evs[0]
	}
	plain := find("sdk compat plain")
	require.Equal(t, uuids[0], plain.UUID)
	require.Equal(t, capSubject.DistinctID, plain.DistinctID)
	require.Equal(t, map[string]any{"plan": "pro"}, plain.Properties["$set"])
	require.Equal(t, map[string]any{"company": "company-compat"}, plain.Properties["$groups"])
	require.NotContains(t, plain.Properties, "$active_feature_flags")

	ts := find("sdk compat timestamped")
	require.Equal(t, uuids[1], ts.UUID)
	// The agent applies PostHog's clock-skew correction with the batch's
	// sent_at (then drops sent_at), so the timestamp moves by the few
	// milliseconds between the SDK sending and the agent receiving.
	gotTS, err := time.Parse(time.RFC3339Nano, ts.Timestamp)
	require.NoError(t, err, "timestamp %q", ts.Timestamp)
	skew := gotTS.Sub(time.Date(2026, 3, 4, 5, 6, 7, 890e6, time.UTC))
	require.True(t, skew >= 0 && skew < 5*time.Second, "timestamp %s is not the SDK's 2026-03-04T05:06:07.890Z corrected for skew", ts.Timestamp)
	require.Equal(t, map[string]any{"first_seen": "sdk"}, ts.Properties["$set_once"])

	// sendFeatureFlags: both clients attach the same $feature/ properties,
	// and they are what getFeatureFlag said for this subject.
	lf, rf := find("sdk compat with local flags"), find("sdk compat with remote flags")
	res := out.Results[capSubject.DistinctID]
	for k, v := range res.Local {
		if string(v) == sdkUndefinedJSON {
			continue
		}
		if sdkLeftOutByFlags[k] {
			require.Equal(t, false, lf.Properties["$feature/"+k], "%s: $feature/%s", lf.Event, k)
			require.NotContains(t, rf.Properties, "$feature/"+k, "%s: PostHog's /flags leaves %s out", rf.Event, k)
			continue
		}
		want := map[string]json.RawMessage{lf.Event: v, rf.Event: v}
		if _, named := sdkServiceDifferences[k]; named {
			// Each client attaches its own answer, which differ by design.
			want[rf.Event] = res.Remote[k]
		}
		for _, ev := range []fakeposthog.Event{lf, rf} {
			v := want[ev.Event]
			got, ok := ev.Properties["$feature/"+k]
			require.True(t, ok, "%s: no $feature/%s", ev.Event, k)
			gb, _ := json.Marshal(got)
			require.True(t, sdkJSONEqual(gb, v), "%s: $feature/%s = %s, getFeatureFlag said %s", ev.Event, k, gb, v)
		}
	}

	id := find("$identify")
	require.Equal(t, capSubject.DistinctID, id.DistinctID)
	require.Equal(t, map[string]any{"email": "compat@example.com"}, id.Properties["$set"])
	al := find("$create_alias")
	require.Equal(t, "compat-alias", al.Properties["alias"])
	gi := find("$groupidentify")
	require.Equal(t, "company", gi.Properties["$group_type"])
	require.Equal(t, "company-compat", gi.Properties["$group_key"])
	require.Equal(t, map[string]any{"name": "Compat Inc", "seats": float64(12)}, gi.Properties["$group_set"])
}

// sdkSubjects builds n people with the properties the definitions look at,
// from a fixed seed so a failure reproduces.
func sdkSubjects(n int) []sdkSubject {
	r := rand.New(rand.NewPCG(20260304, 7))
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	out := make([]sdkSubject, n)
	for i := range out {
		id := fmt.Sprintf("sdk-user-%03d-%08x", i, r.Uint32())
		p := map[string]any{
			"email":       fmt.Sprintf("person%d@%s", i, pick("example.com", "Example.COM", "vip.com", "corp.io", "spam.net", "gmail.com")),
			"plan":        pick("free", "pro", "enterprise", "Pro", "team"),
			"age":         16 + r.IntN(60),
			"country":     pick("US", "CA", "GB", "DE", "FR", "us"),
			"name":        pick("alice", "Bob", "carol", "Dave", "anna", "Zed"),
			"app_version": pick("1.2.3", "1.2.9", "1.3.0", "2.0.0", "2.3.0", "2.3.1", "2.10.0", "3.1.4"),
			"signup_date": time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, r.IntN(3*365)).Format("2006-01-02T15:04:05Z"),
			"sessions":    r.IntN(50),
			"beta_opt_in": r.IntN(2) == 0,
		}
		if r.IntN(4) == 0 {
			p["age"] = float64(16+r.IntN(60)) + 0.5
		}
		// A JSON null is a value, matched as the string "null" by both.
		p["nickname"] = []any{nil, "bob", "Bobby", "zed"}[r.IntN(4)]
		p["$device_id"] = fmt.Sprintf("device-%d", r.IntN(1000))
		// Properties the caller did not pass: neither posthog-node nor the
		// agent may decide a condition that needs them (PostHog may have them
		// stored), so both must defer.
		if i%7 == 0 {
			delete(p, "beta_opt_in")
		}
		if i%11 == 0 {
			delete(p, "signup_date")
		}
		s := sdkSubject{DistinctID: id, PersonProperties: p}
		if r.IntN(3) != 0 {
			co := fmt.Sprintf("company-%d", r.IntN(40))
			s.Groups = map[string]string{"company": co}
			s.GroupProperties = map[string]map[string]any{"company": {
				"plan":  pick("enterprise", "startup", "free"),
				"seats": 1 + r.IntN(500),
			}}
			if r.IntN(2) == 0 {
				s.Groups["project"] = fmt.Sprintf("project-%d", r.IntN(20))
				s.GroupProperties["project"] = map[string]any{"tier": pick("gold", "silver")}
			}
		}
		out[i] = s
	}
	return out
}

// Definitions builders, in the shape PostHog's /flags/definitions serves.

func sdkPersonProp(key, op string, value any) map[string]any {
	return map[string]any{"key": key, "type": "person", "operator": op, "value": value, "negation": false}
}

func sdkGroupProp(key, op string, value any, gti int) map[string]any {
	return map[string]any{"key": key, "type": "group", "operator": op, "value": value, "group_type_index": gti, "negation": false}
}

func sdkCond(rollout any, props ...map[string]any) map[string]any {
	if props == nil {
		props = []map[string]any{}
	}
	return map[string]any{"properties": props, "rollout_percentage": rollout, "variant": nil}
}

func sdkFlagDef(id int, key string, filters map[string]any) map[string]any {
	for k, v := range map[string]any{"multivariate": nil, "aggregation_group_type_index": nil, "payloads": map[string]any{}} {
		if _, ok := filters[k]; !ok {
			filters[k] = v
		}
	}
	return map[string]any{
		"id": id, "team_id": 1, "name": key, "key": key, "filters": filters,
		"deleted": false, "active": true, "ensure_experience_continuity": false, "version": 1,
		"evaluation_runtime": "all", "bucketing_identifier": "distinct_id", "evaluation_tags": []string{},
		"has_encrypted_payloads": false,
	}
}

func sdkVariants(kv ...any) map[string]any {
	var vs []map[string]any
	for i := 0; i < len(kv); i += 2 {
		vs = append(vs, map[string]any{"key": kv[i], "name": kv[i], "rollout_percentage": kv[i+1]})
	}
	return map[string]any{"variants": vs}
}

// sdkFlagDefinitions is the definitions document the test serves: flags
// covering rollouts, multivariate flags with payloads, variant overrides,
// person filters with most operators, group flags, cohorts, flag
// dependencies, device_id bucketing, experience continuity, a static cohort,
// holdouts (person, multivariate with a holdout payload, group), boolean and
// multivariate flags whose first conditions need properties some subjects
// lack, legacy super_groups and holdout_groups (read by neither side), an
// inactive flag (left out of /flags answers; see sdkLeftOutByFlags), and the
// flags on which posthog-node 5.70.0 and PostHog's flags service
// (rust/feature-flags) differ, each named in sdkServiceDifferences with what
// each side answers; the agent must answer as the service there.
//
// A payload whose stored text is a JSON string literal holding JSON (flag
// payload-string-literal) once came out of the agent's /flags decoded one
// level too far; eval.Result.StoredPayload now carries the text as stored.
//
// Not served, because only one side can decide and nothing is wrong either
// way (node defers or ignores, hogrelay answers as the service or defers):
// exact on integer properties or with numbers in the filter list, between,
// is_date_exact, leading-zero versions ("02.3.0"), regex on non-ASCII values,
// device_id flags without a device id (with or without a holdout: the
// service hashes the distinct id for the holdout), an empty cohort ({})
// (node answers, hogrelay defers), and flags the service cannot decode (a
// holdout with a string id or no percentage, a variant without
// rollout_percentage, a filter without type), which the service never
// serves while node evaluates or ignores them.
func sdkFlagDefinitions() []byte {
	conds := func(cs ...map[string]any) []map[string]any { return cs }
	flags := []map[string]any{
		sdkFlagDef(1, "rollout-50", map[string]any{"groups": conds(sdkCond(50))}),
		sdkFlagDef(2, "rollout-0", map[string]any{"groups": conds(sdkCond(0))}),
		sdkFlagDef(3, "rollout-100-payload", map[string]any{"groups": conds(sdkCond(100)),
			"payloads": map[string]any{"true": `{"banner": "hello", "n": [1, 2.5, null]}`}}),
		sdkFlagDef(4, "rollout-33.7", map[string]any{"groups": conds(sdkCond(33.7))}),
		sdkFlagDef(5, "mv-3way", map[string]any{"groups": conds(sdkCond(100)),
			"multivariate": sdkVariants("control", 34, "test-a", 33, "test-b", 33),
			"payloads":     map[string]any{"control": `{"color": "blue"}`, "test-a": `["a", 1]`, "test-b": `42`}}),
		sdkFlagDef(6, "mv-rollout-60", map[string]any{"groups": conds(sdkCond(60)),
			"multivariate": sdkVariants("left", 50, "right", 50),
			"payloads":     map[string]any{"left": `"just a string"`, "right": `not json at all`}}),
		sdkFlagDef(7, "mv-override", map[string]any{"groups": conds(
			map[string]any{"properties": []map[string]any{sdkPersonProp("email", "ends_with", "@vip.com")}, "rollout_percentage": 100, "variant": "gold"},
			sdkCond(100)),
			"multivariate": sdkVariants("gold", 0, "silver", 50, "bronze", 50),
			"payloads":     map[string]any{"gold": `{"tier": 1}`, "silver": `{"tier": 2}`}}),
		sdkFlagDef(8, "email-icontains", map[string]any{"groups": conds(sdkCond(100, sdkPersonProp("email", "icontains", "@EXAMPLE.com"))),
			"payloads": map[string]any{"true": `{"staff": true}`}}),
		sdkFlagDef(9, "plan-exact-list", map[string]any{"groups": conds(sdkCond(100, sdkPersonProp("plan", "exact", []any{"pro", "enterprise"})))}),
		sdkFlagDef(10, "plan-is-not", map[string]any{"groups": conds(sdkCond(100, sdkPersonProp("plan", "is_not", "free")))}),
		sdkFlagDef(11, "age-gte", map[string]any{"groups": conds(sdkCond(100, sdkPersonProp("age", "gte", "30")))}),
		sdkFlagDef(12, "young-us-80", map[string]any{"groups": conds(sdkCond(80,
			sdkPersonProp("age", "lt", 25), sdkPersonProp("country", "exact", "US")))}),
		sdkFlagDef(13, "country-regex", map[string]any{"groups": conds(sdkCond(100, sdkPersonProp("country", "regex", "^(US|CA|GB)$")))}),
		sdkFlagDef(14, "email-not-regex", map[string]any{"groups": conds(sdkCond(100, sdkPersonProp("email", "not_regex", `@(spam|corp)\.`)))}),
		sdkFlagDef(15, "name-prefix", map[string]any{"groups": conds(
			sdkCond(100, sdkPersonProp("name", "starts_with", "A"), sdkPersonProp("name", "not_icontains", "nn")))}),
		sdkFlagDef(16, "semver", map[string]any{"groups": conds(
			sdkCond(100, sdkPersonProp("app_version", "semver_gte", "2.3.0")),
			sdkCond(100, sdkPersonProp("app_version", "semver_caret", "1.2.0")))}),
		sdkFlagDef(17, "semver-tilde", map[string]any{"groups": conds(sdkCond(100, sdkPersonProp("app_version", "semver_tilde", "2.3.0")))}),
		sdkFlagDef(18, "signup-before", map[string]any{"groups": conds(sdkCond(100, sdkPersonProp("signup_date", "is_date_before", "2024-06-01T00:00:00Z")))}),
		sdkFlagDef(19, "multi-condition", map[string]any{"groups": conds(
			sdkCond(0, sdkPersonProp("email", "icontains", "gmail")),
			sdkCond(100, sdkPersonProp("country", "exact", []any{"GB", "DE"})),
			sdkCond(30))}),
		sdkFlagDef(20, "company-enterprise", map[string]any{"aggregation_group_type_index": 0,
			"groups":   conds(sdkCond(100, sdkGroupProp("plan", "exact", "enterprise", 0)), sdkCond(100, sdkGroupProp("seats", "gt", 400, 0))),
			"payloads": map[string]any{"true": `{"sso": true}`}}),
		sdkFlagDef(21, "company-rollout-40", map[string]any{"aggregation_group_type_index": 0, "groups": conds(sdkCond(40))}),
		sdkFlagDef(22, "project-gold", map[string]any{"aggregation_group_type_index": 1,
			"groups":       conds(sdkCond(100, sdkGroupProp("tier", "exact", "gold", 1))),
			"multivariate": sdkVariants("one", 50, "two", 50)}),
		sdkFlagDef(23, "cohort-power", map[string]any{"groups": conds(sdkCond(100,
			map[string]any{"key": "id", "type": "cohort", "value": 7, "operator": "in", "negation": false}))}),
		sdkFlagDef(24, "cohort-not-in", map[string]any{"groups": conds(sdkCond(100,
			map[string]any{"key": "id", "type": "cohort", "value": 8, "operator": "not_in", "negation": false}))}),
		sdkFlagDef(25, "depends-on-rollout", map[string]any{"groups": conds(sdkCond(100,
			map[string]any{"key": "rollout-50", "type": "flag", "value": true, "operator": "flag_evaluates_to", "dependency_chain": []string{"rollout-50"}},
			sdkPersonProp("beta_opt_in", "exact", []any{"true"})))}),
		sdkFlagDef(26, "depends-on-variant", map[string]any{"groups": conds(sdkCond(100,
			map[string]any{"key": "mv-3way", "type": "flag", "value": "test-a", "operator": "flag_evaluates_to", "dependency_chain": []string{"mv-3way"}}))}),
		sdkFlagDef(27, "static-cohort", map[string]any{"groups": conds(sdkCond(100,
			map[string]any{"key": "id", "type": "cohort", "value": 999, "operator": "in", "negation": false}))}),
	}
	device := sdkFlagDef(29, "device-rollout-50", map[string]any{"groups": conds(sdkCond(50)), "multivariate": sdkVariants("x", 50, "y", 50)})
	device["bucketing_identifier"] = "device_id"
	continuity := sdkFlagDef(30, "continuity", map[string]any{"groups": conds(sdkCond(50))})
	continuity["ensure_experience_continuity"] = true
	flags = append(flags,
		sdkFlagDef(31, "beta-is-set", map[string]any{"groups": conds(sdkCond(100, sdkPersonProp("beta_opt_in", "is_set", "is_set")))}),
		sdkFlagDef(32, "beta-is-not-set", map[string]any{"groups": conds(sdkCond(100, sdkPersonProp("beta_opt_in", "is_not_set", "is_not_set")))}),
		sdkFlagDef(33, "nickname-not-bob", map[string]any{"groups": conds(sdkCond(100, sdkPersonProp("nickname", "is_not", "bob")))}),
		// The stored text is a JSON string literal holding a JSON string:
		// served as stored, SDKs decode it exactly once.
		sdkFlagDef(34, "payload-string-literal", map[string]any{"groups": conds(sdkCond(50)),
			"payloads": map[string]any{"true": `"\"q\""`}}),
		device, continuity)
	inactive := sdkFlagDef(28, "inactive", map[string]any{"groups": conds(sdkCond(100))})
	inactive["active"] = false
	flags = append(flags, inactive)
	flags = append(flags,
		// Holdouts: hashed on "holdout-<bucketing id>" before any condition,
		// answered with the variant "holdout-<id>" and its payload.
		sdkFlagDef(35, "holdout-mv", map[string]any{"groups": conds(sdkCond(100, sdkPersonProp("country", "exact", []any{"US", "CA", "GB"}))),
			"multivariate": sdkVariants("control", 50, "test", 50),
			"holdout":      map[string]any{"id": 17, "exclusion_percentage": 30},
			"payloads":     map[string]any{"control": `{"c": 1}`, "test": `{"t": 1}`, "holdout-17": `{"held": true}`}}),
		sdkFlagDef(36, "holdout-bool", map[string]any{"groups": conds(sdkCond(60, sdkPersonProp("plan", "exact", []any{"pro", "team"}))),
			"holdout": map[string]any{"id": 18, "exclusion_percentage": 20.5}}),
		// A group flag: the group key is hashed; without the group, both
		// answer false (the service hashes "" (0.927), above 25 %).
		sdkFlagDef(37, "holdout-company", map[string]any{"aggregation_group_type_index": 0,
			"groups":  conds(sdkCond(100, sdkGroupProp("seats", "gt", 100, 0))),
			"holdout": map[string]any{"id": 19, "exclusion_percentage": 25}}),
		// A boolean flag whose first condition needs a property some subjects
		// lack (beta_opt_in, signup_date): when a later condition matches the
		// flag is on whichever condition PostHog would have matched.
		sdkFlagDef(38, "undecided-then-match", map[string]any{"groups": conds(
			sdkCond(100, sdkPersonProp("beta_opt_in", "exact", []any{"true"})),
			sdkCond(100, sdkPersonProp("signup_date", "is_date_before", "2024-06-01T00:00:00Z")),
			sdkCond(100, sdkPersonProp("country", "exact", []any{"US", "CA"}))),
			"payloads": map[string]any{"true": `{"either": "way"}`}}),
		// A multivariate flag whose first condition needs a property some
		// subjects lack, with no variant override: whichever condition
		// PostHog matches, the variant is the same hash, so both answer.
		sdkFlagDef(50, "mv-undecided-then-match", map[string]any{"groups": conds(
			sdkCond(100, sdkPersonProp("beta_opt_in", "exact", []any{"true"})), sdkCond(100)),
			"multivariate": sdkVariants("first", 50, "second", 50),
			"payloads":     map[string]any{"first": `{"f": 1}`, "second": `{"s": 2}`}}),
		// Legacy keys neither the service nor posthog-node reads any more.
		sdkFlagDef(39, "legacy-super-groups", map[string]any{"groups": conds(sdkCond(100, sdkPersonProp("plan", "exact", "pro"))),
			"super_groups": []any{map[string]any{"properties": []any{sdkPersonProp("$feature_enrollment/legacy-super-groups", "exact", []any{"true"})}, "rollout_percentage": 100}}}),
		sdkFlagDef(40, "legacy-holdout-groups", map[string]any{"groups": conds(sdkCond(100, sdkPersonProp("plan", "exact", "pro"))),
			"holdout_groups": []any{map[string]any{"properties": []any{}, "rollout_percentage": 100, "variant": "holdout-9"}}}),
	)

	flags = append(flags, sdkDifferenceFlags()...)
	doc := map[string]any{
		"flags":              flags,
		"group_type_mapping": map[string]string{"0": "company", "1": "project"},
		"cohorts": map[string]any{
			"7": map[string]any{"type": "OR", "values": []any{
				map[string]any{"type": "AND", "values": []any{
					sdkPersonProp("sessions", "gte", 20),
					sdkPersonProp("plan", "exact", []any{"pro", "enterprise"}),
				}},
				map[string]any{"type": "AND", "values": []any{
					sdkPersonProp("country", "exact", "CA"),
				}},
			}},
			"8": map[string]any{"type": "AND", "values": []any{
				map[string]any{"type": "OR", "values": []any{
					sdkPersonProp("email", "ends_with", "@spam.net"),
					sdkPersonProp("sessions", "lt", 3),
				}},
			}},
		},
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(err)
	}
	return b
}

// sdkEventually is require.Eventually without stopping the test, so the
// caller can say what was missing.
func sdkEventually(t *testing.T, done func() bool, wait, tick time.Duration, msg string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !done() {
		if time.Now().After(deadline) {
			t.Error(msg)
			return
		}
		time.Sleep(tick)
	}
}
