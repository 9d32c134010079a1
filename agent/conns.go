package agent

import (
	"log"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/hogrelay/hogrelay/logging"
)

// Connection and timeout limits of every listener. Bodies have their own
// minimum rate (api); these bound what a connection may hold otherwise.
const (
	readHeaderTimeout = 10 * time.Second
	// idleTimeout closes keep-alive connections nobody uses, so idle SDK
	// pools do not hold connection slots for long.
	idleTimeout = 60 * time.Second
	// maxHeaderBytes bounds what one connection's request line and headers
	// may hold (Go's default is 1 MiB, which max_connections of them would
	// make gigabytes). SDKs send a few hundred bytes.
	maxHeaderBytes = 64 << 10
)

// limitListener lets at most n connections be open at once; Accept waits
// for a slot, so a flood queues in the kernel's backlog instead of using up
// the process's file descriptors (systemd's LimitNOFILE), which would stop
// the spool and every other listener too.
type limitListener struct {
	net.Listener
	slots chan struct{}
}

func limitConns(l net.Listener, n int) net.Listener {
	return &limitListener{Listener: l, slots: make(chan struct{}, n)}
}

func (l *limitListener) Accept() (net.Conn, error) {
	l.slots <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, free: func() { <-l.slots }}, nil
}

type limitConn struct {
	net.Conn
	once sync.Once
	free func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.free)
	return err
}

// burstLog is the HTTP servers' ErrorLog: their messages (accept errors
// such as "too many open files", which repeat every few milliseconds while
// they last) become JSON log lines, at most one per burst window, each
// saying how many were left out since the last.
type burstLog struct {
	log   zerolog.Logger
	burst logging.Burst
}

func newServerErrorLog(l zerolog.Logger) *log.Logger {
	return log.New(&burstLog{log: l.With().Str("component", "http").Logger(), burst: logging.Burst{Window: 10 * time.Second}}, "", 0)
}

func (b *burstLog) Write(p []byte) (int, error) {
	ok, n := b.burst.Allow()
	if !ok {
		return len(p), nil
	}
	b.log.Warn().Int("suppressed_since_last", n).Str("window", b.burst.Window.String()).Msg(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
