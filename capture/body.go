package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"unicode/utf8"
)

// compression is where a payload says (or is guessed) to be encoded.
type compression int

const (
	compNone compression = iota
	compGzip
	compLZ64
	compBase64
)

// parseCompression reads a hint the way capture-rs does: case-insensitive,
// unknown values ignored rather than refused.
func parseCompression(v string) compression {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "gzip", "gzip-js":
		return compGzip
	case "lz64", "lz-string":
		return compLZ64
	case "base64", "b64":
		return compBase64
	}
	return compNone
}

// Payload is payloadOf for other PostHog endpoints that take the same
// encodings (the flags service decodes /flags bodies the same way). Errors
// are *Error with the status to answer.
func Payload(r Request, limit int64) ([]byte, error) { return payloadOf(r, limit) }

// payloadOf extracts the JSON text of a request from wherever SDKs put it: a
// GET ?data= parameter, a form field, or the body; base64-wrapped, gzipped
// or lz-string-compressed. Different SDK generations stash the compression
// hint in different places, so, like capture-rs, it takes the best it finds
// and sniffs gzip by its magic bytes regardless.
func payloadOf(r Request, limit int64) ([]byte, error) {
	raw := r.Body
	if d := r.Query.Get("data"); d != "" {
		// Query values arrive URL-decoded, which turned a base64 '+' into ' '.
		raw = []byte(restorePlus(d))
	}
	if len(raw) == 0 {
		return nil, errorf(http.StatusBadRequest, "empty payload: the request has no body and no data parameter")
	}
	if int64(len(raw)) > limit {
		return nil, tooBig(int64(len(raw)), limit, r.Path)
	}
	hint := parseCompression(r.Query.Get("compression"))

	// A body that is entirely base64 is unwrapped before looking for form
	// fields, as capture-rs does; JSON never looks like base64. lz64 uses
	// the base64 alphabet too, so a body declared lz64 is left for unwrap.
	if hint != compLZ64 && !likelyForm(raw) && likelyBase64(raw) {
		if err := r.Reserve.take(int64(len(raw))); err != nil {
			return nil, err
		}
		if dec, err := base64.StdEncoding.DecodeString(string(raw)); err == nil {
			raw = dec
		}
	}
	if isFormContentType(r.Header.Get("Content-Type")) && likelyForm(raw) {
		form, err := url.ParseQuery(string(raw))
		if err != nil {
			return nil, errorf(http.StatusBadRequest, "invalid urlencoded form body: %v", err)
		}
		if !form.Has("data") {
			return nil, errorf(http.StatusBadRequest, "form body has no data field (send data=<events JSON>)")
		}
		if hint == compNone {
			hint = parseCompression(form.Get("compression"))
		}
		raw = []byte(restorePlus(form.Get("data")))
	}
	if hint == compNone {
		hint = parseCompression(r.Header.Get("Content-Encoding"))
	}
	return unwrap(raw, hint, limit, r.Path, r.Reserve)
}

// unwrap undoes compression and base64 layers until the payload is JSON (or
// nothing more can be undone), capping every layer's output at limit so a
// small compressed body cannot expand without bound.
func unwrap(data []byte, hint compression, limit int64, path string, reserve Reserve) ([]byte, error) {
	for layer := 0; layer < 4; layer++ {
		var err error
		switch {
		case isGzip(data):
			data, err = gunzip(data, limit, path, reserve)
		case looksJSON(data):
			return data, nil
		case hint == compLZ64:
			// lz-string's output size is not known until it is done:
			// reserve the most it may produce.
			if err := reserve.take(limit); err != nil {
				return nil, err
			}
			data, err = lzDecompressBase64(data, limit, path)
		case hint == compBase64 || likelyBase64(data):
			// Besides an explicit hint, capture-rs unwraps base64 wherever
			// it finds it (whole bodies, and on legacy routes again after
			// decompression); JSON never looks like base64, so trying is
			// safe. Under a gzip hint the base64 usually wraps the gzip.
			if err := reserve.take(int64(len(data))); err != nil {
				return nil, err
			}
			dec, derr := base64.StdEncoding.DecodeString(string(data))
			switch {
			case derr == nil:
				data = dec
			case hint == compBase64:
				return nil, errorf(http.StatusBadRequest, "invalid base64 data: %v", derr)
			case hint == compGzip:
				data, err = gunzip(data, limit, path, reserve)
			default:
				return data, nil
			}
		case hint == compGzip:
			data, err = gunzip(data, limit, path, reserve) // not gzip: reports why
		default:
			return data, nil
		}
		if err != nil {
			return nil, err
		}
		if int64(len(data)) > limit {
			return nil, tooBig(int64(len(data)), limit, path)
		}
		hint = compNone // a hint describes the outermost layer only
	}
	return data, nil
}

func tooBig(n, limit int64, path string) *Error {
	return errorf(http.StatusRequestEntityTooLarge, "payload is over the %d-byte limit for %s (got %d bytes or more)", limit, path, n)
}

var gzipMagic = []byte{0x1f, 0x8b}

func isGzip(b []byte) bool { return bytes.HasPrefix(b, gzipMagic) }

var gzipReaders sync.Pool

func gunzip(data []byte, limit int64, path string, reserve Reserve) ([]byte, error) {
	var zr *gzip.Reader
	var err error
	if v := gzipReaders.Get(); v != nil {
		zr = v.(*gzip.Reader)
		err = zr.Reset(bytes.NewReader(data))
	} else {
		zr, err = gzip.NewReader(bytes.NewReader(data))
	}
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "invalid gzip data: %v", err)
	}
	defer gzipReaders.Put(zr)
	return inflate(zr, int64(len(data)), limit, path, "gzip", reserve)
}

// inflate reads a decompressing reader over inLen compressed bytes, at most
// limit bytes out: a refused reservation as it is, a bad stream as a 400
// naming what (the format), more than limit as a 413.
func inflate(zr io.Reader, inLen, limit int64, path, what string, reserve Reserve) ([]byte, error) {
	// Typical event JSON compresses 5-10x; start there to avoid regrowth.
	// Each doubling is reserved first, so a small body that inflates to the
	// limit is accounted for as it inflates.
	out, err := ReadLimited(zr, inLen*8+512, limit, reserve)
	if err != nil {
		if isRefused(err) {
			return nil, err
		}
		return nil, errorf(http.StatusBadRequest, "invalid %s data: %v", what, err)
	}
	if n := int64(len(out)); n > limit {
		return nil, tooBig(n, limit, path)
	}
	return out, nil
}

// looksJSON is true when the first non-space byte can start a request body.
func looksJSON(b []byte) bool {
	i := skipWS(b, 0)
	return i < len(b) && (b[i] == '{' || b[i] == '[')
}

// likelyBase64 is capture-rs's cheap test: the first 128 bytes are in the
// standard base64 alphabet and the length is a multiple of 4.
func likelyBase64(b []byte) bool {
	if len(b) == 0 || len(b)%4 != 0 {
		return false
	}
	n := min(len(b), 128)
	for _, c := range b[:n] {
		if !isBase64Char(c) {
			return false
		}
	}
	return true
}

func isBase64Char(c byte) bool {
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '='
}

// restorePlus undoes URL decoding's '+' → ' ' when the value is base64 (or
// lz64, same alphabet): a space can never be part of it.
func restorePlus(s string) string {
	if !strings.Contains(s, " ") {
		return s
	}
	n := min(len(s), 128)
	for i := 0; i < n; i++ {
		if c := s[i]; c != ' ' && !isBase64Char(c) {
			return s
		}
	}
	return strings.ReplaceAll(s, " ", "+")
}

// likelyForm is true when a urlencoded field capture knows about starts the
// body or follows an '&' within its first 128 bytes.
func likelyForm(b []byte) bool {
	prefix := b[:min(len(b), 128)]
	for _, f := range [...]string{"data=", "_=", "ip=", "compression="} {
		if bytes.HasPrefix(prefix, []byte(f)) || bytes.Contains(prefix, []byte("&"+f)) {
			return true
		}
	}
	return false
}

func isFormContentType(ct string) bool {
	if ct == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/x-www-form-urlencoded"
}

// validUTF8 reports the first invalid byte, if any, for the error message.
func validUTF8(b []byte) (int, bool) {
	if utf8.Valid(b) {
		return 0, true
	}
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i, false
		}
		i += size
	}
	return 0, true
}
