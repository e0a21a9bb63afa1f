package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func sampleToken() *Token {
	return &Token{
		Access:   "acc-Zx81",
		Refresh:  "ref-Qq72",
		Expiry:   time.Date(2026, 3, 2, 10, 30, 0, 123456789, time.UTC),
		Obtained: time.Date(2026, 3, 2, 9, 0, 0, 1, time.UTC),
		Aux:      map[string]Secret{"md": "md-Pp33"},
		Meta:     map[string]string{"clientCode": "GO11240"},
	}
}

func TestFileStoreRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.json")
	s := NewFileStore(path)
	ctx := t.Context()

	if _, err := s.Load(ctx, "a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Load from missing file = %v, want ErrNotFound", err)
	}
	if all, err := s.All(ctx); err != nil || len(all) != 0 {
		t.Fatalf("All from missing file = %v, %v; want empty", all, err)
	}

	want := sampleToken()
	if err := s.Save(ctx, "a", want); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(ctx, "b", &Token{Access: "only-access"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if got.Access != want.Access || got.Refresh != want.Refresh || !got.Expiry.Equal(want.Expiry) ||
		!got.Obtained.Equal(want.Obtained) || got.Aux["md"] != "md-Pp33" || got.Meta["clientCode"] != "GO11240" {
		t.Errorf("round trip: got %#v, want %#v", got, want)
	}
	b, err := s.Load(ctx, "b")
	if err != nil || b.Access != "only-access" || !b.Expiry.IsZero() || !b.Obtained.IsZero() || b.Aux != nil {
		t.Errorf("minimal token round trip = %#v, %v", b, err)
	}
	if _, err := s.Load(ctx, "c"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Load of unknown key = %v, want ErrNotFound", err)
	}

	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(Redacted)) || !bytes.Contains(raw, []byte("acc-Zx81")) {
		t.Errorf("file must hold real values:\n%s", raw)
	}
	var doc struct {
		Version int                       `json:"version"`
		Tokens  map[string]map[string]any `json:"tokens"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil || doc.Version != 1 || doc.Tokens["a"]["expiry"] != "2026-03-02T10:30:00.123456789Z" {
		t.Errorf("file format: %v, %+v", err, doc)
	}

	all, err := s.All(ctx)
	if err != nil || len(all) != 2 || all["a"].Access != want.Access {
		t.Errorf("All = %v, %v", all, err)
	}

	if err := s.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "missing"); err != nil {
		t.Errorf("Delete of missing key: %v", err)
	}
	if _, err := s.Load(ctx, "a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Load after Delete = %v, want ErrNotFound", err)
	}
	if _, err := s.Load(ctx, "b"); err != nil {
		t.Errorf("Delete removed another account: %v", err)
	}
}

func TestFileStoreModeAndAtomicity(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("unix permissions")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.json")
	s := NewFileStore(path)
	for i := range 10 {
		if err := s.Save(t.Context(), fmt.Sprint("acct", i%3), sampleToken()); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{path, path + ".lock"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if mode := fi.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s mode = %o, want 600", filepath.Base(p), mode)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "tokens.json,tokens.json.lock" {
		t.Errorf("directory holds %v, want only tokens.json and its lock (no temp leftovers)", names)
	}
}

func TestFileStoreTwoWritersKeepEachOthersAccounts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	s1, s2 := NewFileStore(path), NewFileStore(path)
	const n = 25
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Go(func() {
			errs <- s1.Save(t.Context(), fmt.Sprint("one-", i), &Token{Access: Secret(fmt.Sprint("a", i))})
		})
		wg.Go(func() {
			errs <- s2.Save(t.Context(), fmt.Sprint("two-", i), &Token{Access: Secret(fmt.Sprint("b", i))})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	all, err := NewFileStore(path).All(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2*n {
		t.Fatalf("file holds %d accounts, want %d", len(all), 2*n)
	}
	for i := range n {
		if all[fmt.Sprint("one-", i)].Access != Secret(fmt.Sprint("a", i)) || all[fmt.Sprint("two-", i)].Access != Secret(fmt.Sprint("b", i)) {
			t.Fatalf("account %d lost or mixed up", i)
		}
	}
}

func TestFileStoreCorruptFile(t *testing.T) {
	for name, content := range map[string]string{
		"garbage":      "{not json",
		"empty":        "",
		"wrong type":   `{"version":1,"tokens":[]}`,
		"bad version":  `{"version":7,"tokens":{}}`,
		"bad time":     `{"version":1,"tokens":{"a":{"access":"x","expiry":"yesterday"}}}`,
		"binary noise": "\x00\xff\xfe",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tokens.json")
			writeFile(t, path, content)
			var logs bytes.Buffer
			s := NewFileStore(path)
			s.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			_, err := s.Load(t.Context(), "a")
			if err == nil || errors.Is(err, ErrNotFound) {
				t.Fatalf("Load of corrupt file = %v, want a non-NotFound error", err)
			}
			if _, err := s.All(t.Context()); err == nil {
				t.Error("All of corrupt file succeeded")
			}
			if err := s.Save(t.Context(), "b", &Token{Access: "new"}); err != nil {
				t.Fatalf("Save over corrupt file: %v", err)
			}
			got, err := s.Load(t.Context(), "b")
			if err != nil || got.Access != "new" {
				t.Fatalf("Load after replacing corrupt file = %v, %v", got, err)
			}
			if name != "bad time" && !strings.Contains(logs.String(), "replacing unreadable token store") {
				t.Errorf("replacement not logged: %q", logs.String())
			}
		})
	}
}

func TestFileStoreLockHonoursContext(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("flock")
	}
	path := filepath.Join(t.TempDir(), "tokens.json")
	unlock, err := lockFile(t.Context(), path+".lock")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = NewFileStore(path).Save(ctx, "a", &Token{Access: "x"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Save while locked = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Save waited %s", d)
	}
}
