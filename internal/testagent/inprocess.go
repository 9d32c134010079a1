package testagent

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/hogrelay/hogrelay/agent"
	"github.com/hogrelay/hogrelay/config"
	"github.com/hogrelay/hogrelay/internal/testlog"
)

// Agent is an agent running in the test's process.
type Agent struct {
	*agent.Agent
	Dir        string
	Socket     string
	ConfigPath string
	Config     config.Config
	// Logs holds what the agent logged (also written to the test's log).
	Logs *testlog.Buffer
	stop func() error
}

// Start writes a config (see WriteConfig) in a new Dir, loads it as serve
// does, and runs the agent until Stop or the end of tb. It returns once the
// agent answers /readyz.
func Start(tb testing.TB, host string, overrides ...string) *Agent {
	tb.Helper()
	dir := Dir(tb)
	path := WriteConfig(tb, dir, host, overrides...)
	cfg, err := config.Load(path)
	if err != nil {
		tb.Fatalf("testagent: %v", err)
	}
	log, logs := testlog.Capture(tb)
	if lvl, err := zerolog.ParseLevel(cfg.Log.Level); err == nil {
		log = log.Level(lvl)
	}
	a, err := agent.New(cfg, log, "test")
	if err != nil {
		tb.Fatalf("testagent: agent.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	var runErr error
	ta := &Agent{Agent: a, Dir: dir, Socket: cfg.Listen.Socket, ConfigPath: path, Config: cfg, Logs: logs,
		stop: func() error {
			once.Do(func() { cancel(); runErr = <-done })
			return runErr
		}}
	tb.Cleanup(func() {
		if err := ta.Stop(); err != nil {
			tb.Errorf("testagent: agent.Run: %v", err)
		}
	})
	exited := func() bool {
		select {
		case err := <-done:
			done <- err
			return true
		default:
			return false
		}
	}
	if err := waitReady(UnixClient(ta.Socket), "/readyz", exited, 20*time.Second); err != nil {
		tb.Fatalf("testagent: %v", err)
	}
	return ta
}

// Stop stops the agent (once) and returns what Run returned.
func (a *Agent) Stop() error { return a.stop() }
