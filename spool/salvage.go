package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
)

// SalvageReport says what Salvage found in a damaged file.
type SalvageReport struct {
	File string `json:"file"`
	// Method is "tree" when the newest committed bucket tree was read whole,
	// or "tree+scan" when parts of it were unreadable and every leaf page was
	// scanned for the records it could not reach; a scan can find records
	// that were already delivered (sent again; PostHog keeps one per uuid).
	Method          string `json:"method"`
	PageSize        int64  `json:"page_size"`
	Records         int    `json:"records"`
	PendingEvents   int64  `json:"pending_events"`
	DeadEvents      int64  `json:"dead_letter_events"`
	DamagedRecords  int    `json:"damaged_records"`
	UnreadablePages int    `json:"unreadable_pages"`
}

// ErrNothingSalvaged means a file held no readable spool records at all
// (it is not a spool, or all of it is damaged).
var ErrNothingSalvaged = errors.New("no spool records could be read")

// Salvage reads every intact record from a spool file that bbolt cannot
// open (damaged meta pages, a truncated file), without bbolt and without
// mmap, and passes each to fn in key order. A record from the dead-letter
// bucket has a Reason (Import puts it back there); a pending one has none.
// Records whose checksum does not match are counted, not passed. The file is
// only read.
//
// bbolt never overwrites a page that the last committed transaction can
// reach, so the newest bucket tree is found without the meta pages: every
// leaf page holding the three spool buckets is a version of the root, and
// the depth counters stored with it order those versions (NextSeq grows with
// every insert, and between inserts only deletions happen).
func Salvage(path string, fn func(Record) error) (SalvageReport, error) {
	rep := SalvageReport{File: path}
	f, err := os.Open(path)
	if err != nil {
		return rep, fmt.Errorf("spool: salvage: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return rep, fmt.Errorf("spool: salvage: %w", err)
	}
	if fi.Size() == 0 {
		return rep, fmt.Errorf("spool: salvage %s: the file is empty (0 bytes): %w", path, ErrNothingSalvaged)
	}
	pf := &pageFile{f: f, size: fi.Size(), ps: detectPageSize(f, fi.Size())}
	rep.PageSize = pf.ps
	seen := map[uint64]bool{}
	emit := func(k, v []byte, dead bool) error {
		if len(k) != 8 {
			return nil
		}
		seq := keySeq(k)
		if seen[seq] {
			return nil
		}
		rec, err := decodeRecord(seq, v)
		if err != nil {
			rep.DamagedRecords++
			return nil
		}
		seen[seq] = true
		rep.Records++
		if dead {
			rep.DeadEvents += int64(len(rec.Events))
			if rec.Reason == "" {
				rec.Reason = "salvaged from the dead-letter bucket of a damaged spool file"
			}
		} else {
			rep.PendingEvents += int64(len(rec.Events))
			rec.Reason = ""
		}
		return fn(rec)
	}

	rep.Method = "tree"
	root, found := newestRoot(pf)
	if found {
		for _, b := range []struct {
			name string
			dead bool
		}{{"pending", false}, {"dead", true}} {
			err := walkBucket(pf, root[b.name], func(es []leafElem) error {
				for _, e := range es {
					if !e.bucket {
						if err := emit(e.key, e.value, b.dead); err != nil {
							return err
						}
					}
				}
				return nil
			}, func() { rep.UnreadablePages++ })
			if err != nil {
				return rep, err
			}
		}
	}
	if !found || rep.UnreadablePages > 0 {
		rep.Method = "tree+scan"
		err := scanLeaves(pf, func(es []leafElem) error {
			if isRootLeaf(es) {
				return nil
			}
			for _, e := range es {
				if e.bucket {
					continue
				}
				// Outside the tree the bucket is unknown; only dead letters
				// carry PostHog's reason.
				if len(e.key) == 8 && len(e.value) > 0 {
					if r, err := decodeRecord(keySeq(e.key), e.value); err == nil {
						if err := emit(e.key, e.value, r.Reason != ""); err != nil {
							return err
						}
						continue
					}
				}
				if len(e.key) == 8 && !seen[keySeq(e.key)] {
					rep.DamagedRecords++
				}
			}
			return nil
		})
		if err != nil {
			return rep, err
		}
	}
	if rep.Records == 0 && rep.DamagedRecords == 0 && !found {
		return rep, fmt.Errorf("spool: salvage %s: %w (is it a hogrelay spool?)", path, ErrNothingSalvaged)
	}
	return rep, nil
}

// detectPageSize takes the page size from meta page 0 when it is readable,
// else the size at which the most pages carry their own id in their header.
func detectPageSize(f *os.File, size int64) int64 {
	if m, ok := readMeta(f, 0); ok && m.pageSize >= 512 && m.pageSize <= maxPageSize {
		return int64(m.pageSize)
	}
	best, bestScore := int64(os.Getpagesize()), 0
	hdr := make([]byte, pageHeaderSize)
	for ps := int64(512); ps <= maxPageSize; ps *= 2 {
		score := 0
		for id := int64(2); id < size/ps && id < 4096; id++ {
			if _, err := f.ReadAt(hdr, id*ps); err != nil {
				break
			}
			if binary.LittleEndian.Uint64(hdr) == uint64(id) && validDataPage(pageFlags(hdr)) {
				score++
			}
		}
		if score > bestScore {
			best, bestScore = ps, score
		}
	}
	return best
}

func validDataPage(flags uint16) bool {
	return flags == leafPageFlag || flags == branchPageFlag || flags == freelistPageFlag
}

// isRootLeaf says whether a leaf holds the spool's three buckets, i.e. is a
// version of the root bucket's page.
func isRootLeaf(es []leafElem) bool {
	if len(es) != 3 {
		return false
	}
	want := map[string]bool{string(bucketPending): true, string(bucketDead): true, string(bucketMeta): true}
	for _, e := range es {
		if !e.bucket || !want[string(e.key)] || len(e.value) < inBucketSize {
			return false
		}
	}
	return true
}

// newestRoot finds the newest version of the root bucket's page and returns
// its bucket values by name.
func newestRoot(pf *pageFile) (map[string][]byte, bool) {
	var best map[string][]byte
	var bestCtr counters
	_ = scanLeaves(pf, func(es []leafElem) error {
		if !isRootLeaf(es) {
			return nil
		}
		root := map[string][]byte{}
		for _, e := range es {
			root[string(e.key)] = e.value
		}
		var ctr counters
		ok := false
		_ = walkBucket(pf, root[string(bucketMeta)], func(es []leafElem) error {
			for _, e := range es {
				if string(e.key) == string(keyCounters) {
					ctr, ok = parseCounters(e.value)
				}
			}
			return nil
		}, func() {})
		if !ok {
			return nil
		}
		newer := ctr.NextSeq > bestCtr.NextSeq ||
			(ctr.NextSeq == bestCtr.NextSeq && ctr.PendingEvents+ctr.DeadEvents < bestCtr.PendingEvents+bestCtr.DeadEvents)
		if best == nil || newer {
			best, bestCtr = root, ctr
		}
		return nil
	})
	return best, best != nil
}

// walkBucket visits the leaves of a bucket (inline or a page tree) in key
// order; an unreadable page calls bad and is skipped.
func walkBucket(pf *pageFile, value []byte, leaves func([]leafElem) error, bad func()) error {
	if len(value) < inBucketSize {
		bad()
		return nil
	}
	rootID := binary.LittleEndian.Uint64(value)
	if rootID == 0 {
		es, err := leafElems(value[inBucketSize:])
		if err != nil {
			bad()
			return nil
		}
		return leaves(es)
	}
	var walk func(id uint64, depth int) error
	walk = func(id uint64, depth int) error {
		pg, err := pf.page(id)
		if err != nil || depth > 64 {
			bad()
			return nil
		}
		switch pageFlags(pg) {
		case leafPageFlag:
			es, err := leafElems(pg)
			if err != nil {
				bad()
				return nil
			}
			return leaves(es)
		case branchPageFlag:
			kids, err := branchChildren(pg)
			if err != nil {
				bad()
				return nil
			}
			for _, k := range kids {
				if err := walk(k, depth+1); err != nil {
					return err
				}
			}
			return nil
		}
		bad()
		return nil
	}
	return walk(rootID, 0)
}

// scanLeaves visits every readable leaf page of the file, current or freed.
func scanLeaves(pf *pageFile, leaves func([]leafElem) error) error {
	hdr := make([]byte, pageHeaderSize)
	n := pf.size / pf.ps
	for id := int64(2); id < n; {
		if _, err := pf.f.ReadAt(hdr, id*pf.ps); err != nil {
			return nil
		}
		le := binary.LittleEndian
		if le.Uint64(hdr) != uint64(id) || !validDataPage(pageFlags(hdr)) {
			id++
			continue
		}
		step := 1 + int64(le.Uint32(hdr[12:]))
		if id+step > n {
			step = 1 // a damaged overflow count must not skip the rest of the file
		}
		if pageFlags(hdr) == leafPageFlag {
			if pg, err := pf.page(uint64(id)); err == nil {
				if es, err := leafElems(pg); err == nil {
					if err := leaves(es); err != nil {
						return err
					}
				}
			}
		}
		id += step
	}
	return nil
}
