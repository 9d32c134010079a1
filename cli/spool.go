package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path/filepath"

	"github.com/rs/zerolog"

	"github.com/hogrelay/hogrelay/agent"
	"github.com/hogrelay/hogrelay/client"
	"github.com/hogrelay/hogrelay/config"
	"github.com/hogrelay/hogrelay/spool"
)

// spoolCommands are the spool tools; each works on the live agent or on a
// stopped agent's file (spoolTarget).
func spoolCommands() []entry {
	return []entry{
		{"stats", "pending and dead-letter counts and bytes", func(e env) command { return &spoolStatsCmd{env: e} }},
		{"export", "print every pending (or dead-letter) event as JSON lines", func(e env) command { return &spoolExportCmd{env: e} }},
		{"dead-letters", "dead letters: " + names(deadLetterCommands()), func(e env) command { return newDeadLettersGroup(e) }},
		{"compact", "rewrite the spool file to return free pages to the disk", func(e env) command { return &spoolCompactCmd{env: e} }},
		{"salvage", "re-queue every intact event of a damaged spool file", func(e env) command { return &spoolSalvageCmd{env: e} }},
	}
}

func newSpoolGroup(e env) *group {
	return &group{env: e, name: "spool", summary: "Spool tools. Each asks the running agent over its socket; when no agent answers\n" +
		"(or with --file) it works on the spool file directly, which needs the agent stopped.", subs: spoolCommands()}
}

// spoolTarget runs a spool tool against the live agent when its socket
// answers, else on the spool file directly (the agent must be stopped: a
// running agent holds the file's lock and the tool says so).
type spoolTarget struct {
	*target
	file string
	// asked records that the socket was tried and did not answer, so a
	// locked file can be explained.
	asked bool
	// admin: the tool reads or changes every project's events, which the
	// agent serves on its admin socket only. denied is that socket's
	// permission error: reported instead of trying the (locked) file.
	admin  bool
	denied error
}

func addSpoolTarget(e env, fs *flag.FlagSet) *spoolTarget {
	st := &spoolTarget{target: addTarget(e, fs)}
	fs.StringVar(&st.file, "file", "", "work on this spool file directly (the agent must be stopped)")
	return st
}

// addAdminSpoolTarget is addSpoolTarget for tools served on the admin socket.
func addAdminSpoolTarget(e env, fs *flag.FlagSet) *spoolTarget {
	st := addSpoolTarget(e, fs)
	st.admin = true
	st.adminFlag()
	return st
}

// live returns a client when the agent's socket answers (never with --file).
func (st *spoolTarget) live(ctx context.Context) (*client.Client, bool) {
	if st.file != "" {
		return nil, false
	}
	st.asked = true
	var c *client.Client
	var err error
	if st.admin {
		c, err = st.adminClient()
	} else {
		c, err = st.client()
	}
	if err != nil {
		return nil, false
	}
	if err := do(ctx, c, http.MethodGet, "/healthz", nil, nil); err != nil {
		if st.admin && errors.Is(err, fs.ErrPermission) {
			st.denied = err
		}
		return nil, false
	}
	return c, true
}

// open opens the spool file: --file, else spool.db in the config's
// data_dir. The bound is the config's max_bytes (the default's when --file
// is given and no config can be read), so stats show what the agent uses.
func (st *spoolTarget) open(readOnly bool) (*spool.Spool, error) {
	if st.denied != nil {
		return nil, st.denied
	}
	path := st.file
	cfg, err := st.loadConfig()
	if path == "" {
		if err != nil {
			return nil, err
		}
		path = filepath.Join(cfg.DataDir, agent.SpoolFile)
	} else if err != nil {
		cfg = config.Default()
	}
	s, err := spool.Open(spool.Options{Path: path, ReadOnly: readOnly, Logger: zerolog.Nop(), MaxBytes: int64(cfg.Spool.MaxBytes)})
	if errors.Is(err, spool.ErrLocked) {
		if st.asked {
			return nil, fmt.Errorf("%w; the agent's socket did not answer, so it cannot be asked either", err)
		}
		return nil, fmt.Errorf("%w; --file works only on a stopped agent's file: stop the agent, or leave out --file to ask the running agent over its socket", err)
	}
	return s, err
}

// withFile runs fn on the opened spool file and closes it.
func (st *spoolTarget) withFile(readOnly bool, fn func(*spool.Spool) error) error {
	s, err := st.open(readOnly)
	if err != nil {
		return err
	}
	defer s.Close()
	return fn(s)
}

// post runs a POST admin call on the live agent and prints its answer.
func (st *spoolTarget) post(ctx context.Context, c *client.Client, w io.Writer, path string) error {
	return st.call(ctx, c, w, http.MethodPost, path)
}

// get runs a GET admin call on the live agent and prints its answer.
func (st *spoolTarget) get(ctx context.Context, c *client.Client, w io.Writer, path string) error {
	return st.call(ctx, c, w, http.MethodGet, path)
}

func (st *spoolTarget) call(ctx context.Context, c *client.Client, w io.Writer, method, path string) error {
	var out json.RawMessage
	if err := do(ctx, c, method, path, nil, &out); err != nil {
		return err
	}
	return printJSON(w, out)
}

func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}
