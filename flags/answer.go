package flags

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/hogrelay/hogrelay/flags/eval"
)

// ErrNoAnswer means the flag cannot be answered right now (offline, quota
// limited, only-local and inconclusive, unknown flag). The error wraps the
// reasons (eval.ErrInconclusive, eval.ErrUnknownFlag, ErrQuotaLimited, the
// /flags failure), so callers can branch with errors.Is. It is never
// replaced by a guess: the SDK-facing layer decides what "no answer" looks like.
var ErrNoAnswer = errors.New("no answer")

// errNoDefinitions: nothing has been loaded from disk or the network yet.
var errNoDefinitions = errors.New("no flag definitions loaded (no cache file and no successful fetch yet)")

// Ask is one flag question.
type Ask struct {
	Input     eval.Input
	OnlyLocal bool     // per-call only_evaluate_locally
	UserAgent string   // forwarded to PostHog, which picks server-side flags from it
	FlagKeys  []string // All: only these flags (nil = every flag)
}

// All is the answer to "every flag for this subject".
type All struct {
	Flags map[string]eval.Result
	// ErrorsWhileComputing is set when some flags could not be answered
	// (inconclusive locally, remote not allowed or failed) and are missing
	// from Flags, or PostHog said so itself.
	ErrorsWhileComputing bool
	QuotaLimited         bool
	Local                map[string]bool // which answers came from local evaluation
}

// Local answers one flag from local evaluation only (no network), with the
// same quota rule as Flag. Callers that must know whether an answer was
// local try this first. Only its answers and quota refusals are counted
// in the metrics: on any other failure the caller asks Flag, which counts.
func (s *Service) Local(key string, in eval.Input) (eval.Result, error) {
	r, err := s.local(key, in)
	if err == nil || errors.Is(err, ErrQuotaLimited) {
		s.metrics.countFlag(true, err)
	}
	return r, err
}

func (s *Service) local(key string, in eval.Input) (eval.Result, error) {
	if s.quota.Load() {
		return eval.Result{}, fmt.Errorf("%w: flag %q: %w", ErrNoAnswer, key, ErrQuotaLimited)
	}
	d := s.defs.Load()
	if d == nil {
		return eval.Result{}, fmt.Errorf("%w: flag %q: %w", ErrNoAnswer, key, errNoDefinitions)
	}
	r, err := d.ev.Evaluate(key, in)
	if err != nil {
		return eval.Result{}, fmt.Errorf("%w: %w", ErrNoAnswer, err)
	}
	return r, nil
}

// Flag answers one flag: locally first; remotely via /flags only when the
// local answer is inconclusive or the flag unknown and remote calls are allowed.
func (s *Service) Flag(ctx context.Context, key string, a Ask) (eval.Result, error) {
	r, local, err := s.flag(ctx, key, a)
	s.metrics.countFlag(local, err)
	return r, err
}

// flag is Flag, also saying whether the answer was local.
func (s *Service) flag(ctx context.Context, key string, a Ask) (eval.Result, bool, error) {
	if s.quota.Load() {
		return eval.Result{}, false, fmt.Errorf("%w: flag %q: %w", ErrNoAnswer, key, ErrQuotaLimited)
	}
	localErr := errNoDefinitions
	if d := s.defs.Load(); d != nil {
		r, err := d.ev.Evaluate(key, a.Input)
		if err == nil {
			return r, true, nil
		}
		localErr = err
	}
	if why := s.remoteBlocked(a.OnlyLocal); why != "" {
		return eval.Result{}, false, fmt.Errorf("%w: flag %q: %w; not asking PostHog because %s", ErrNoAnswer, key, localErr, why)
	}
	ans, err := s.remote(ctx, a.Input, a.UserAgent, []string{key})
	if err != nil {
		return eval.Result{}, false, fmt.Errorf("%w: flag %q: %w; remote evaluation failed: %w", ErrNoAnswer, key, localErr, err)
	}
	r, ok := ans.flags[key]
	if !ok {
		return eval.Result{}, false, fmt.Errorf("%w: flag %q: %w; PostHog's /flags did not return it either", ErrNoAnswer, key, localErr)
	}
	return r, false, nil
}

// All answers every active flag (or a.FlagKeys): locally what can be, then
// one /flags call for the rest when allowed. Inactive flags are left out, as
// PostHog's /flags leaves them out (see eval.Evaluator.EvaluateAll). Flags nobody could answer are left
// out and ErrorsWhileComputing is set, as PostHog itself does; ErrNoAnswer
// comes back only when nothing at all can answer (no definitions and no
// remote, or quota limited).
func (s *Service) All(ctx context.Context, a Ask) (All, error) {
	out, err := s.all(ctx, a)
	s.metrics.countAll(out, err)
	return out, err
}

func (s *Service) all(ctx context.Context, a Ask) (All, error) {
	if s.quota.Load() {
		return All{Flags: map[string]eval.Result{}, Local: map[string]bool{}, QuotaLimited: true},
			fmt.Errorf("%w: %w", ErrNoAnswer, ErrQuotaLimited)
	}
	out := All{Flags: map[string]eval.Result{}, Local: map[string]bool{}}
	wanted := func(k string) bool { return a.FlagKeys == nil || slices.Contains(a.FlagKeys, k) }

	d := s.defs.Load()
	var pending []string // to ask remotely; nil with d == nil means every flag
	if d == nil {
		pending = a.FlagKeys
	} else {
		results, inconclusive := d.ev.EvaluateAll(a.Input)
		for k, r := range results {
			if wanted(k) {
				out.Flags[k], out.Local[k] = r, true
			}
		}
		for k := range inconclusive {
			if wanted(k) {
				pending = append(pending, k)
			}
		}
		// Requested flags the definitions do not know may still exist
		// server-side (created since the last poll). Inactive flags are
		// known and answered: PostHog's /flags leaves them out, so do we.
		for _, k := range a.FlagKeys {
			_, done := results[k]
			_, inc := inconclusive[k]
			if _, known := d.ev.Flag(k); !done && !inc && !known {
				pending = append(pending, k)
			}
		}
		if len(pending) == 0 {
			return out, nil
		}
		slices.Sort(pending)
		pending = slices.Compact(pending)
	}

	if why := s.remoteBlocked(a.OnlyLocal); why != "" {
		if d == nil {
			return out, fmt.Errorf("%w: %w; not asking PostHog because %s", ErrNoAnswer, errNoDefinitions, why)
		}
		out.ErrorsWhileComputing = s.anyKnown(d, pending)
		return out, nil
	}
	ans, err := s.remote(ctx, a.Input, a.UserAgent, pending)
	switch {
	case errors.Is(err, ErrQuotaLimited):
		return All{Flags: map[string]eval.Result{}, Local: map[string]bool{}, QuotaLimited: true},
			fmt.Errorf("%w: %w", ErrNoAnswer, err)
	case err != nil && d == nil:
		return out, fmt.Errorf("%w: %w; remote evaluation failed: %w", ErrNoAnswer, errNoDefinitions, err)
	case err != nil:
		s.log.Debug().Str("error", s.redact(err.Error())).Strs("flags", pending).
			Msg("remote evaluation failed; answering the locally decided flags only")
		out.ErrorsWhileComputing = true
		return out, nil
	}
	for k, r := range ans.flags {
		if (d == nil && wanted(k)) || slices.Contains(pending, k) {
			out.Flags[k] = r
		}
	}
	out.ErrorsWhileComputing = ans.errorsWhileComputing
	if d != nil {
		for _, k := range pending {
			if _, ok := out.Flags[k]; !ok && s.anyKnown(d, []string{k}) {
				out.ErrorsWhileComputing = true
			}
		}
	}
	return out, nil
}

// anyKnown reports whether a key in keys is a flag the definitions know (so its
// absence from an answer is an error, not just a flag that does not exist).
func (s *Service) anyKnown(d *definitions, keys []string) bool {
	for _, k := range keys {
		if _, ok := d.ev.Flag(k); ok {
			return true
		}
	}
	return false
}
