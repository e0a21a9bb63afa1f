package config

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a config file. Load and Parse return every
// Problem they find, joined with errors.Join; use [Problems] to get them back.
// Msg never holds the value of a secret.
type Problem struct {
	File string // the config file's path as given to Load or Parse
	Line int    // 1-based; 0 when the problem has no single line
	Key  string // dotted TOML key path, e.g. brokers.tr.mpin ("" for file-level problems)
	Msg  string

	cause error // what made the file unreadable, for errors.Is; never printed twice
}

// Unwrap returns the underlying error of a file that could not be read
// (so errors.Is(err, fs.ErrNotExist) works on Load's result), else nil.
func (p *Problem) Unwrap() error { return p.cause }

// Error formats the problem as "FILE:LINE: KEY: MSG"; ":LINE" is left out
// when Line is 0 and "KEY: " when Key is empty.
func (p *Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		if p.File != "" {
			b.WriteByte(':')
		} else {
			b.WriteString("line ")
		}
		b.WriteString(strconv.Itoa(p.Line))
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems flattens err (typically from Load or Parse, possibly wrapped or
// joined further) into the Problems it holds, in order. It returns nil when
// err holds none.
func Problems(err error) []*Problem {
	var out []*Problem
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		if p, ok := e.(*Problem); ok {
			out = append(out, p)
			return
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, inner := range u.Unwrap() {
				walk(inner)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

// maxProblems bounds how many Problems one file reports.
const maxProblems = 100

// problems collects Problems for one file.
type problems struct {
	file    string
	list    []*Problem
	dropped int // problems past maxProblems
}

func (ps *problems) full() bool { return len(ps.list) >= maxProblems }

func (ps *problems) add(line int, key, msg string) {
	if ps.full() {
		ps.dropped++
		return
	}
	ps.list = append(ps.list, &Problem{File: ps.file, Line: line, Key: key, Msg: msg})
}

// err returns the collected problems sorted by line (file-level ones first)
// and joined, or nil when there are none.
func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	slices.SortStableFunc(ps.list, func(a, b *Problem) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), strings.Compare(a.Key, b.Key))
	})
	errs := make([]error, 0, len(ps.list)+1)
	for _, p := range ps.list {
		errs = append(errs, p)
	}
	if ps.dropped > 0 {
		errs = append(errs, &Problem{File: ps.file, Msg: fmt.Sprintf("%d more problems not shown: fix these first", ps.dropped)})
	}
	return errors.Join(errs...)
}
