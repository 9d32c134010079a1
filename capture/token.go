package capture

import (
	"errors"
	"fmt"
	"strings"
)

// ErrPersonalAPIKey is CheckToken's answer for a personal API key (phx_...):
// callers that know where the key came from (config) turn it into advice.
var ErrPersonalAPIKey = errors.New("token is a personal API key (phx_...), not a project API key")

// CheckToken applies PostHog capture's shape check to a project token: non-empty,
// at most 64 printable ASCII characters, and not a personal API key. The
// agent's config applies the same rule to [posthog] api_key and
// [ingest] allowed_tokens, so a token the agent is configured with is one it
// would accept on the wire.
func CheckToken(t string) error {
	switch {
	case t == "":
		return errors.New("token is empty")
	case len(t) > 64:
		return fmt.Errorf("token is %d characters long (at most 64)", len(t))
	case strings.HasPrefix(t, "phx_"):
		return ErrPersonalAPIKey
	}
	for _, r := range t {
		if r > 127 || r < 0x21 {
			return errors.New("token contains a character that is not printable ASCII")
		}
	}
	return nil
}

// Admit applies the shape check and the [ingest] allowed_tokens list to a
// request's token: capture v0 and v1, and the SDKs' /flags and /decide.
// The error's text is the refusal's message; it never echoes the token,
// which may be a mistaken secret.
func (o Options) Admit(token string) error {
	if err := CheckToken(token); err != nil {
		return fmt.Errorf("invalid project token: %w", err)
	}
	if len(o.AllowedTokens) > 0 && !o.AllowedTokens[token] {
		return errors.New("project token is not in this agent's [ingest] allowed_tokens")
	}
	return nil
}
