package capture

import (
	"errors"
	"io"
)

// Reserve accounts for memory a request's decoding is about to allocate
// (the agent's decode budget): it is called with n bytes before they are
// allocated, and an error it returns stops the decoding and is returned as
// is, so the caller can answer it (503 with Retry-After) instead of a 400.
// A nil Reserve accounts for nothing.
type Reserve func(n int64) error

func (r Reserve) take(n int64) error {
	if r == nil || n <= 0 {
		return nil
	}
	if err := r(n); err != nil {
		return refused{err}
	}
	return nil
}

// refused marks a Reserve's error so decoders pass it through untouched
// (errors.As still finds the caller's own error inside).
type refused struct{ err error }

func (r refused) Error() string { return r.err.Error() }
func (r refused) Unwrap() error { return r.err }

func isRefused(err error) bool {
	var r refused
	return errors.As(err, &r)
}

// DecodeCopies is how many payload-sized copies decoding a request makes
// after its payload is known, reserved as one: the normalised events and
// the spool records built from them.
const DecodeCopies = 2

// ReadLimited reads rd to its end into a buffer that starts at initial bytes
// (at least 4 KiB) and doubles, reserving every allocation before making
// it. It reads at most limit+1 bytes, so a caller can tell "over the limit"
// from "exactly at it": the result is then longer than limit. Growing by
// doubling rather than to a declared size keeps a client that announces a
// large body and trickles it from holding memory it has not sent.
func ReadLimited(rd io.Reader, initial, limit int64, reserve Reserve) ([]byte, error) {
	if initial < 4<<10 {
		initial = 4 << 10
	}
	initial = min(initial, limit+1)
	if err := reserve.take(initial); err != nil {
		return nil, err
	}
	buf := make([]byte, 0, initial)
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > limit {
				return buf, nil
			}
			next := min(2*int64(cap(buf)), limit+1)
			if err := reserve.take(next); err != nil {
				return nil, err
			}
			grown := make([]byte, len(buf), next)
			copy(grown, buf)
			buf = grown
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
