package config

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/bad/*.golden and the FuzzParse seed corpus")

// goldenEnv is the environment for the golden and fuzz tests.
func goldenEnv() func(string) (string, bool) {
	return env("HOME", testHome, "SET_VAR", "value", "TOTP", goodTOTP, "STORE_KEY", goodStoreKey)
}

// TestGolden parses every testdata/bad/*.toml and compares the error text
// with the .golden file beside it (go test ./config -update rewrites them).
func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "bad", "*.toml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/bad/*.toml files (err %v)", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".toml"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := Parse(filepath.ToSlash(file), data, goldenEnv())
			if err == nil {
				t.Fatalf("Parse succeeded (%d accounts), want problems", len(cfg.Accounts))
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(file, ".toml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./config -update)", err)
			}
			if got != string(want) {
				t.Errorf("error text differs from %s\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
			for _, p := range Problems(err) {
				if p.Line == 0 && p.Key == "" {
					t.Errorf("problem with neither line nor key: %v", p)
				}
			}
		})
	}
}

// TestGood parses every testdata/good/*.toml without error.
func TestGood(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "good", "*.toml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/good/*.toml files (err %v)", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			cfg, err := Load(file, goldenEnv())
			if err != nil {
				t.Fatal(err)
			}
			checkInvariants(t, cfg)
		})
	}
}

// seedFiles returns the files the FuzzParse corpus is made from.
func seedFiles(t testing.TB) []string {
	var out []string
	for _, pat := range []string{"testdata/good/*.toml", "testdata/bad/*.toml"} {
		m, err := filepath.Glob(filepath.FromSlash(pat))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m...)
	}
	return append(out, filepath.Join("..", "rules.toml"))
}

// seedName is a corpus file name for a seed taken from file.
func seedName(file string) string {
	dir := filepath.Base(filepath.Dir(file))
	if dir == ".." {
		dir = "shipped"
	}
	return dir + "_" + strings.TrimSuffix(filepath.Base(file), ".toml")
}

// corpusEntry encodes data in the go test fuzz v1 format.
func corpusEntry(data []byte) []byte {
	return fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", data)
}

// TestFuzzSeeds keeps testdata/fuzz/FuzzParse in step with the good and bad
// files (go test ./config -update rewrites it).
func TestFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzParse")
	var want []string
	for _, file := range seedFiles(t) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		name := seedName(file)
		want = append(want, name)
		entry := corpusEntry(data)
		p := filepath.Join(dir, name)
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, entry, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(p)
		if err != nil {
			t.Errorf("%v (run go test ./config -update)", err)
			continue
		}
		if !bytes.Equal(got, entry) {
			t.Errorf("%s is stale (run go test ./config -update)", p)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !slices.Contains(want, e.Name()) && (strings.HasPrefix(e.Name(), "good_") || strings.HasPrefix(e.Name(), "bad_")) {
			t.Errorf("%s has no source file any more; delete it", filepath.Join(dir, e.Name()))
		}
	}
}
