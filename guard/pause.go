package guard

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// PauseFile is the kill switch's state file in the state dir.
const PauseFile = "paused.json"

// PauseInfo says since when and by whom an account is paused.
type PauseInfo struct {
	Since time.Time `json:"since"`
	By    string    `json:"by,omitempty"` // "cli", "dashboard", ...
}

type pauseDoc struct {
	Paused map[string]PauseInfo `json:"paused"`
}

// Pauses is the kill switch's state: which accounts' orders are stopped.
// Every change is written to disk (0600, atomic rename) before it is made
// visible, so a change that was acknowledged survives a crash or restart.
type Pauses struct {
	path string
	mu   sync.RWMutex
	m    map[string]PauseInfo
}

// OpenPauses reads dir/paused.json (a missing file: nothing paused).
func OpenPauses(dir string) (*Pauses, error) {
	p := &Pauses{path: filepath.Join(dir, PauseFile), m: map[string]PauseInfo{}}
	data, err := os.ReadFile(p.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return p, nil
	case err != nil:
		return nil, fmt.Errorf("kill switch state: %w", err)
	}
	var doc pauseDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("kill switch state %s is not valid JSON (fix or delete it; deleting resumes every account): %w", p.path, err)
	}
	for k, v := range doc.Paused {
		p.m[k] = v
	}
	return p, nil
}

// Paused reports whether account's orders are stopped.
func (p *Pauses) Paused(account string) (PauseInfo, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	i, ok := p.m[account]
	return i, ok
}

// All returns the paused accounts, sorted by name.
func (p *Pauses) All() []string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := make([]string, 0, len(p.m))
	for k := range p.m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Set pauses (paused true) or resumes accounts, saving the new state before
// it takes effect. It returns the accounts whose state changed.
func (p *Pauses) Set(accounts []string, paused bool, by string, now time.Time) ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	next := make(map[string]PauseInfo, len(p.m)+len(accounts))
	for k, v := range p.m {
		next[k] = v
	}
	var changed []string
	for _, a := range accounts {
		_, was := next[a]
		switch {
		case paused && !was:
			next[a] = PauseInfo{Since: now.UTC(), By: by}
			changed = append(changed, a)
		case !paused && was:
			delete(next, a)
			changed = append(changed, a)
		}
	}
	if len(changed) == 0 {
		return nil, nil
	}
	if err := writeAtomic(p.path, next); err != nil {
		return nil, fmt.Errorf("saving the kill switch state for %v: %w", changed, err)
	}
	p.m = next
	return changed, nil
}

func writeAtomic(path string, m map[string]PauseInfo) error {
	data, err := json.MarshalIndent(pauseDoc{Paused: m}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".paused-*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
