package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A 3xx on /flags or the definitions is never followed (a POST would become
// a GET, and the personal key would go wherever Location points): it is a
// failure that names the redirect and says to fix [posthog] host.
func TestFlagsRedirectsAreNotFollowed(t *testing.T) {
	up := newSampleUpstream(t, "")
	up.SetDefinitionsStatus(http.StatusFound)
	a := startAgent(t, up)
	up.SetFlagsHandler(func(map[string]any) (int, any) { return http.StatusMovedPermanently, "moved" })

	out, errOut, code := a.cli("flags", "get", "checkout-button", "--distinct-id", "u1", "--no-called-event")
	require.Equal(t, 3, code, errOut)
	require.Equal(t, "null", strings.TrimSpace(out))
	require.Contains(t, errOut, "status 301 redirects to")
	require.Contains(t, errOut, "[posthog] host")
	reqs := up.FlagsRequests()
	require.Len(t, reqs, 1, "not followed, not retried")

	require.Eventually(t, func() bool {
		fl := a.status()["flags"].(map[string]any)
		e, _ := fl["last_error"].(string)
		return strings.Contains(e, "status 302 redirects to") && strings.Contains(e, "[posthog] host")
	}, 10*time.Second, 50*time.Millisecond, "the definitions poll reports the redirect")
	for _, d := range up.DefinitionLog() {
		require.Equal(t, "/flags/definitions", d.Path, "the redirect target was never requested")
	}
}
