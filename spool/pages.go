package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// This file reads bbolt's on-disk page layout directly, with ReadAt and no
// mmap, for the two cases bbolt itself cannot handle: checking a file before
// bbolt maps it (a file shorter than its metadata says faults with SIGBUS
// inside bbolt), and salvaging records from a file bbolt refuses to open.
// bbolt keeps these types in an internal package, so the layout is restated
// here; it is bbolt's file format version 2 (go.etcd.io/bbolt/internal/common:
// page.go, meta.go, bucket.go), unchanged since boltdb.
const (
	boltMagic   = 0xED0CDAED
	boltVersion = 2

	pageHeaderSize = 16 // id u64, flags u16, count u16, overflow u32
	elemSize       = 16 // leaf: flags, pos, ksize, vsize u32; branch: pos, ksize u32, pgid u64
	inBucketSize   = 16 // root pgid u64, sequence u64

	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	metaPageFlag     = 0x04
	freelistPageFlag = 0x10
	bucketLeafFlag   = 0x01

	maxPageSize = 64 << 10
)

// ErrDamaged means the spool file is damaged: bbolt cannot open it, or it is
// shorter than its own metadata says. Open moves such a file aside and
// salvages it; tools opening a file read-only report it.
var ErrDamaged = errors.New("spool file is damaged")

type boltMeta struct {
	pageSize uint32
	root     uint64
	pgid     uint64 // high-water mark: pages [0, pgid) are in use
	txid     uint64
}

// readMeta parses the meta page at off; ok is false when it is not a valid
// meta page (wrong magic or version, or a checksum that does not match).
func readMeta(f io.ReaderAt, off int64) (boltMeta, bool) {
	var b [pageHeaderSize + 64]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		return boltMeta{}, false
	}
	m := b[pageHeaderSize:]
	le := binary.LittleEndian
	if le.Uint16(b[8:]) != metaPageFlag || le.Uint32(m[0:]) != boltMagic || le.Uint32(m[4:]) != boltVersion {
		return boltMeta{}, false
	}
	h := fnv.New64a()
	_, _ = h.Write(m[:56])
	if h.Sum64() != le.Uint64(m[56:]) {
		return boltMeta{}, false
	}
	return boltMeta{pageSize: le.Uint32(m[8:]), root: le.Uint64(m[16:]), pgid: le.Uint64(m[40:]), txid: le.Uint64(m[48:])}, true
}

// checkLength reports a file shorter than the pages its newest valid meta
// page says are in use, which bbolt would fault on when it reads them. A file
// without a valid meta page is left to bbolt, which refuses it cleanly.
func checkLength(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("spool: open %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("spool: stat %s: %w", path, err)
	}
	var best boltMeta
	found := false
	m0, ok0 := readMeta(f, 0)
	if ok0 {
		best, found = m0, true
	}
	if ok0 && m0.pageSize >= 512 && m0.pageSize <= maxPageSize {
		if m1, ok := readMeta(f, int64(m0.pageSize)); ok && m1.txid > best.txid {
			best = m1
		}
	} else {
		// Meta 0 is unreadable; try meta 1 at the usual page sizes.
		for ps := int64(4096); ps <= maxPageSize; ps *= 2 {
			if m1, ok := readMeta(f, ps); ok && int64(m1.pageSize) == ps {
				best, found = m1, true
				break
			}
		}
	}
	if !found {
		return nil
	}
	if need := int64(best.pgid) * int64(best.pageSize); fi.Size() < need {
		return fmt.Errorf("%w: %s is %d bytes, shorter than the %d bytes its metadata says are in use (truncated)",
			ErrDamaged, path, fi.Size(), need)
	}
	return nil
}

// pageFile reads pages of a bbolt file by id, bounded by the file's length,
// so damaged pointers give errors, never faults.
type pageFile struct {
	f    *os.File
	ps   int64
	size int64
}

var errBadPage = errors.New("bad page")

// page returns page id with its overflow pages, after checking that the
// page names itself id and that it ends inside the file.
func (p *pageFile) page(id uint64) ([]byte, error) {
	if id < 2 || int64(id) >= p.size/p.ps {
		return nil, fmt.Errorf("page %d is outside the file: %w", id, errBadPage)
	}
	hdr := make([]byte, pageHeaderSize)
	if _, err := p.f.ReadAt(hdr, int64(id)*p.ps); err != nil {
		return nil, fmt.Errorf("page %d: %w", id, err)
	}
	le := binary.LittleEndian
	if le.Uint64(hdr) != id {
		return nil, fmt.Errorf("page %d names itself %d: %w", id, le.Uint64(hdr), errBadPage)
	}
	n := (1 + int64(le.Uint32(hdr[12:]))) * p.ps
	if int64(id)*p.ps+n > p.size {
		return nil, fmt.Errorf("page %d runs past the end of the file: %w", id, errBadPage)
	}
	buf := make([]byte, n)
	if _, err := p.f.ReadAt(buf, int64(id)*p.ps); err != nil {
		return nil, fmt.Errorf("page %d: %w", id, err)
	}
	return buf, nil
}

func pageFlags(pg []byte) uint16 { return binary.LittleEndian.Uint16(pg[8:]) }
func pageCount(pg []byte) int    { return int(binary.LittleEndian.Uint16(pg[10:])) }

// leafElem is one key/value of a leaf page.
type leafElem struct {
	bucket     bool
	key, value []byte
}

// leafElems parses a leaf page (or an inline bucket's page) without trusting
// any offset in it.
func leafElems(pg []byte) ([]leafElem, error) {
	if pageFlags(pg) != leafPageFlag {
		return nil, fmt.Errorf("not a leaf page (flags %#x): %w", pageFlags(pg), errBadPage)
	}
	n := pageCount(pg)
	if pageHeaderSize+n*elemSize > len(pg) {
		return nil, fmt.Errorf("leaf page holds more elements than fit: %w", errBadPage)
	}
	le := binary.LittleEndian
	out := make([]leafElem, 0, n)
	for i := 0; i < n; i++ {
		at := pageHeaderSize + i*elemSize
		e := pg[at : at+elemSize]
		start := int64(at) + int64(le.Uint32(e[4:]))
		ks, vs := int64(le.Uint32(e[8:])), int64(le.Uint32(e[12:]))
		if start+ks+vs > int64(len(pg)) {
			return nil, fmt.Errorf("leaf element %d points past its page: %w", i, errBadPage)
		}
		out = append(out, leafElem{bucket: le.Uint32(e)&bucketLeafFlag != 0, key: pg[start : start+ks], value: pg[start+ks : start+ks+vs]})
	}
	return out, nil
}

// branchChildren parses a branch page's child page ids.
func branchChildren(pg []byte) ([]uint64, error) {
	n := pageCount(pg)
	if pageHeaderSize+n*elemSize > len(pg) {
		return nil, fmt.Errorf("branch page holds more elements than fit: %w", errBadPage)
	}
	out := make([]uint64, n)
	for i := range out {
		out[i] = binary.LittleEndian.Uint64(pg[pageHeaderSize+i*elemSize+8:])
	}
	return out, nil
}
