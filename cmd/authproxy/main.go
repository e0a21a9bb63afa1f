// Command authproxy is a local HTTPS forward proxy that logs in to brokers
// for the user and writes the credentials into every request.
//
// main is thin: it parses flags, wires the config, auth, certs and proxy
// packages together, and maps failures to exit codes (0 ok, 1 runtime
// error, 2 usage error).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// errUsage marks errors that exit with status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// env is what a command may touch of the outside world; tests substitute it.
type env struct {
	stdout, stderr io.Writer
	stdin          io.Reader
	getenv         func(string) string
	lookupEnv      func(string) (string, bool)
	environ        func() []string // may be nil (tests): no near-miss hints then
}

func main() {
	setMemoryLimit(os.LookupEnv)
	setProcs(os.LookupEnv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], env{stdout: os.Stdout, stderr: os.Stderr, stdin: os.Stdin,
		getenv: os.Getenv, lookupEnv: os.LookupEnv, environ: os.Environ})
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, e env) int {
	name, explicit := "run", false
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		name, args, explicit = args[0], args[1:], true
	}
	if len(args) > 0 && !explicit {
		switch args[0] {
		case "-h", "--help", "-help":
			name, args = "help", args[1:]
		case "--version", "-version":
			name, args = "version", args[1:]
		}
	}
	c, ok := lookupCommand(name)
	var err error
	if !ok {
		err = usagef("unknown command %q", name)
	} else {
		err = c.run(ctx, args, e)
	}
	var ue *usageError
	var he *helpError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &he):
		printCommandHelp(e.stdout, he.fs)
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(e.stderr, "authproxy: %s\n", ue.msg)
		if ok && name != "help" {
			fmt.Fprintf(e.stderr, "Run 'authproxy %s --help' for its flags, 'authproxy --help' for all commands.\n", name)
		} else {
			fmt.Fprintf(e.stderr, "Run 'authproxy --help' for the list of commands.\n")
		}
		return 2
	case errors.Is(err, errSilent):
		return 1
	default:
		fmt.Fprintf(e.stderr, "authproxy: %s\n", err)
		return 1
	}
}

// errSilent is returned when the command already printed its failure.
var errSilent = errors.New("failed")

// newFlags returns a flag set whose errors become usage errors: the flag
// package prints nothing itself; run prints one line for an error and the
// command's help (to stdout) for -h/--help.
func newFlags(name string, _ env) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// helpError asks run to print the command's help and exit 0.
type helpError struct{ fs *flag.FlagSet }

func (e *helpError) Error() string { return "help requested" }

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return &helpError{fs}
		}
		return usagef("%s", err)
	}
	return nil
}

// parseInterleaved parses flags that may come before or after positional
// arguments ("login NAME --config F" and "login --config F NAME").
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
