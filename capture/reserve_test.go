package capture

import (
	"bytes"
	"compress/gzip"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Decoding reserves what it allocates, decompressed bytes included, so a
// small gzip body that inflates is accounted for at its inflated size.
func TestDecodeReservesWhatItAllocates(t *testing.T) {
	events := `{"api_key":"phc_k","batch":[` + strings.Repeat(`{"event":"e","distinct_id":"d","properties":{"pad":"`+strings.Repeat("x", 1000)+`"}},`, 999) +
		`{"event":"e","distinct_id":"d"}]}`
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	_, _ = zw.Write([]byte(events))
	require.NoError(t, zw.Close())
	require.Less(t, zipped.Len(), len(events)/50, "the body inflates a lot")

	r := post("/batch/", zipped.String())
	var reserved int64
	r.Reserve = func(n int64) error { reserved += n; return nil }
	b, err := Decode(r, Options{})
	require.NoError(t, err)
	require.Len(t, b.Events, 1000)
	require.GreaterOrEqual(t, reserved, int64((1+DecodeCopies)*len(events)), "inflated bytes and the events built from them")

	errFull := errors.New("budget exhausted")
	r.Reserve = func(n int64) error {
		if n > 1<<20 {
			return errFull
		}
		return nil
	}
	_, err = Decode(r, Options{})
	require.ErrorIs(t, err, errFull, "the reserve's refusal comes back as is, not as a 400")
}

func TestReadLimited(t *testing.T) {
	for _, tt := range []struct {
		name            string
		n, initial, lim int64
	}{
		{"small", 10, 0, 100},
		{"exactly at limit", 100, 16, 100},
		{"over limit reads limit+1", 1000, 16, 100},
		{"grows from a small start", 100_000, 16, 1 << 20},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var reserved int64
			out, err := ReadLimited(bytes.NewReader(bytes.Repeat([]byte("a"), int(tt.n))), tt.initial, tt.lim, func(n int64) error { reserved += n; return nil })
			require.NoError(t, err)
			require.EqualValues(t, min(tt.n, tt.lim+1), len(out))
			require.GreaterOrEqual(t, reserved, int64(cap(out)), "every allocation was reserved")
		})
	}
}
