package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// fileStoreVersion is the "version" written to tokens.json.
const fileStoreVersion = 1

// maxStoreFile bounds how much of tokens.json is read.
const maxStoreFile = 16 << 20

// FileStore keeps every account's token in one JSON file (tokens.json, mode
// 0600). Writes are atomic (temporary file, fsync, rename, fsync of the
// directory) and are read-modify-write under an exclusive lock on
// "<path>.lock", so processes sharing a state directory never lose each
// other's accounts. FileStore is safe for concurrent use.
type FileStore struct {
	path string
	// Logger receives notes about replaced corrupt files; nil discards them.
	// Set it before first use.
	Logger *slog.Logger
}

var _ Store = (*FileStore)(nil)

// NewFileStore returns a store backed by the file at path. Nothing is read or
// created until the first call.
func NewFileStore(path string) *FileStore {
	return &FileStore{path: path}
}

// Path is the file the store reads and writes.
func (s *FileStore) Path() string { return s.path }

// storeFile is the on-disk shape of tokens.json.
type storeFile struct {
	Version int                     `json:"version"`
	Tokens  map[string]*TokenRecord `json:"tokens"`
}

// TokenRecord is a token as stores persist it (JSON, before any encryption).
// Plain strings: Secret would marshal as REDACTED. Stores use it so every
// backend writes the same shape.
type TokenRecord struct {
	Access   string            `json:"access"`
	Refresh  string            `json:"refresh,omitempty"`
	Expiry   string            `json:"expiry,omitempty"`
	Obtained string            `json:"obtained,omitempty"`
	Aux      map[string]string `json:"aux,omitempty"`
	Meta     map[string]string `json:"meta,omitempty"`
}

// RecordOf is t as a TokenRecord.
func RecordOf(t *Token) *TokenRecord {
	r := &TokenRecord{
		Access:   t.Access.Reveal(),
		Refresh:  t.Refresh.Reveal(),
		Expiry:   formatTime(t.Expiry),
		Obtained: formatTime(t.Obtained),
	}
	if len(t.Aux) > 0 {
		r.Aux = make(map[string]string, len(t.Aux))
		for k, v := range t.Aux {
			r.Aux[k] = v.Reveal()
		}
	}
	if len(t.Meta) > 0 {
		r.Meta = make(map[string]string, len(t.Meta))
		for k, v := range t.Meta {
			r.Meta[k] = v
		}
	}
	return r
}

// Token turns the record back into a Token; a malformed time is an error.
func (r *TokenRecord) Token() (*Token, error) {
	expiry, err := parseTime(r.Expiry)
	if err != nil {
		return nil, fmt.Errorf("expiry: %w", err)
	}
	obtained, err := parseTime(r.Obtained)
	if err != nil {
		return nil, fmt.Errorf("obtained: %w", err)
	}
	t := &Token{
		Access:   Secret(r.Access),
		Refresh:  Secret(r.Refresh),
		Expiry:   expiry,
		Obtained: obtained,
	}
	if len(r.Aux) > 0 {
		t.Aux = make(map[string]Secret, len(r.Aux))
		for k, v := range r.Aux {
			t.Aux[k] = Secret(v)
		}
	}
	if len(r.Meta) > 0 {
		t.Meta = make(map[string]string, len(r.Meta))
		for k, v := range r.Meta {
			t.Meta[k] = v
		}
	}
	return t, nil
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	// The parse error quotes only the timestamp, never a secret.
	return time.Parse(time.RFC3339Nano, s)
}

// Load returns the token stored for key, or an error wrapping ErrNotFound
// when the file or the key does not exist. A corrupt file is an error.
func (s *FileStore) Load(ctx context.Context, key string) (*Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := s.read()
	if err != nil {
		return nil, err
	}
	r, ok := f.Tokens[key]
	if !ok || r == nil {
		return nil, fmt.Errorf("token store %s: account %q: %w", s.path, key, ErrNotFound)
	}
	t, err := r.Token()
	if err != nil {
		return nil, fmt.Errorf("token store %s: account %q: %w", s.path, key, err)
	}
	return t, nil
}

// All returns every stored token by account name; a missing file is an empty
// map. It serves `authproxy status` and `authproxy token` without a running
// proxy.
func (s *FileStore) All(ctx context.Context) (map[string]*Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := s.read()
	if errors.Is(err, ErrNotFound) {
		return map[string]*Token{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := make(map[string]*Token, len(f.Tokens))
	for k, r := range f.Tokens {
		if r == nil {
			continue
		}
		t, err := r.Token()
		if err != nil {
			return nil, fmt.Errorf("token store %s: account %q: %w", s.path, k, err)
		}
		out[k] = t
	}
	return out, nil
}

// Save stores t under key, keeping every other account in the file. A
// corrupt file is replaced.
func (s *FileStore) Save(ctx context.Context, key string, t *Token) error {
	if t == nil {
		return fmt.Errorf("token store %s: account %q: nil token", s.path, key)
	}
	rec := RecordOf(t)
	return s.update(ctx, func(f *storeFile) bool {
		f.Tokens[key] = rec
		return true
	})
}

// Delete removes key's token; deleting a missing key or file is not an error.
func (s *FileStore) Delete(ctx context.Context, key string) error {
	return s.update(ctx, func(f *storeFile) bool {
		if _, ok := f.Tokens[key]; !ok {
			return false
		}
		delete(f.Tokens, key)
		return true
	})
}

// read parses the file. A missing file is ErrNotFound.
func (s *FileStore) read() (*storeFile, error) {
	fh, err := os.Open(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("token store %s: %w", s.path, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("token store: %w", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxStoreFile+1))
	if err != nil {
		return nil, fmt.Errorf("token store: read %s: %w", s.path, err)
	}
	return s.parse(data)
}

func (s *FileStore) parse(data []byte) (*storeFile, error) {
	if len(data) > maxStoreFile {
		return nil, fmt.Errorf("token store %s: file larger than %d bytes", s.path, maxStoreFile)
	}
	var f storeFile
	if err := json.Unmarshal(data, &f); err != nil {
		// json errors name offsets and types, not the file's content.
		return nil, fmt.Errorf("token store %s is corrupt: %w", s.path, err)
	}
	if f.Version != fileStoreVersion {
		return nil, fmt.Errorf("token store %s: unsupported version %d", s.path, f.Version)
	}
	if f.Tokens == nil {
		f.Tokens = map[string]*TokenRecord{}
	}
	return &f, nil
}

// update runs change on the current contents under the lock and writes the
// result when change reports a modification.
func (s *FileStore) update(ctx context.Context, change func(*storeFile) bool) error {
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("token store: %w", err)
	}
	unlock, err := lockFile(ctx, s.path+".lock")
	if err != nil {
		return fmt.Errorf("token store %s: lock: %w", s.path, err)
	}
	defer unlock()

	f, err := s.read()
	switch {
	case errors.Is(err, ErrNotFound):
		f = &storeFile{Version: fileStoreVersion, Tokens: map[string]*TokenRecord{}}
	case err != nil:
		s.logger().Warn("replacing unreadable token store", "path", s.path, "err", err)
		f = &storeFile{Version: fileStoreVersion, Tokens: map[string]*TokenRecord{}}
	}
	if !change(f) {
		return nil
	}
	f.Version = fileStoreVersion
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("token store: encode: %w", err)
	}
	return writeAtomic(s.path, append(data, '\n'))
}

func (s *FileStore) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// writeAtomic replaces path with data (mode 0600) so that readers see the old
// or the new file, never a mix, and the new one survives a crash.
func writeAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("token store: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("token store: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("token store: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("token store: sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("token store: close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("token store: %w", err)
	}
	syncDir(dir)
	return nil
}

// syncDir makes a rename in dir durable. Some platforms cannot fsync a
// directory; the rename itself has already happened, so that is not an error.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}
