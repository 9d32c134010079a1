package testagent

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/hogrelay/hogrelay/internal/testlog"
)

// Build compiles ./cmd/hogrelay of the module at root into dir with the
// race detector and returns the binary's path.
func Build(root, dir string) (string, error) {
	bin := filepath.Join(dir, "hogrelay")
	cmd := exec.Command("go", "build", "-race", "-o", bin, "./cmd/hogrelay")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building hogrelay: %w", err)
	}
	return bin, nil
}

// Process is the built binary running `serve` with one config file; Start
// may be called again after Stop or Kill9 (a restart on the same data).
type Process struct {
	tb         testing.TB
	Binary     string
	ConfigPath string
	Socket     string
	// Prefix runs before Binary, e.g. prlimit with its options (the
	// command execs Binary, so Cmd's pid is still the agent's).
	Prefix []string
	// Cmd is the current run (nil before the first Start).
	Cmd *exec.Cmd
	// Logs holds the agent's stdout and stderr over every run.
	Logs *testlog.Buffer
	HTTP *http.Client
	// done is closed when the current run has exited, with exitErr set.
	done    chan struct{}
	exitErr error
}

// NewProcess prepares binary to serve with the config at configPath, whose
// producer socket is socket. Nothing runs until Start; a process still
// running at the end of tb is killed, and its logs' tail is shown if tb
// failed.
func NewProcess(tb testing.TB, binary, configPath, socket string) *Process {
	p := &Process{tb: tb, Binary: binary, ConfigPath: configPath, Socket: socket, Logs: &testlog.Buffer{}, HTTP: UnixClient(socket)}
	tb.Cleanup(func() {
		if p.Running() {
			_ = p.Cmd.Process.Kill()
			<-p.done
		}
		if tb.Failed() {
			tb.Logf("agent logs:\n%s", Tail(p.Logs.String(), 60))
		}
	})
	return p
}

// Start runs the binary and waits until it answers /readyz. Start, Stop,
// Kill9 and Running are for the test's goroutine.
func (p *Process) Start() error { return p.start("/readyz") }

// StartUnready is Start that waits only until the agent answers /healthz,
// ready or not (for an agent that must stay up while it cannot take events).
func (p *Process) StartUnready() error { return p.start("/healthz") }

func (p *Process) start(probe string) error {
	argv := append(append(append([]string{}, p.Prefix...), p.Binary), "serve", "--config", p.ConfigPath)
	p.Cmd = exec.Command(argv[0], argv[1:]...)
	p.Cmd.Stdout, p.Cmd.Stderr = p.Logs, p.Logs
	if err := p.Cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	p.done = done
	cmd := p.Cmd
	go func() { p.exitErr = cmd.Wait(); close(done) }()
	if err := waitReady(p.HTTP, probe, func() bool { return !p.Running() }, 20*time.Second); err != nil {
		return fmt.Errorf("%w:\n%s", err, Tail(p.Logs.String(), 30))
	}
	return nil
}

// Running reports whether the current run has not exited.
func (p *Process) Running() bool {
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Signal sends sig to the current run.
func (p *Process) Signal(sig os.Signal) error { return p.Cmd.Process.Signal(sig) }

// Kill9 kills the agent without warning and waits for it to be gone.
func (p *Process) Kill9() error {
	if err := p.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-p.done
	return nil
}

// Stop sends SIGTERM and returns the exit error; it waits up to a minute.
func (p *Process) Stop() error {
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.done:
		return p.exitErr
	case <-time.After(60 * time.Second):
		return fmt.Errorf("the agent did not stop within 60s of SIGTERM")
	}
}
