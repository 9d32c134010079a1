package eval

import (
	"crypto/sha1"
	"encoding/binary"
)

// longScale is 0xFFFFFFFFFFFFFFF: the largest 60-bit value. PostHog maps the
// first 15 hex digits of the SHA-1 (the first 8 bytes shifted right by 4) onto
// [0, 1) by dividing by it; every SDK and the Rust service agree on this.
const longScale = float64(0xFFFFFFFFFFFFFFF)

// flagHash returns PostHog's consistent hash of "<key>.<id><salt>", a float in
// [0, 1). The salt is "" for rollout and "variant" for variant selection. It
// does not allocate for inputs under 256 bytes.
func flagHash(key, id, salt string) float64 {
	return hashOf(key, ".", id, salt)
}

// bucketHash is the service's get_hash: an empty identifier (a request with
// distinct_id "") hashes to 0.0 without SHA-1, so it is inside every rollout,
// even 0 %, and gets the first variant with a share.
func bucketHash(key, id, salt string) float64 {
	if id == "" {
		return 0
	}
	return flagHash(key, id, salt)
}

// holdoutHash is the service's holdout bucket (calculate_hash("holdout-", id,
// "")): the hash of "holdout-<id>", the same for every flag, so a holdout
// excludes the same people from every experiment it is attached to.
func holdoutHash(id string) float64 {
	return hashOf("holdout-", "", id, "")
}

func hashOf(a, b, c, d string) float64 {
	var stack [256]byte
	buf := stack[:0]
	if n := len(a) + len(b) + len(c) + len(d); n > len(stack) {
		buf = make([]byte, 0, n)
	}
	buf = append(buf, a...)
	buf = append(buf, b...)
	buf = append(buf, c...)
	buf = append(buf, d...)
	sum := sha1.Sum(buf)
	return float64(binary.BigEndian.Uint64(sum[:8])>>4) / longScale
}
