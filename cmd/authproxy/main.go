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

const usage = `authproxy: a local proxy that logs in to your brokers for your scripts

Usage:
  authproxy [run] [--config FILE] [--listen ADDR] [--state-dir DIR]   start the proxy (default)
  authproxy env    [--config FILE] [--shell sh|fish|powershell] [--python]  print exports for clients
  authproxy login  NAME [--config FILE]     interactive login for a browser-based account
  authproxy status [--config FILE] [--json] accounts, token state, expiry
  authproxy token  NAME [--config FILE]     print a valid token
  authproxy check  [--config FILE]          validate the config
  authproxy demo                            self-contained demo with fake brokers
  authproxy doctor [--config FILE]          diagnose trust, reachability, clock, env
  authproxy ca     [path|print|rotate]      the local CA
  authproxy pause  [NAME...] [--config FILE]   stop order requests for these accounts (none: all)
  authproxy resume [NAME...] [--config FILE]   let them through again
  authproxy journal [NAME] [--since DUR] [--json] [--config FILE]   the order journal

Config lookup: --config, $AUTHPROXY_CONFIG, ./rules.toml, $XDG_CONFIG_HOME/authproxy/rules.toml.
`

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
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], env{stdout: os.Stdout, stderr: os.Stderr, stdin: os.Stdin,
		getenv: os.Getenv, lookupEnv: os.LookupEnv})
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, e env) int {
	cmd := "run"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "run":
		err = cmdRun(ctx, args, e)
	case "env":
		err = cmdEnv(ctx, args, e)
	case "check":
		err = cmdCheck(ctx, args, e)
	case "status":
		err = cmdStatus(ctx, args, e)
	case "token":
		err = cmdToken(ctx, args, e)
	case "login":
		err = cmdLogin(ctx, args, e)
	case "ca":
		err = cmdCA(ctx, args, e)
	case "demo":
		err = cmdDemo(ctx, args, e)
	case "doctor":
		err = cmdDoctor(ctx, args, e)
	case "pause", "resume": // the order guard (pause.go, journal.go)
		err = cmdPause(ctx, args, e, cmd == "pause")
	case "journal":
		err = cmdJournal(ctx, args, e)
	case "help", "-h", "--help":
		fmt.Fprint(e.stdout, usage)
		return 0
	default:
		err = usagef("unknown command %q", cmd)
	}
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(e.stderr, "authproxy: %s\n\n%s", ue.msg, usage)
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

// newFlags returns a flag set whose errors become usage errors.
func newFlags(name string, e env) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
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
