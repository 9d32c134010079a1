package api

// The definitions endpoints (/flags/definitions and the older
// /api/feature_flag/local_evaluation) for SDKs that evaluate locally.

import (
	"fmt"
	"hash/fnv"
	"net/http"
	"strings"
)

// handleDefinitions serves the cached definitions to SDKs that evaluate
// locally, so a VM needs one poller (this agent), and SDKs start offline too.
func (h *Handler) handleDefinitions(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeText(w, http.StatusMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path+" (use GET)")
		return
	}
	auth := r.Header.Get("Authorization")
	key := strings.TrimSpace(strings.TrimPrefix(auth, "Bearer "))
	if !strings.HasPrefix(auth, "Bearer ") || key == "" {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"type": "authentication_error", "code": "no_authentication",
			"detail": "send Authorization: Bearer <personal or project secret key>, as PostHog requires"})
		return
	}
	// Any local process and any web page can reach the TCP listener, and
	// definitions can hold emails and payloads: there only the configured
	// keys open them. The producer socket's file mode already says who may.
	if surfaceOf(r) == LoopbackTCP && !h.definitionsKeyOK(key) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"type": "authentication_error", "code": "authentication_failed",
			"detail": "this key may not read flag definitions here: on the TCP listener send [posthog] personal_api_key or a key from [flags] definitions_keys"})
		return
	}
	if h.deps.Flags == nil {
		writeText(w, http.StatusServiceUnavailable, "feature flags are not enabled on this agent")
		return
	}
	if h.deps.Flags.Status().QuotaLimited {
		writeJSON(w, http.StatusPaymentRequired, map[string]string{"type": "quota_limited", "detail": "PostHog reports the feature flags quota is exceeded"})
		return
	}
	if !h.deps.Flags.OwnProject(r.URL.Query().Get("token")) {
		// Serving them would make another project's SDK evaluate this
		// project's flags. Without definitions SDKs ask /flags, which the
		// agent answers for any project from PostHog.
		writeJSON(w, http.StatusForbidden, map[string]string{"type": "authentication_error", "code": "permission_denied",
			"detail": "this agent holds the flag definitions of one project ([posthog] api_key) and token names another; its SDKs can still ask /flags here, or poll PostHog for definitions"})
		return
	}
	raw, etag, ok := h.deps.Flags.Definitions()
	if !ok {
		writeText(w, http.StatusServiceUnavailable, "no flag definitions cached yet (set [posthog] personal_api_key so the agent can fetch them)")
		return
	}
	if etag == "" {
		// PostHog sent no ETag: derive one from the body, so SDKs polling the
		// agent still get 304s while it does not change.
		sum := fnv.New64a()
		_, _ = sum.Write(raw)
		etag = fmt.Sprintf(`"hr-%x"`, sum.Sum64())
	}
	w.Header().Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(200)
	if r.Method == http.MethodGet {
		_, _ = w.Write(raw)
	}
}
