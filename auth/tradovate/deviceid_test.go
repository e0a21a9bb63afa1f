package tradovate

import (
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
)

func TestStableDeviceID(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		ids = map[string]bool{}
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := stableDeviceID(dir)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			ids[id] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(ids) != 1 {
		t.Fatalf("racing callers got %d ids, want 1", len(ids))
	}
	var first string
	for id := range ids {
		first = id
	}
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(first) {
		t.Fatalf("id %q is not a v4 UUID", first)
	}
	fi, err := os.Stat(filepath.Join(dir, deviceIDFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("device id file mode %v, want 0600", fi.Mode())
	}
	again, err := stableDeviceID(dir)
	if err != nil || again != first {
		t.Fatalf("second run: %q, %v; want the same id", again, err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*.tmp*"))
	if len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}
