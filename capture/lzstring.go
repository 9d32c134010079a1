package capture

import (
	"net/http"
	"unicode/utf16"
	"unicode/utf8"
)

// lz-string (https://github.com/pieroxy/lz-string) "compressToBase64" is
// what older posthog-js versions send with compression=lz64. This is a
// decoder written from the format: a bit stream, 6 bits per base64
// character, of dictionary codes whose width grows as the dictionary does.

const lzAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="

var lzValue = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i := 0; i < len(lzAlphabet); i++ {
		t[lzAlphabet[i]] = int8(i)
	}
	return t
}()

// lzBits reads the stream most-significant bit first within each character,
// and assembles multi-bit values least-significant bit first, as lz-string
// writes them.
type lzBits struct {
	in    []byte
	index int // next character to load
	val   int // current character's value
	pos   int // mask of the next bit of val
}

func (r *lzBits) load() {
	r.val = 0
	if r.index < len(r.in) {
		// lz-string treats characters outside its alphabet as 0.
		if v := lzValue[r.in[r.index]]; v >= 0 {
			r.val = int(v)
		}
	}
	r.index++
	r.pos = 32
}

func (r *lzBits) read(n int) int {
	bits := 0
	for i := 0; i < n; i++ {
		if r.val&r.pos != 0 {
			bits |= 1 << i
		}
		r.pos >>= 1
		if r.pos == 0 {
			r.load()
		}
	}
	return bits
}

// lzDecompressBase64 decodes an lz-string base64 payload into UTF-8, with
// the output capped at limit.
func lzDecompressBase64(in []byte, limit int64, path string) ([]byte, error) {
	bad := func(why string) error {
		return errorf(http.StatusBadRequest, "invalid lz64 data: %s", why)
	}
	if len(in) == 0 {
		return nil, bad("empty")
	}
	r := lzBits{in: in}
	r.load()

	// Dictionary entries are spans of the output: every entry lz-string
	// builds is the previous output chunk plus the first unit of the next
	// one, which sit next to each other in the output.
	type span struct{ off, n int }
	dict := make([]span, 3, 1024) // codes 0-2 are control codes
	var out []uint16
	enlargeIn, numBits := 4, 3

	var first int
	switch r.read(2) {
	case 0:
		first = r.read(8)
	case 1:
		first = r.read(16)
	default:
		return nil, bad("stream ends before any data")
	}
	out = append(out, uint16(first))
	dict = append(dict, span{0, 1})
	w := span{0, 1}

	for {
		if r.index > len(in) {
			return nil, bad("truncated stream")
		}
		c := r.read(numBits)
		literal := -1
		switch c {
		case 0, 1:
			width := 8
			if c == 1 {
				width = 16
			}
			literal = r.read(width)
			// The new entry is the literal, emitted just below at len(out).
			dict = append(dict, span{len(out), 1})
			c = len(dict) - 1
			enlargeIn--
		case 2:
			return lzUTF8(out)
		}
		if enlargeIn == 0 {
			enlargeIn = 1 << numBits
			numBits++
		}
		entry := span{off: len(out)}
		switch {
		case literal >= 0:
			entry.n = 1
			out = append(out, uint16(literal))
		case c < len(dict) && c >= 3:
			e := dict[c]
			entry.n = e.n
			out = append(out, out[e.off:e.off+e.n]...)
		case c == len(dict):
			entry.n = w.n + 1
			out = append(out, out[w.off:w.off+w.n]...)
			out = append(out, out[w.off])
		default:
			return nil, bad("code refers past the dictionary")
		}
		if int64(len(out)) > limit {
			return nil, tooBig(int64(len(out)), limit, path)
		}
		// w and entry are adjacent in out, so w+entry[0] is one span.
		dict = append(dict, span{w.off, w.n + 1})
		enlargeIn--
		w = entry
		if enlargeIn == 0 {
			enlargeIn = 1 << numBits
			numBits++
		}
	}
}

// lzUTF8 converts lz-string's UTF-16 output to UTF-8, refusing unpaired
// surrogates as capture-rs does.
func lzUTF8(units []uint16) ([]byte, error) {
	out := make([]byte, 0, len(units))
	for i := 0; i < len(units); i++ {
		r := rune(units[i])
		if utf16.IsSurrogate(r) {
			if i+1 >= len(units) {
				return nil, errorf(http.StatusBadRequest, "invalid lz64 data: unpaired UTF-16 surrogate")
			}
			r = utf16.DecodeRune(r, rune(units[i+1]))
			if r == utf8.RuneError {
				return nil, errorf(http.StatusBadRequest, "invalid lz64 data: unpaired UTF-16 surrogate")
			}
			i++
		}
		out = utf8.AppendRune(out, r)
	}
	return out, nil
}
