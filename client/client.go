// Package client talks to a running agent over its unix socket; the CLI's
// subcommands (capture, flags, status, spool …) are built on it.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"
)

// Client is an HTTP client bound to one unix socket.
type Client struct {
	socket string
	http   *http.Client
	admin  bool // the admin socket: different advice on permission denied
}

// NewAdmin returns a client for the agent's admin socket.
func NewAdmin(socket string) *Client {
	c := New(socket)
	c.admin = true
	return c
}

// New returns a client for the agent listening on socket.
func New(socket string) *Client {
	return &Client{
		socket: socket,
		http: &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", socket)
			},
			MaxIdleConnsPerHost: 64,
		}},
	}
}

// HTTP returns the underlying client (requests go to http://hogrelay/...).
func (c *Client) HTTP() *http.Client { return c.http }

// Error is the agent's refusal: its status and the message it sent.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("agent answered %d: %s", e.Status, e.Message) }

// Do sends body (JSON-encoded unless it is []byte) and decodes a JSON answer
// into out (when non-nil).
func (c *Client) Do(ctx context.Context, method, path string, body any, out any) error {
	resp, err := c.request(ctx, method, path, body, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decoding the agent's answer to %s %s: %w", method, path, err)
	}
	return nil
}

// Stream copies the answer body to w (for exports).
func (c *Client) Stream(ctx context.Context, path string, w io.Writer) error {
	resp, err := c.request(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	return err
}

// Post sends raw bytes with headers; used by capture-style commands.
func (c *Client) Post(ctx context.Context, path string, body []byte, header http.Header) error {
	resp, err := c.request(ctx, http.MethodPost, path, body, header)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

func (c *Client) request(ctx context.Context, method, path string, body any, header http.Header) (*http.Response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("encoding the request: %w", err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://hogrelay"+path, rd)
	if err != nil {
		return nil, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.explain(err)
	}
	if resp.StatusCode >= 300 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		return nil, &Error{Status: resp.StatusCode, Message: strings.TrimSpace(string(msg))}
	}
	return resp, nil
}

// explain turns dial errors into advice naming the socket.
func (c *Client) explain(err error) error {
	switch {
	case errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ENOENT):
		return fmt.Errorf("cannot reach the agent: socket %s does not exist (is hogrelay running? check --socket or --config)", c.socket)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("cannot reach the agent: nothing listens on %s (stale socket; is hogrelay running?)", c.socket)
	case c.admin && (errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EACCES)):
		return fmt.Errorf("cannot reach the agent's admin socket %s: %w (admin commands need root, the agent's user, or the admin socket's group, e.g. sudo usermod -aG hogrelay-admin $USER; see README \"Security model\")", c.socket, os.ErrPermission)
	case errors.Is(err, os.ErrPermission), errors.Is(err, syscall.EACCES):
		return fmt.Errorf("cannot reach the agent: permission denied on %s (join the socket's group, e.g. usermod -aG hogrelay $USER)", c.socket)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("the agent at %s did not answer in time: %w", c.socket, err)
	}
	return fmt.Errorf("talking to the agent at %s: %w", c.socket, err)
}

// Timeout is the default deadline of one CLI call.
const Timeout = 30 * time.Second
