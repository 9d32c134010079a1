package flags

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"github.com/hogrelay/hogrelay/flags/eval"
	"github.com/hogrelay/hogrelay/internal/retry"
	"github.com/hogrelay/hogrelay/internal/retryafter"
)

// definitionPaths are tried in order, starting with the one that last
// worked: current PostHog serves the first, older self-hosted PostHog only
// the second (posthog-python and -node switched to the first in 2026).
var definitionPaths = [2]string{"/flags/definitions", "/api/feature_flag/local_evaluation"}

// ErrQuotaLimited is wrapped in ErrNoAnswer errors while PostHog reports the
// feature-flag quota (billing limit) as exceeded.
var ErrQuotaLimited = errors.New("PostHog feature flags quota exceeded (billing limit); flags are not evaluated until PostHog serves definitions again")

// ErrPollingDisabled is returned by Reload when there is no personal API
// key, project token or host to fetch definitions with.
var ErrPollingDisabled = errors.New("flag definitions polling is off (needs [posthog] host, api_key and personal_api_key)")

// fetchError is a failed poll, classified so logging and backoff can tell
// one kind of failure from another.
type fetchError struct {
	kind       string // "network", "status 401", "invalid body", ...; repeats of one kind log at debug
	retryAfter time.Duration
	err        error
}

func (e *fetchError) Error() string { return e.err.Error() }
func (e *fetchError) Unwrap() error { return e.err }

// Run polls for definitions until ctx is done: the first fetch immediately,
// then every poll interval, backing off exponentially while fetches fail.
// With polling off it just waits for ctx, so it can sit in a run group.
func (s *Service) Run(ctx context.Context) {
	if !s.polling() {
		<-ctx.Done()
		return
	}
	for {
		_ = s.poll(ctx) // recorded and logged inside
		if !s.wait(ctx) {
			return
		}
	}
}

// wait sleeps until the next poll is due; false once ctx is done. A nudge
// (new poll interval, manual Reload) restarts the wait with fresh values.
func (s *Service) wait(ctx context.Context) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case <-s.after(s.nextDelay()):
			return true
		case <-s.wake:
		}
	}
}

// nextDelay is the poll interval while healthy and interval×2^failures after
// failures, capped at max(interval, 5 min); a longer Retry-After wins.
func (s *Service) nextDelay() time.Duration {
	s.mu.Lock()
	interval, failures, retryAfter := s.interval, s.failures, s.retryAfter
	s.mu.Unlock()
	d := interval
	if failures > 0 {
		limit := max(interval, maxBackoff)
		d = retry.Policy{Initial: min(2*interval, limit), Max: limit}.Delay(failures, retryAfter)
	}
	return s.jitter(d)
}

// Reload fetches definitions now, like the SDKs' reload_feature_flags. The
// error says what happened (URL, status, PostHog's detail); the previous set
// stays in use on any error.
func (s *Service) Reload(ctx context.Context) error {
	if !s.polling() {
		return ErrPollingDisabled
	}
	err := s.poll(ctx)
	s.nudge() // Run re-plans its wait from this fresh outcome
	return err
}

// poll does one fetch and records its outcome for Status, logs and backoff.
func (s *Service) poll(ctx context.Context) error {
	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()
	err := s.fetch(ctx)
	if err != nil && ctx.Err() != nil {
		return err // shutting down: not a PostHog failure worth recording
	}
	s.record(err)
	return err
}

func (s *Service) record(err error) {
	s.mu.Lock()
	s.polls++
	s.lastPollAt = s.now()
	if err == nil {
		failures := s.failures
		s.failures, s.failKind, s.retryAfter = 0, "", 0
		s.mu.Unlock()
		if failures > 0 {
			s.log.Info().Int("failed_polls", failures).Msg("flag definitions fetch recovered")
		}
		return
	}
	var fe *fetchError
	if !errors.As(err, &fe) {
		fe = &fetchError{kind: "other", err: err}
	}
	s.pollErrors++
	s.failures++
	s.retryAfter = fe.retryAfter
	repeat := fe.kind == s.failKind
	s.failKind = fe.kind
	failures := s.failures
	s.mu.Unlock()
	s.setError(err)

	// Log the failure once when its kind changes; repeats go to debug so an
	// outage of hours does not fill the journal.
	var ev *zerolog.Event
	switch {
	case repeat:
		ev = s.log.Debug()
	case errors.Is(err, ErrQuotaLimited):
		ev = s.log.Error()
	default:
		ev = s.log.Warn()
	}
	ev.Str("error", s.redact(err.Error())).Int("failed_polls", failures).
		Msg("flag definitions fetch failed; keeping the last good set")
}

// fetch tries the endpoint that last worked, then the other one on 404.
func (s *Service) fetch(ctx context.Context) error {
	s.mu.Lock()
	first := s.endpoint
	s.mu.Unlock()
	err := s.fetchFrom(ctx, first)
	var fe *fetchError
	if !errors.As(err, &fe) || fe.kind != "status 404" {
		return err
	}
	other := 1 - first
	err2 := s.fetchFrom(ctx, other)
	if errors.As(err2, &fe) && fe.kind == "status 404" {
		return &fetchError{kind: "status 404", err: fmt.Errorf("%w; %w", err, err2)}
	}
	if err2 == nil {
		s.mu.Lock()
		s.endpoint = other
		s.mu.Unlock()
		s.log.Info().Str("path", definitionPaths[other]).
			Msgf("%s answered 404; using %s from now on", definitionPaths[first], definitionPaths[other])
	}
	return err2
}

func (s *Service) definitionsURL(i int) string {
	return s.host + definitionPaths[i] + "?token=" + url.QueryEscape(s.token) + "&send_cohorts"
}

// shownURL is definitionsURL fit for logs, errors and status: the project
// token is a key, and keys never appear there.
func (s *Service) shownURL(i int) string {
	return s.host + definitionPaths[i] + "?token=[redacted]&send_cohorts"
}

// withoutURL drops the request URL net/http puts into transport errors,
// because it carries the token.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// fetchFrom does one GET of the definitions endpoint i and applies the answer.
func (s *Service) fetchFrom(ctx context.Context, i int) error {
	u := s.shownURL(i)
	ctx, cancel := context.WithTimeout(ctx, definitionsTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.definitionsURL(i), nil)
	if err != nil {
		return &fetchError{kind: "request", err: fmt.Errorf("flags: GET %s: %w", u, withoutURL(err))}
	}
	req.Header.Set("Authorization", "Bearer "+s.key)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	cur := s.defs.Load()
	if cur != nil && cur.etag != "" {
		req.Header.Set("If-None-Match", cur.etag)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return &fetchError{kind: "network", err: fmt.Errorf("flags: GET %s: %w", u, withoutURL(err))}
	}
	defer resp.Body.Close()

	switch code := resp.StatusCode; {
	case code == http.StatusOK:
		return s.applyBody(resp, u)
	case code == http.StatusNotModified:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return s.applyNotModified(cur, resp.Header.Get("ETag"), u)
	case code == http.StatusPaymentRequired:
		s.enterQuotaLimited(cur)
		return &fetchError{kind: "quota", err: fmt.Errorf("flags: GET %s: status 402: %w", u, ErrQuotaLimited)}
	case code >= 300 && code < 400:
		return &fetchError{kind: "redirect", err: redirectError("GET", u, resp)}
	default:
		fe := &fetchError{kind: "status " + strconv.Itoa(code), err: fmt.Errorf("flags: GET %s: status %d%s%s", u, code, s.detail(resp.Body), hint(code))}
		if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
			fe.retryAfter = retryafter.Parse(resp.Header.Get("Retry-After"), s.now())
		}
		return fe
	}
}

// applyBody validates a 200 body by compiling it, then swaps and saves it. A
// body that does not compile leaves the last good set in place.
func (s *Service) applyBody(resp *http.Response, u string) error {
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDefinitionsBytes+1))
	if err != nil {
		return &fetchError{kind: "network", err: fmt.Errorf("flags: GET %s: reading body: %w", u, err)}
	}
	if len(body) > maxDefinitionsBytes {
		return &fetchError{kind: "invalid body", err: fmt.Errorf("flags: GET %s: body larger than %d bytes", u, maxDefinitionsBytes)}
	}
	body = bytes.TrimSpace(body)
	if !json.Valid(body) {
		return &fetchError{kind: "invalid body", err: fmt.Errorf("flags: GET %s: status 200 but the body is not JSON (%d bytes)", u, len(body))}
	}
	// A JSON body without a flags list is an error page or a proxy's
	// answer, not "every flag was deleted"; swapping it in would turn every
	// flag off.
	var shape struct {
		Flags json.RawMessage `json:"flags"`
	}
	if json.Unmarshal(body, &shape) != nil || len(shape.Flags) == 0 || shape.Flags[0] != '[' {
		return &fetchError{kind: "invalid body", err: fmt.Errorf("flags: GET %s: status 200 but the body has no \"flags\" list (%.80s)", u, body)}
	}
	ev, err := eval.Compile(body)
	if err != nil {
		return &fetchError{kind: "invalid body", err: fmt.Errorf("flags: GET %s: definitions do not compile: %w", u, err)}
	}
	d := &definitions{
		ev:        ev,
		raw:       body,
		etag:      resp.Header.Get("ETag"), // cleared when absent, like the SDKs
		fetchedAt: s.now(),
		source:    "network",
		sourceURL: u,
	}
	s.defs.Store(d)
	if s.quota.Swap(false) {
		s.log.Info().Msg("PostHog serves flag definitions again; the quota limit is over")
	}
	if err := s.saveCache(d, false); err != nil {
		// The fetch worked and answers are fresh; only a restart would miss
		// them. Report it loudly but do not count it as a failed poll.
		s.log.Error().Err(err).Msg("could not save flag definitions to disk; they would not survive a restart")
		s.setError(err)
	}
	s.log.Debug().Int("flags", ev.Len()).Str("url", u).Msg("flag definitions updated")
	return nil
}

// applyNotModified keeps the body and refreshes the confirmation time (and
// the ETag if the 304 carries one).
func (s *Service) applyNotModified(cur *definitions, etag, u string) error {
	if cur == nil {
		return &fetchError{kind: "invalid body", err: fmt.Errorf("flags: GET %s: status 304 but no definitions are cached", u)}
	}
	d := *cur
	d.fetchedAt = s.now()
	d.source = "network"
	if etag != "" {
		d.etag = etag
	}
	s.defs.Store(&d)
	wasQuota := s.quota.Swap(false)
	if wasQuota {
		s.log.Info().Msg("PostHog serves flag definitions again; the quota limit is over")
	}
	s.mu.Lock()
	stale := d.fetchedAt.Sub(s.persistedAt) >= persistCheckedEvery
	s.mu.Unlock()
	if wasQuota || d.etag != cur.etag || cur.source == "disk" || stale {
		if err := s.saveCache(&d, false); err != nil {
			s.log.Error().Err(err).Msg("could not save flag definitions to disk")
			s.setError(err)
		}
	}
	return nil
}

// enterQuotaLimited stops answering flags, as every SDK does on 402. Unlike
// the SDKs, the definitions are kept (in memory and on disk, marked
// quota_limited) rather than cleared: the mark stops answers just as well,
// and the good set is there the moment PostHog lifts the limit, even after
// an offline restart.
func (s *Service) enterQuotaLimited(cur *definitions) {
	if s.quota.Swap(true) || cur == nil {
		return
	}
	if err := s.saveCache(cur, true); err != nil {
		s.log.Error().Err(err).Msg("could not mark the flag definitions cache as quota limited")
	}
}

// detail extracts PostHog's error detail ({"type","code","detail"}) so an
// operator sees "Invalid personal API key." rather than just a status. It is
// scrubbed of the personal key in case a server or proxy echoes the header.
func (s *Service) detail(body io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(body, 4096))
	var e struct {
		Code   string `json:"code"`
		Detail string `json:"detail"`
		Error  string `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil {
		switch {
		case e.Detail != "":
			return ": " + s.redact(e.Detail)
		case e.Error != "":
			return ": " + s.redact(e.Error)
		case e.Code != "":
			return ": " + s.redact(e.Code)
		}
	}
	return ""
}

func hint(code int) string {
	switch code {
	case http.StatusUnauthorized, http.StatusForbidden:
		return " (check [posthog] personal_api_key: a personal API key with feature_flag:read scope or the project's feature flags secure key, and that api_key is this project's)"
	case http.StatusTooManyRequests:
		return " (rate limited; backing off)"
	}
	return ""
}
