package api

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"": true, "localhost": true, "localhost:8787": true, "LOCALHOST.:1": true, "app.localhost:3000": true,
		"127.0.0.1": true, "127.0.0.1:8787": true, "127.8.9.10:1": true, "[::1]:8787": true, "::1": true,
		"evil.example": false, "evil.example:8787": false, "localhost.evil.example": false, "10.0.0.1:80": false,
		"0.0.0.0:8787": false, "[::]:1": false, "127.0.0.1.nip.io": false,
	} {
		require.Equal(t, want, loopbackHost(host), host)
	}
}

// A new /hogrelay/v1/ route is admin-only unless listed as local, so a
// route added without thought fails closed.
func TestRouteClasses(t *testing.T) {
	for pattern, want := range map[string]class{
		"/batch/": public, "/e": public, "/flags/definitions": public, "GET /healthz": public, "/": public,
		"GET /metrics": local, "GET /hogrelay/v1/status": local, "POST /hogrelay/v1/flags/evaluate": local,
		"GET /hogrelay/v1/spool/export": admin, "POST /hogrelay/v1/spool/dead-letters/drop": admin,
		"POST /hogrelay/v1/flags/reload": admin, "POST /hogrelay/v1/some/new/route": admin,
	} {
		require.Equal(t, want, classOf(pattern), pattern)
	}
}

func TestDefinitionsKeyCompare(t *testing.T) {
	h := &Handler{}
	require.False(t, h.definitionsKeyOK("anything"), "no policy set: nothing opens")
	h.SetAccess(Access{DefinitionsKeys: []string{"", "phx_secret", "local-sdk-key"}})
	for key, want := range map[string]bool{"phx_secret": true, "local-sdk-key": true, "": false, "phx_secre": false, "phx_secretx": false} {
		require.Equal(t, want, h.definitionsKeyOK(key), key)
	}
}
