package client

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestUnreachableAgentErrorsNameTheSocketAndTheFix(t *testing.T) {
	dir, err := os.MkdirTemp("", "hrc")
	require.NoError(t, err)
	defer os.RemoveAll(dir)

	stale := filepath.Join(dir, "stale.sock")
	l, err := net.Listen("unix", stale)
	require.NoError(t, err)
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	require.NoError(t, l.Close()) // the file stays, nobody listens: a crashed agent

	cases := []struct{ name, socket, want string }{
		{"missing", filepath.Join(dir, "none.sock"), "does not exist (is hogrelay running?"},
		{"stale", stale, "nothing listens on " + stale},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := New(tc.socket).Do(context.Background(), http.MethodGet, "/healthz", nil, nil)
			require.ErrorContains(t, err, tc.socket)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestRefusalCarriesTheAgentsStatusAndMessage(t *testing.T) {
	dir, err := os.MkdirTemp("", "hrc")
	require.NoError(t, err)
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "a.sock")
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "batch[0]: missing distinct_id", http.StatusBadRequest)
	})}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()

	err = New(sock).Post(context.Background(), "/batch/", []byte(`{}`), nil)
	var ae *Error
	require.ErrorAs(t, err, &ae)
	require.Equal(t, 400, ae.Status)
	require.Equal(t, "batch[0]: missing distinct_id", ae.Message)
	require.EqualError(t, err, "agent answered 400: batch[0]: missing distinct_id")
}
