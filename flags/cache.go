package flags

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/hogrelay/hogrelay/flags/eval"
)

// cacheVersion is bumped if the envelope ever changes incompatibly; a file
// with another version is ignored like a damaged one (the next fetch rewrites it).
const cacheVersion = 1

// envelopeHeader is the cache file minus the definitions body.
type envelopeHeader struct {
	Version   int       `json:"version"`
	FetchedAt time.Time `json:"fetched_at"`
	ETag      string    `json:"etag"`
	SourceURL string    `json:"source_url"`
	// Token is the project the definitions belong to: a cache written for
	// another project must never answer for this one.
	Token string `json:"token"`
	// QuotaLimited survives a restart so an offline reboot does not resume
	// evaluating flags PostHog told us to stop evaluating.
	QuotaLimited bool `json:"quota_limited,omitempty"`
}

// envelope is the cache file: a small header around the definitions body,
// which is stored byte for byte as PostHog sent it (see encodeEnvelope).
type envelope struct {
	envelopeHeader
	Definitions json.RawMessage `json:"definitions"`
}

// encodeEnvelope writes the header with encoding/json and splices the body in
// as is: marshalling a RawMessage would compact and HTML-escape it, and
// Definitions() promises the exact bytes PostHog sent.
func encodeEnvelope(e envelope) ([]byte, error) {
	head, err := json.Marshal(e.envelopeHeader)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Grow(len(head) + len(e.Definitions) + 20)
	b.Write(head[:len(head)-1]) // drop the closing brace
	b.WriteString(`,"definitions":`)
	b.Write(e.Definitions)
	b.WriteString("}\n")
	return b.Bytes(), nil
}

// loadCache installs the definitions from the cache file, if it is usable.
// Nothing here is fatal: a damaged file is logged with its path, shown in
// Status().LastError, and replaced by the next good fetch.
func (s *Service) loadCache() {
	s.removeStaleTemps()
	b, err := os.ReadFile(s.cachePath)
	if errors.Is(err, fs.ErrNotExist) {
		if s.polling() {
			s.log.Info().Str("path", s.cachePath).Msg("no flag definitions cache yet; local evaluation starts with the first fetch from PostHog")
		}
		return
	}
	if err != nil {
		s.cacheDamaged(fmt.Errorf("flags: reading cache: %w", err))
		return
	}
	var e envelope
	if err := json.Unmarshal(b, &e); err != nil {
		s.cacheDamaged(fmt.Errorf("flags: cache %s is damaged: %w", s.cachePath, err))
		return
	}
	if e.Version != cacheVersion {
		s.cacheDamaged(fmt.Errorf("flags: cache %s has version %d, this agent reads version %d", s.cachePath, e.Version, cacheVersion))
		return
	}
	if len(e.Definitions) == 0 || string(e.Definitions) == "null" {
		s.cacheDamaged(fmt.Errorf("flags: cache %s is damaged: no definitions", s.cachePath))
		return
	}
	if s.token != "" && e.Token != s.token {
		s.log.Warn().Str("path", s.cachePath).
			Msg("flag definitions cache belongs to another project token; ignoring it until the first fetch replaces it")
		return
	}
	ev, err := eval.Compile(e.Definitions)
	if err != nil {
		s.cacheDamaged(fmt.Errorf("flags: cache %s holds definitions that do not compile: %w", s.cachePath, err))
		return
	}
	s.defs.Store(&definitions{
		ev:        ev,
		raw:       []byte(e.Definitions),
		etag:      e.ETag,
		fetchedAt: e.FetchedAt,
		source:    "disk",
		sourceURL: e.SourceURL,
	})
	s.quota.Store(e.QuotaLimited)
	s.persistedAt = e.FetchedAt
	line := s.log.Info()
	if e.QuotaLimited {
		line = s.log.Warn().Bool("quota_limited", true)
	}
	line.Str("path", s.cachePath).Int("flags", ev.Len()).Time("fetched_at", e.FetchedAt).
		Str("age", s.now().Sub(e.FetchedAt).Round(time.Second).String()).
		Msg("loaded flag definitions from the disk cache")
}

func (s *Service) cacheDamaged(err error) {
	s.log.Error().Err(err).Str("path", s.cachePath).
		Msg("ignoring the flag definitions cache; the next good fetch replaces it")
	s.setError(err)
}

// removeStaleTemps deletes temp files a crash during saveCache left behind.
func (s *Service) removeStaleTemps() {
	matches, _ := filepath.Glob(filepath.Join(s.dir, "."+CacheFile+".*.tmp"))
	for _, m := range matches {
		_ = os.Remove(m)
	}
}

// saveCache writes d (and the quota state) to the cache file atomically.
func (s *Service) saveCache(d *definitions, quotaLimited bool) error {
	b, err := encodeEnvelope(envelope{
		envelopeHeader: envelopeHeader{
			Version:      cacheVersion,
			FetchedAt:    d.fetchedAt.UTC(),
			ETag:         d.etag,
			SourceURL:    d.sourceURL,
			Token:        s.token,
			QuotaLimited: quotaLimited,
		},
		Definitions: d.raw,
	})
	if err != nil {
		return fmt.Errorf("flags: encoding cache %s: %w", s.cachePath, err)
	}
	if err := writeFileAtomic(s.cachePath, b); err != nil {
		return err
	}
	s.mu.Lock()
	s.persistedAt = d.fetchedAt
	s.mu.Unlock()
	return nil
}

// writeFileAtomic replaces path so that after a crash or power loss it holds
// either the old content or the new, never a torn mix: write a temp file in
// the same directory, fsync it, rename over path, fsync the directory so the
// rename itself is durable.
func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("flags: creating cache directory: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("flags: writing cache %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("flags: writing cache %s: %w", tmp, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("flags: fsync %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("flags: closing %s: %w", tmp, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("flags: renaming %s to %s: %w", tmp, path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("flags: opening %s to fsync it: %w", dir, err)
	}
	defer d.Close()
	if err = d.Sync(); err != nil {
		return fmt.Errorf("flags: fsync directory %s: %w", dir, err)
	}
	return nil
}
