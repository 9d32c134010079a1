package agent

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hogrelay/hogrelay/config"
	"github.com/hogrelay/hogrelay/forwarder"
	"github.com/hogrelay/hogrelay/sdnotify"
)

// statusInterval is how often the STATUS= line is refreshed; it is sent
// only when its text changed, so an idle agent sends nothing.
const statusInterval = 5 * time.Second

// ReloadRefusal is the last SIGHUP whose config was refused; it stays in
// the STATUS= line and in status until a reload succeeds.
type ReloadRefusal struct {
	At    time.Time `json:"at"`
	Error string    `json:"error"`
}

// RefuseReload records that a reload was refused because the config could
// not be loaded: it is logged, shown in `systemctl status` at once and in
// status, and the running configuration is kept.
func (a *Agent) RefuseReload(err error) {
	a.mu.Lock()
	a.refused = &ReloadRefusal{At: time.Now(), Error: err.Error()}
	a.mu.Unlock()
	a.log.Error().Err(err).Msg("configuration reload refused; keeping the running configuration")
	a.pokeStatus()
}

// pokeStatus makes the notifier send STATUS= at once. It must not block:
// Reload calls it holding a.mu.
func (a *Agent) pokeStatus() {
	select {
	case a.statusPoke <- struct{}{}:
	default:
	}
}

// reloadRefused returns the refusal still in force, if any.
func (a *Agent) reloadRefused() *ReloadRefusal {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.refused
}

// statusLine is the one line `systemctl status` shows: spool depth and the
// oldest event's age, dead letters, the forwarder's state and last error,
// and a refused reload.
func (a *Agent) statusLine() string {
	st := a.Status()
	parts := []string{fmt.Sprintf("spool: %d events (%s)", st.Spool.PendingEvents, config.ByteSize(st.Spool.PendingBytes).Human())}
	if st.OldestAgeSecs > 0 {
		parts[0] += ", oldest " + (time.Duration(st.OldestAgeSecs) * time.Second).String()
	}
	if st.Spool.DeadEvents > 0 {
		parts = append(parts, fmt.Sprintf("dead letters: %d", st.Spool.DeadEvents))
	}
	fwd := "forwarder: " + string(st.Forwarder.State)
	if st.Forwarder.State != forwarder.StateIdle && st.Forwarder.State != forwarder.StateSending && st.Forwarder.LastError != "" {
		fwd += " (" + st.Forwarder.LastError + ")"
	}
	parts = append(parts, fwd)
	if r := st.ReloadRefused; r != nil {
		parts = append(parts, "reload refused at "+r.At.Format(time.TimeOnly)+": "+r.Error)
	}
	return strings.Join(parts, "; ")
}

// statusNotifier sends the STATUS= line at start, after a reload (or a
// refused one) and, when its text changed, every statusInterval, until ctx
// is done. Outside systemd it does nothing.
func (a *Agent) statusNotifier(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	if os.Getenv("NOTIFY_SOCKET") == "" {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		last := ""
		send := func(always bool) {
			line := a.statusLine()
			if line == last && !always {
				return
			}
			if err := sdnotify.Status(line); err != nil {
				a.log.Debug().Err(err).Msg("sending STATUS= to systemd failed")
				return
			}
			last = line
		}
		send(true)
		t := time.NewTicker(statusInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-a.statusPoke:
				send(true)
			case <-t.C:
				send(false)
			}
		}
	}()
	return done
}
