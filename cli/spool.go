package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"

	"github.com/rs/zerolog"

	"github.com/hogrelay/hogrelay/agent"
	"github.com/hogrelay/hogrelay/api"
	"github.com/hogrelay/hogrelay/client"
	"github.com/hogrelay/hogrelay/spool"
)

// spoolTarget runs a spool tool against the live agent when its socket
// answers, else on the spool file directly (the agent must be stopped: a
// running agent holds the file's lock and the tool says so).
type spoolTarget struct {
	*target
	file *string
}

func (st spoolTarget) live() (*client.Client, bool) {
	if *st.file != "" {
		return nil, false
	}
	c, err := st.client()
	if err != nil {
		return nil, false
	}
	ctx, cancel := callCtx()
	defer cancel()
	if err := c.Do(ctx, http.MethodGet, "/healthz", nil, nil); err != nil {
		return nil, false
	}
	return c, true
}

func (st spoolTarget) open(readOnly bool) (*spool.Spool, error) {
	path := *st.file
	if path == "" {
		cfg, err := st.loadConfig()
		if err != nil {
			return nil, err
		}
		path = filepath.Join(cfg.DataDir, agent.SpoolFile)
	}
	s, err := spool.Open(spool.Options{Path: path, ReadOnly: readOnly, Logger: zerolog.Nop(), MaxBytes: 1 << 62})
	if errors.Is(err, spool.ErrLocked) {
		return nil, fmt.Errorf("%w; the agent's socket did not answer, so it cannot be asked either", err)
	}
	return s, err
}

func runSpool(e env, args []string) error {
	if len(args) == 0 {
		return errors.New("spool needs a subcommand: stats | export [--dead-letters] | dead-letters list|requeue|drop | compact | salvage FILE")
	}
	sub, rest := args[0], args[1:]
	if sub == "salvage" {
		return runSpoolSalvage(e, rest)
	}
	if sub == "dead-letters" {
		if len(rest) == 0 {
			return errors.New("spool dead-letters needs list, requeue or drop")
		}
		sub, rest = "dead-letters "+rest[0], rest[1:]
	}
	fs := newFlagSet(e, "spool "+sub)
	st := spoolTarget{target: addTarget(fs), file: fs.String("file", "", "work on this spool file directly (agent stopped)")}
	deadLetters := fs.Bool("dead-letters", false, "export the dead-letter bucket instead of pending events")
	if _, err := parse(fs, rest); err != nil {
		return err
	}
	c, live := st.live()
	ctx, cancel := callCtx()
	defer cancel()
	printJSON := func(v any) error {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(e.stdout, string(b))
		return err
	}
	withFile := func(readOnly bool, fn func(*spool.Spool) error) error {
		s, err := st.open(readOnly)
		if err != nil {
			return err
		}
		defer s.Close()
		return fn(s)
	}
	switch sub {
	case "stats":
		if live {
			var out json.RawMessage
			if err := c.Do(ctx, http.MethodGet, "/hogrelay/v1/spool/stats", nil, &out); err != nil {
				return err
			}
			return printJSON(out)
		}
		return withFile(true, func(s *spool.Spool) error {
			stats, err := s.Stats()
			if err != nil {
				return err
			}
			return printJSON(stats)
		})
	case "export":
		if live {
			path := "/hogrelay/v1/spool/export"
			if *deadLetters {
				path += "?dead_letters=1"
			}
			// Exports can be large; no overall deadline.
			return c.Stream(ctxNoDeadline(), path, e.stdout)
		}
		which := spool.Pending
		if *deadLetters {
			which = spool.DeadLetters
		}
		return withFile(true, func(s *spool.Spool) error {
			_, err := api.WriteExport(bufio.NewWriter(e.stdout), s, which)
			return err
		})
	case "dead-letters list":
		if live {
			var out json.RawMessage
			if err := c.Do(ctx, http.MethodGet, "/hogrelay/v1/spool/dead-letters", nil, &out); err != nil {
				return err
			}
			return printJSON(out)
		}
		return withFile(true, func(s *spool.Spool) error {
			out, err := api.ListDeadLetters(s, 1000)
			if err != nil {
				return err
			}
			return printJSON(out)
		})
	case "dead-letters requeue", "dead-letters drop", "compact":
		path := map[string]string{
			"dead-letters requeue": "/hogrelay/v1/spool/dead-letters/requeue",
			"dead-letters drop":    "/hogrelay/v1/spool/dead-letters/drop",
			"compact":              "/hogrelay/v1/spool/compact",
		}[sub]
		if live {
			var out json.RawMessage
			if err := c.Do(ctx, http.MethodPost, path, nil, &out); err != nil {
				return err
			}
			return printJSON(out)
		}
		return withFile(false, func(s *spool.Spool) error {
			switch sub {
			case "dead-letters requeue":
				n, err := s.Requeue()
				if err != nil {
					return err
				}
				return printJSON(map[string]int64{"requeued": n})
			case "dead-letters drop":
				n, err := s.DropDeadLetters()
				if err != nil {
					return err
				}
				return printJSON(map[string]int64{"dropped": n})
			}
			res, err := s.Compact()
			if err != nil {
				return err
			}
			return printJSON(map[string]any{"before_bytes": res.Before, "after_bytes": res.After, "took_ms": res.Took.Milliseconds()})
		})
	}
	return fmt.Errorf("spool: unknown subcommand %q", sub)
}
