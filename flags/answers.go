package flags

import (
	"container/list"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/hogrelay/hogrelay/flags/eval"
)

// AnswerFile is the name of the remote-answer cache inside Options.Dir.
const AnswerFile = "flag-answers.db"

// Answer cache defaults (config [flags] answer_cache_*).
const (
	DefaultAnswerCacheEntries = 100_000
	DefaultAnswerCacheBytes   = 64 << 20
	DefaultAnswerCacheAge     = 7 * 24 * time.Hour
)

var answerBucket = []byte("answers")

// AnswerCacheOptions bounds the remote-answer cache. Zero values take the defaults.
type AnswerCacheOptions struct {
	MaxEntries int
	MaxBytes   int64
	MaxAge     time.Duration
}

func (o AnswerCacheOptions) withDefaults() AnswerCacheOptions {
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultAnswerCacheEntries
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultAnswerCacheBytes
	}
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultAnswerCacheAge
	}
	return o
}

// AnswerCacheStats is the cache part of Status.
type AnswerCacheStats struct {
	Path       string
	Entries    int
	Bytes      int64 // keys and values of the entries
	FileBytes  int64
	MaxEntries int
	MaxBytes   int64
	MaxAge     time.Duration
	Hits       uint64 // questions answered from the cache while PostHog was unreachable
	Misses     uint64 // such questions the cache could not answer
	Evicted    uint64
	Dropped    uint64 // fresh answers not saved because the writer was behind
	LastError  string
}

// cachedFlag is one flag's last answer: its v2 object as PostHog sent it.
type cachedFlag struct {
	V2 json.RawMessage `json:"v2"`
	At time.Time       `json:"at"`
}

// cachedEntry is everything known for one evaluation context.
type cachedEntry struct {
	// Complete: the last answer that covered every flag (no
	// flag_keys_to_evaluate) is in Flags, so a flag missing here is one
	// PostHog did not return, not one nobody asked about.
	Complete    bool                  `json:"complete"`
	CompleteAt  time.Time             `json:"complete_at,omitzero"`
	RequestID   string                `json:"request_id,omitempty"`
	EvaluatedAt int64                 `json:"evaluated_at,omitempty"`
	Flags       map[string]cachedFlag `json:"flags"`
}

// cacheWrite is one job for the writer: a fresh answer to merge (asked nil =
// every flag), or a clear.
type cacheWrite struct {
	key   string
	at    time.Time
	ans   remoteAnswer
	asked []string
	clear chan error
}

type cacheMeta struct {
	key   string
	size  int64
	stamp time.Time // newest answer in the entry
}

// answerCache keeps the last /flags answer PostHog gave for each evaluation
// context in a bbolt file, so questions are answered when PostHog cannot be
// reached, right after a restart too. bbolt's transactions make every write
// all-or-nothing across crashes. Writes go through one goroutine that
// commits them in groups, so an SDK's answer never waits on an fsync.
//
// Bounds: MaxEntries and MaxBytes (least recently used go first) and MaxAge
// (older answers are never served). The file holds distinct ids and
// properties: it is created 0600 and `hogrelay flags cache clear` empties it.
type answerCache struct {
	db   *bolt.DB
	path string
	opts AnswerCacheOptions
	now  func() time.Time
	log  zerolog.Logger

	mu      sync.Mutex // guards the fields below; never held during a bbolt transaction
	lru     *list.List // of *cacheMeta; front = most recently used
	index   map[string]*list.Element
	bytes   int64
	closed  bool
	hits    uint64
	misses  uint64
	evicted uint64
	dropped uint64
	lastErr string

	writes chan cacheWrite
	done   chan struct{}
}

func openAnswerCache(path string, o AnswerCacheOptions, now func() time.Time, log zerolog.Logger) (*answerCache, error) {
	c := &answerCache{path: path, opts: o.withDefaults(), now: now, log: log,
		lru: list.New(), index: map[string]*list.Element{}, writes: make(chan cacheWrite, 1024), done: make(chan struct{})}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("flags: creating the directory of %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil && !errors.Is(err, berrors.ErrTimeout) {
		// A cache is worth nothing next to a working agent: start empty.
		log.Error().Err(err).Str("path", path).Msg("the flag answer cache is damaged; starting with an empty one")
		if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			return nil, fmt.Errorf("flags: answer cache %s: %w (and removing it failed: %w)", path, err, rerr)
		}
		db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	}
	if err != nil {
		return nil, fmt.Errorf("flags: opening answer cache %s: %w", path, err)
	}
	_ = os.Chmod(path, 0o600) // a file from an older build may have another mode
	c.db = db
	if err := c.load(); err != nil {
		_ = db.Close()
		return nil, err
	}
	go c.writer()
	return c, nil
}

// load builds the LRU from the file (oldest answers last) and drops what is
// over age or over the bounds.
func (c *answerCache) load() error {
	var metas []*cacheMeta
	var stale [][]byte
	err := c.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(answerBucket)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			if len(v) < 8 {
				stale = append(stale, append([]byte(nil), k...))
				return nil
			}
			m := &cacheMeta{key: string(k), size: int64(len(k) + len(v)), stamp: time.Unix(0, int64(binary.BigEndian.Uint64(v)))}
			if c.now().Sub(m.stamp) > c.opts.MaxAge {
				stale = append(stale, append([]byte(nil), k...))
				return nil
			}
			metas = append(metas, m)
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("flags: reading answer cache %s: %w", c.path, err)
	}
	sort.Slice(metas, func(i, j int) bool { return metas[i].stamp.After(metas[j].stamp) })
	for _, m := range metas {
		c.index[m.key] = c.lru.PushBack(m)
		c.bytes += m.size
	}
	c.mu.Lock()
	stale = append(stale, c.overBoundsLocked()...)
	c.mu.Unlock()
	if len(stale) > 0 {
		err = c.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(answerBucket)
			for _, k := range stale {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("flags: trimming answer cache %s: %w", c.path, err)
	}
	return nil
}

// overBoundsLocked takes least recently used entries off the LRU until it is
// within the bounds and returns their keys, for the caller to delete.
func (c *answerCache) overBoundsLocked() [][]byte {
	var out [][]byte
	for c.lru.Len() > c.opts.MaxEntries || (c.bytes > c.opts.MaxBytes && c.lru.Len() > 0) {
		m := c.lru.Remove(c.lru.Back()).(*cacheMeta)
		delete(c.index, m.key)
		c.bytes -= m.size
		c.evicted++
		out = append(out, []byte(m.key))
	}
	return out
}

// contextKey names an evaluation context: project, distinct id, device id,
// groups and the properties sent. The properties PostHog's flags service
// adds itself (distinct_id as a person property, $group_key as a group
// property) are dropped, so an SDK that sends them and a caller that does
// not share an entry.
func contextKey(token string, in eval.Input) string {
	pp := in.PersonProperties
	if v, ok := pp["distinct_id"]; ok && v == in.DistinctID {
		pp = cloneWithout(pp, "distinct_id")
	}
	var gp map[string]map[string]any
	if len(in.GroupProperties) > 0 {
		gp = make(map[string]map[string]any, len(in.GroupProperties))
		for g, props := range in.GroupProperties {
			if v, ok := props["$group_key"]; ok && v == in.Groups[g] {
				props = cloneWithout(props, "$group_key")
			}
			if len(props) > 0 {
				gp[g] = props
			}
		}
	}
	if len(pp) == 0 {
		pp = nil
	}
	// encoding/json sorts map keys, so equal contexts encode equally.
	b, _ := json.Marshal(struct {
		T  string                    `json:"t"`
		D  string                    `json:"d"`
		V  string                    `json:"v,omitempty"`
		G  map[string]string         `json:"g,omitempty"`
		P  map[string]any            `json:"p,omitempty"`
		GP map[string]map[string]any `json:"gp,omitempty"`
	}{token, in.DistinctID, in.DeviceID, in.Groups, pp, gp})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

func cloneWithout(m map[string]any, drop string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if k != drop {
			out[k] = v
		}
	}
	return out
}

// put saves a fresh answer in the background. asked is the
// flag_keys_to_evaluate of the question (nil = every flag).
func (c *answerCache) put(key string, ans remoteAnswer, asked []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	select {
	case c.writes <- cacheWrite{key: key, at: c.now(), ans: ans, asked: asked}:
	default:
		c.dropped++
	}
}

// cachedAnswer is what the cache knows for a question.
type cachedAnswer struct {
	ans    remoteAnswer
	oldest time.Time // of the flags returned: the age to report
	// complete: every flag the question asked about is known to the cache
	// (for "every flag", the last such answer is there).
	complete bool
}

// get answers keys (nil = every flag) for the context, or ok false.
func (c *answerCache) get(key string, keys []string) (cachedAnswer, bool) {
	var v []byte
	_ = c.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(answerBucket); b != nil {
			v = append([]byte(nil), b.Get([]byte(key))...)
		}
		return nil
	})
	out, ok := c.decode(v, keys)
	c.mu.Lock()
	defer c.mu.Unlock()
	if ok {
		c.hits++
		if el, found := c.index[key]; found {
			c.lru.MoveToFront(el)
		}
	} else {
		c.misses++
	}
	return out, ok
}

func (c *answerCache) decode(v []byte, keys []string) (cachedAnswer, bool) {
	if len(v) < 8 {
		return cachedAnswer{}, false
	}
	if c.now().Sub(time.Unix(0, int64(binary.BigEndian.Uint64(v)))) > c.opts.MaxAge {
		return cachedAnswer{}, false
	}
	var e cachedEntry
	if err := json.Unmarshal(v[8:], &e); err != nil {
		return cachedAnswer{}, false
	}
	out := cachedAnswer{ans: remoteAnswer{flags: map[string]eval.Result{}, raw: map[string]json.RawMessage{},
		requestID: e.RequestID, evaluatedAt: e.EvaluatedAt}, complete: true}
	add := func(k string, f cachedFlag) {
		if c.now().Sub(f.At) > c.opts.MaxAge {
			return
		}
		res, err := parseV2Flag(k, f.V2)
		if err != nil {
			return
		}
		out.ans.flags[k], out.ans.raw[k] = res, f.V2
		if out.oldest.IsZero() || f.At.Before(out.oldest) {
			out.oldest = f.At
		}
	}
	if keys == nil {
		for k, f := range e.Flags {
			add(k, f)
		}
		out.complete = e.Complete
		if e.Complete && out.oldest.IsZero() {
			out.oldest = e.CompleteAt // PostHog answered "no flags"
		}
	} else {
		for _, k := range keys {
			if f, ok := e.Flags[k]; ok {
				add(k, f)
			} else if !e.Complete {
				out.complete = false
			}
		}
	}
	if len(out.ans.flags) == 0 && !(out.complete && e.Complete) {
		return cachedAnswer{}, false
	}
	return out, true
}

// clear empties the cache, on disk too.
func (c *answerCache) clear() error {
	reply := make(chan error, 1)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return errors.New("flags: the answer cache is closed")
	}
	c.mu.Unlock()
	c.writes <- cacheWrite{clear: reply}
	return <-reply
}

func (c *answerCache) close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.writes)
	c.mu.Unlock()
	<-c.done
	return c.db.Close()
}

// writer commits queued writes in groups until close.
func (c *answerCache) writer() {
	defer close(c.done)
	for w := range c.writes {
		batch := []cacheWrite{w}
	drain:
		for len(batch) < 256 {
			select {
			case w, ok := <-c.writes:
				if !ok {
					break drain
				}
				batch = append(batch, w)
			default:
				break drain
			}
		}
		c.commit(batch)
	}
}

func (c *answerCache) commit(batch []cacheWrite) {
	type change struct {
		key  string
		size int64
		at   time.Time
	}
	var changes []change
	var clears []chan error
	err := c.db.Update(func(tx *bolt.Tx) error {
		changes = changes[:0]
		clears = clears[:0]
		b := tx.Bucket(answerBucket)
		for _, w := range batch {
			if w.clear != nil {
				if err := tx.DeleteBucket(answerBucket); err != nil {
					return err
				}
				var err error
				if b, err = tx.CreateBucket(answerBucket); err != nil {
					return err
				}
				changes = append(changes, change{key: ""}) // marks the clear
				clears = append(clears, w.clear)
				continue
			}
			v, err := mergeEntry(b.Get([]byte(w.key)), w)
			if err != nil {
				return err
			}
			if err := b.Put([]byte(w.key), v); err != nil {
				return err
			}
			changes = append(changes, change{key: w.key, size: int64(len(w.key) + len(v)), at: w.at})
		}
		return nil
	})
	defer func() {
		for _, r := range clears {
			r <- err // after the in-memory index is updated below
		}
	}()
	if err != nil {
		c.mu.Lock()
		first := c.lastErr == ""
		c.lastErr = err.Error()
		c.mu.Unlock()
		if first {
			c.log.Error().Err(err).Str("path", c.path).Msg("could not save flag answers; offline answers will be older")
		}
		return
	}
	c.mu.Lock()
	for _, ch := range changes {
		if ch.key == "" {
			c.lru.Init()
			c.index = map[string]*list.Element{}
			c.bytes = 0
			continue
		}
		if el, ok := c.index[ch.key]; ok {
			m := el.Value.(*cacheMeta)
			c.bytes += ch.size - m.size
			m.size, m.stamp = ch.size, ch.at
			c.lru.MoveToFront(el)
		} else {
			c.index[ch.key] = c.lru.PushFront(&cacheMeta{key: ch.key, size: ch.size, stamp: ch.at})
			c.bytes += ch.size
		}
	}
	evict := c.overBoundsLocked()
	c.lastErr = ""
	c.mu.Unlock()
	if len(evict) > 0 {
		_ = c.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(answerBucket)
			for _, k := range evict {
				_ = b.Delete(k)
			}
			return nil
		})
	}
}

// mergeEntry folds a fresh answer into the stored entry: an answer for every
// flag replaces it; an answer for some flags replaces those (a requested flag
// PostHog did not return is forgotten: it has no value now).
func mergeEntry(old []byte, w cacheWrite) ([]byte, error) {
	e := cachedEntry{Flags: map[string]cachedFlag{}}
	if w.asked != nil && len(old) > 8 {
		_ = json.Unmarshal(old[8:], &e) // a damaged entry is replaced
		if e.Flags == nil {
			e.Flags = map[string]cachedFlag{}
		}
	}
	if w.asked == nil {
		e.Complete, e.CompleteAt = true, w.at
	}
	for _, k := range w.asked {
		delete(e.Flags, k)
	}
	for k, res := range w.ans.flags {
		raw := w.ans.raw[k]
		if raw == nil {
			b, err := json.Marshal(WireFlagOf(res))
			if err != nil {
				return nil, err
			}
			raw = b
		}
		e.Flags[k] = cachedFlag{V2: raw, At: w.at}
	}
	e.RequestID, e.EvaluatedAt = w.ans.requestID, w.ans.evaluatedAt
	body, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	v := make([]byte, 8, 8+len(body))
	binary.BigEndian.PutUint64(v, uint64(w.at.UnixNano()))
	return append(v, body...), nil
}

func (c *answerCache) stats() AnswerCacheStats {
	st := AnswerCacheStats{Path: c.path, MaxEntries: c.opts.MaxEntries, MaxBytes: c.opts.MaxBytes, MaxAge: c.opts.MaxAge}
	if fi, err := os.Stat(c.path); err == nil {
		st.FileBytes = fi.Size()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st.Entries, st.Bytes = c.lru.Len(), c.bytes
	st.Hits, st.Misses, st.Evicted, st.Dropped, st.LastError = c.hits, c.misses, c.evicted, c.dropped, c.lastErr
	return st
}

// ClearAnswerFile empties the answer cache of a stopped agent's data
// directory (`hogrelay flags cache clear --data-dir`). It fails while an
// agent holds the file.
func ClearAnswerFile(path string) error {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if errors.Is(err, berrors.ErrTimeout) {
		return fmt.Errorf("flags: %s is in use by a running agent; clear it through the agent's socket instead (without --data-dir)", path)
	}
	if err != nil {
		// Not a database we can read: removing it is the clear.
		return os.Remove(path)
	}
	_ = db.Close()
	return os.Remove(path)
}
