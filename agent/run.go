package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/hogrelay/hogrelay/forwarder"
	"github.com/hogrelay/hogrelay/sdnotify"
	"github.com/hogrelay/hogrelay/spool"
)

// running is what start set going and stop must end, in the reverse order.
type running struct {
	servers       []*http.Server
	serveErr      chan error
	background    sync.WaitGroup // the forwarder and the flag poller
	stopForwarder context.CancelFunc
	stopFlags     context.CancelFunc
	watchdogDone  <-chan struct{}
	statusDone    <-chan struct{}
}

// Run serves until ctx is done, then shuts down in order. It returns the
// first fatal error, or nil after a clean shutdown.
func (a *Agent) Run(ctx context.Context) error {
	r := a.start(ctx)
	err := a.serve(ctx, r)
	return a.stop(r, err)
}

// start runs the forwarder, the flag poller and one HTTP server per
// listener, then tells systemd the agent is ready.
func (a *Agent) start(ctx context.Context) *running {
	cfg := a.config()
	r := &running{serveErr: make(chan error, len(a.listeners))}
	fwdCtx, stopForwarder := context.WithCancel(context.Background())
	flagsCtx, stopFlags := context.WithCancel(context.Background())
	r.stopForwarder, r.stopFlags = stopForwarder, stopFlags
	r.background.Add(2)
	go func() { defer r.background.Done(); _ = a.forwarder.Run(fwdCtx) }()
	go func() { defer r.background.Done(); a.flags.Run(flagsCtx) }()

	r.servers = make([]*http.Server, len(a.listeners))
	errLog := newServerErrorLog(a.log)
	for i, l := range a.listeners {
		srv := &http.Server{Handler: a.handler.On(a.surfaces[i]), ReadHeaderTimeout: readHeaderTimeout, IdleTimeout: idleTimeout,
			MaxHeaderBytes: maxHeaderBytes, ErrorLog: errLog}
		r.servers[i] = srv
		go func() {
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				r.serveErr <- fmt.Errorf("listener %s: %w", a.addrs[i], err)
			}
		}()
	}
	a.mu.Lock()
	a.ready = true
	a.mu.Unlock()
	st, _ := a.spool.Stats()
	a.log.Info().Strs("listen", a.producerAddrs()).Str("admin_socket", a.adminSocket()).Str("data_dir", cfg.DataDir).Str("posthog", cfg.PostHog.Host).
		Int64("spooled_events", st.PendingEvents).Str("version", a.version).Msg("hogrelay is ready")
	for _, w := range cfg.Warnings() {
		a.log.Warn().Msg(w)
	}
	if err := sdnotify.Ready(); err != nil {
		a.log.Warn().Err(err).Msg("telling systemd we are ready failed")
	}
	r.watchdogDone = a.watchdog(ctx)
	r.statusDone = a.statusNotifier(ctx)
	return r
}

// serve waits until ctx is done or a listener fails, and returns that
// failure (nil when asked to stop).
func (a *Agent) serve(ctx context.Context, r *running) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-r.serveErr:
		a.log.Error().Err(err).Msg("a listener failed; shutting down")
		return err
	}
}

// stop is the one shutdown path: no new connections, in-flight requests
// answered (their spool commits finish), forward for what is left of
// shutdown_timeout, stop the forwarder and the poller, close the spool.
//
// The whole of it fits in shutdown_timeout plus the time to stop the
// forwarder and close the spool (about a second), so systemd's
// TimeoutStopSec never SIGKILLs the agent: producers' requests get at most
// half of the budget to finish (a producer that stalls mid-body or never
// reads its answer has its connection closed; it got no 2xx, so nothing it
// was promised is lost), forwarding gets the rest, and the forwarder's
// requests still in flight are cancelled (those events stay spooled).
// shutdown_timeout is read now, from the running configuration, so a value
// applied by a reload is the one used.
func (a *Agent) stop(r *running, runErr error) error {
	_ = sdnotify.Stopping()
	a.mu.Lock()
	a.ready = false
	a.mu.Unlock()
	budget := a.config().Forwarder.ShutdownTimeout.D()
	deadline := time.Now().Add(budget)
	a.log.Info().Msg("shutting down: no new connections; finishing in-flight requests")
	shutCtx, cancel := context.WithDeadline(context.Background(), time.Now().Add(budget/2))
	for _, srv := range r.servers {
		if err := srv.Shutdown(shutCtx); err != nil { // waits for handlers, i.e. for their spool commits
			_ = srv.Close()
		}
	}
	if shutCtx.Err() != nil {
		a.log.Warn().Msg("producers' requests still unfinished after half of shutdown_timeout; closed their connections (they got no answer, so they were promised nothing)")
	}
	cancel()
	a.removeSocket()

	a.log.Info().Str("for", time.Until(deadline).Round(time.Millisecond).String()).Str("shutdown_timeout", budget.String()).
		Msg("forwarding what is spooled before stopping")
	drainCtx, cancel := context.WithDeadline(context.Background(), deadline)
	a.forwarder.Drain(drainCtx)
	cancel()
	r.stopForwarder()
	r.stopFlags()
	r.background.Wait()
	if err := a.flags.Close(); err != nil {
		a.log.Warn().Err(err).Msg("closing the flag answer cache")
	}
	<-r.watchdogDone
	<-r.statusDone
	st, _ := a.spool.Stats()
	if err := a.spool.Close(); err != nil && runErr == nil {
		runErr = err
	}
	a.log.Info().Int64("events_left_in_spool", st.PendingEvents).Msg("hogrelay stopped; unsent events stay in the spool for the next start")
	return runErr
}

// watchdog pings systemd at half its interval while the agent is healthy:
// the spool answers and the forwarder loop is alive.
func (a *Agent) watchdog(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	interval, ok := sdnotify.WatchdogInterval()
	if !ok {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		t := time.NewTicker(interval / 2)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				// A spool waiting for disk space is alive (it retries by
				// itself and /readyz says why); a restart would not help.
				if _, err := a.spool.Stats(); (err != nil && !errors.Is(err, spool.ErrUnavailable)) || a.forwarder.Status().State == forwarder.StateStopped {
					a.log.Error().Err(err).Msg("unhealthy: not pinging the systemd watchdog")
					continue
				}
				_ = sdnotify.Watchdog()
			}
		}
	}()
	return done
}
