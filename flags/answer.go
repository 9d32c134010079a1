package flags

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hogrelay/hogrelay/flags/eval"
)

// ErrNoAnswer means the flag cannot be answered right now (offline with
// nothing cached, quota limited, only-local and inconclusive, unknown flag).
// The error wraps the reasons (eval.ErrInconclusive, eval.ErrUnknownFlag,
// ErrQuotaLimited, the /flags failure), so callers can branch with
// errors.Is. It is never replaced by a guess: the SDK-facing layer decides
// what "no answer" looks like.
var ErrNoAnswer = errors.New("no answer")

// errNoDefinitions: nothing has been loaded from disk or the network yet.
var errNoDefinitions = errors.New("no flag definitions loaded (no cache file and no successful fetch yet)")

// noAnswer is an ErrNoAnswer whose message is only the reason, so callers
// that print "no answer for KEY: " do not stutter.
type noAnswer struct {
	msg    string
	causes []error
}

func (e *noAnswer) Error() string        { return e.msg }
func (e *noAnswer) Is(target error) bool { return target == ErrNoAnswer }
func (e *noAnswer) Unwrap() []error      { return e.causes }

func newNoAnswer(msg string, causes ...error) error {
	return &noAnswer{msg: msg, causes: causes}
}

// Source says where an answer came from.
type Source string

const (
	SourceLocal  Source = "local"  // local evaluation of the definitions
	SourceRemote Source = "remote" // PostHog's /flags, just now
	SourceCached Source = "cached" // PostHog's last answer, kept on disk, because PostHog cannot be reached
)

// Ask is one flag question.
type Ask struct {
	Input     eval.Input
	OnlyLocal bool     // per-call only_evaluate_locally
	UserAgent string   // forwarded to PostHog, which picks server-side flags from it
	FlagKeys  []string // All: only these flags (nil = every flag)
	// Body, when set, is an SDK's /flags body: a question PostHog must
	// answer goes to it as the SDK sent it (see passThrough), not rebuilt.
	Body []byte
	// Token is the project token of the question; "" means [posthog] api_key.
	Token string
}

// All is the answer to "every flag for this subject".
type All struct {
	Flags map[string]eval.Result
	// ErrorsWhileComputing is set when some flags could not be answered
	// (inconclusive locally, remote not allowed or failed) and are missing
	// from Flags, or PostHog said so itself.
	ErrorsWhileComputing bool
	QuotaLimited         bool
	Source               map[string]Source
	// Raw holds remote and cached flags' v2 objects as PostHog sent them.
	Raw map[string]json.RawMessage
	// RequestID and EvaluatedAt (ms) are PostHog's, when it answered.
	RequestID   string
	EvaluatedAt int64
	// CachedAt is set when answers came from the answer cache: when PostHog
	// gave the oldest of them.
	CachedAt time.Time
	// RemoteErr is why PostHog's /flags gave no answer, when it was asked.
	RemoteErr error
	// NotAsked says why PostHog was not asked about flags local evaluation
	// could not decide.
	NotAsked string
	// Inconclusive holds why local evaluation could not decide a flag.
	Inconclusive map[string]error
}

// Answer is one flag's answer.
type Answer struct {
	eval.Result
	Source      Source
	CachedAt    time.Time
	RequestID   string
	EvaluatedAt int64
	// ErrorsWhileComputing: PostHog said it had errors computing flags.
	ErrorsWhileComputing bool
}

func newAll() All {
	return All{Flags: map[string]eval.Result{}, Source: map[string]Source{}, Raw: map[string]json.RawMessage{}}
}

// withoutFlagPrefix drops eval's `flag "KEY": ` so a message that already
// names the flag does not name it twice.
func withoutFlagPrefix(key string, err error) string {
	return strings.TrimPrefix(err.Error(), fmt.Sprintf("flag %q: ", key))
}

// Flag answers one flag: locally first; from PostHog's /flags when local
// evaluation cannot decide it and remote calls are allowed; from the answer
// cache when PostHog cannot be reached.
func (s *Service) Flag(ctx context.Context, key string, a Ask) (Answer, error) {
	ans, err := s.flag(ctx, key, a)
	s.metrics.countFlag(ans.Source, err)
	return ans, err
}

func (s *Service) flag(ctx context.Context, key string, a Ask) (Answer, error) {
	// Evaluate answers inactive flags too (off), which All leaves out.
	if d := s.defs.Load(); d != nil && !s.quota.Load() {
		if r, err := d.ev.Evaluate(key, a.Input); err == nil {
			return Answer{Result: r, Source: SourceLocal}, nil
		}
	}
	a.FlagKeys = []string{key}
	all, err := s.all(ctx, a)
	if r, ok := all.Flags[key]; ok {
		return Answer{Result: r, Source: all.Source[key], CachedAt: all.CachedAt, RequestID: all.RequestID,
			EvaluatedAt: all.EvaluatedAt, ErrorsWhileComputing: all.ErrorsWhileComputing}, nil
	}
	var why []string
	var causes []error
	if e, ok := all.Inconclusive[key]; ok {
		why = append(why, withoutFlagPrefix(key, e))
		causes = append(causes, e)
	}
	if err != nil {
		why = append(why, err.Error())
		return Answer{}, newNoAnswer(strings.Join(why, "; "), append(causes, err)...)
	}
	switch {
	case all.NotAsked != "":
		why = append(why, "not asking PostHog because "+all.NotAsked)
	case all.RemoteErr != nil:
		why = append(why, "PostHog could not be asked ("+all.RemoteErr.Error()+") and no earlier answer for this context is cached")
		causes = append(causes, all.RemoteErr)
	default:
		why = append(why, "PostHog's /flags did not return it (no such active flag)")
		causes = append(causes, eval.ErrUnknownFlag)
	}
	return Answer{}, newNoAnswer(strings.Join(why, "; "), causes...)
}

// OwnProject reports whether token is the project whose definitions this
// service holds ([posthog] api_key); "" means the agent's own question.
// Only that project's flags may be answered from the definitions.
func (s *Service) OwnProject(token string) bool {
	return token == "" || s.token == "" || token == s.token
}

// All answers every active flag (or a.FlagKeys): locally what can be, then
// one /flags call for the rest when allowed, and the answer cache when
// PostHog cannot be reached. Inactive flags are left out, as PostHog's /flags
// leaves them out (see eval.Evaluator.EvaluateAll). Flags nobody could
// answer are left out and ErrorsWhileComputing is set, as PostHog itself
// does; ErrNoAnswer comes back only when nothing at all can answer.
func (s *Service) All(ctx context.Context, a Ask) (All, error) {
	all, err := s.all(ctx, a)
	s.metrics.countAll(all, err)
	return all, err
}

func (s *Service) all(ctx context.Context, a Ask) (All, error) {
	if s.quota.Load() {
		return quotaAll(), newNoAnswer(ErrQuotaLimited.Error(), ErrQuotaLimited)
	}
	out := newAll()
	wanted := func(k string) bool { return a.FlagKeys == nil || slices.Contains(a.FlagKeys, k) }

	d := s.defs.Load()
	if !s.OwnProject(a.Token) {
		// Another project's SDK: its flags are PostHog's to answer (and
		// cached under its token).
		d = nil
	}
	ask := a.FlagKeys // what to ask PostHog; with d == nil, every wanted flag
	if d != nil {
		ask = s.localPart(d, a, &out, wanted)
		if len(ask) == 0 {
			return out, nil
		}
	}

	token := a.Token
	if token == "" {
		token = s.token
	}
	if why := s.remoteBlocked(a.OnlyLocal, token); why != "" {
		out.NotAsked = why
		if d == nil {
			return out, newNoAnswer(errNoDefinitions.Error()+"; not asking PostHog because "+why, errNoDefinitions)
		}
		out.ErrorsWhileComputing = s.missingKnown(d, ask, out)
		return out, nil
	}

	body := a.Body
	var err error
	if body != nil {
		var only []string
		if d != nil {
			only = ask
		}
		body = passThrough(body, only)
	} else if body, err = s.ownBody(a.Input, ask); err != nil {
		return out, fmt.Errorf("flags: encoding the /flags request: %w", err)
	}
	ckey := contextKey(token, a.Input)
	ans, err := s.remote(ctx, body, a.UserAgent)
	switch {
	case errors.Is(err, ErrQuotaLimited):
		q := quotaAll()
		q.Inconclusive = out.Inconclusive
		return q, newNoAnswer(err.Error(), err)
	case err != nil:
		out.RemoteErr = err
		s.noteRemote(err)
		return s.offline(d, ckey, ask, out, err)
	}
	s.noteRemote(nil)
	if s.answers != nil {
		s.answers.put(ckey, ans, ask)
	}
	for k, r := range ans.flags {
		if wanted(k) && out.Source[k] != SourceLocal {
			out.Flags[k], out.Source[k] = r, SourceRemote
			if raw, ok := ans.raw[k]; ok {
				out.Raw[k] = raw
			}
		}
	}
	out.ErrorsWhileComputing = ans.errorsWhileComputing || s.missingKnown(d, ask, out)
	out.RequestID, out.EvaluatedAt = ans.requestID, ans.evaluatedAt
	return out, nil
}

// localPart evaluates what the definitions decide into out and returns the
// flags to ask PostHog about.
func (s *Service) localPart(d *definitions, a Ask, out *All, wanted func(string) bool) []string {
	results, inconclusive := d.ev.EvaluateAll(a.Input)
	var pending []string
	for k, r := range results {
		if wanted(k) {
			out.Flags[k], out.Source[k] = r, SourceLocal
		}
	}
	for k, e := range inconclusive {
		if wanted(k) {
			pending = append(pending, k)
			if out.Inconclusive == nil {
				out.Inconclusive = map[string]error{}
			}
			out.Inconclusive[k] = e
		}
	}
	// Requested flags the definitions do not know may still exist
	// server-side (created since the last poll). Inactive flags are known
	// and answered: PostHog's /flags leaves them out, so do we.
	for _, k := range a.FlagKeys {
		_, done := results[k]
		_, inc := inconclusive[k]
		if _, known := d.ev.Flag(k); !done && !inc && !known {
			pending = append(pending, k)
		}
	}
	slices.Sort(pending)
	return slices.Compact(pending)
}

// offline answers from the answer cache what PostHog could not: a context
// seen before gets its last answer, marked cached; one never seen gets
// nothing. The cache gives only flags in ask (every flag when ask is nil,
// which happens only with no definitions and no FlagKeys), and ask holds
// only wanted flags that local evaluation did not decide.
func (s *Service) offline(d *definitions, ckey string, ask []string, out All, remoteErr error) (All, error) {
	var cached cachedAnswer
	ok := false
	if s.answers != nil {
		cached, ok = s.answers.get(ckey, ask)
	}
	if ok {
		for k, r := range cached.ans.flags {
			out.Flags[k], out.Source[k], out.Raw[k] = r, SourceCached, cached.ans.raw[k]
		}
		out.CachedAt = cached.oldest
		out.RequestID, out.EvaluatedAt = cached.ans.requestID, cached.ans.evaluatedAt
		out.ErrorsWhileComputing = !cached.complete || s.missingKnown(d, ask, out)
		return out, nil
	}
	s.log.Debug().Str("error", s.redact(remoteErr.Error())).Strs("flags", ask).
		Msg("remote evaluation failed and nothing is cached for this context; answering the locally decided flags only")
	if d == nil {
		return out, newNoAnswer("PostHog could not be asked ("+remoteErr.Error()+") and no earlier answer for this context is cached", remoteErr)
	}
	out.ErrorsWhileComputing = true
	return out, nil
}

func quotaAll() All {
	a := newAll()
	a.QuotaLimited = true
	return a
}

// missingKnown reports whether a flag asked about is one the definitions know
// but the answer lacks (so its absence is an error, not a flag that does not exist).
func (s *Service) missingKnown(d *definitions, asked []string, out All) bool {
	if d == nil {
		return false
	}
	for _, k := range asked {
		if _, ok := out.Flags[k]; !ok {
			if _, known := d.ev.Flag(k); known {
				return true
			}
		}
	}
	return false
}

// noteRemote records the outcome of a /flags call for Status.
func (s *Service) noteRemote(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.remoteOKAt = s.now()
		s.remoteLastErr = ""
		return
	}
	s.remoteLastErr = s.redact(err.Error())
	s.remoteErrAt = s.now()
}
