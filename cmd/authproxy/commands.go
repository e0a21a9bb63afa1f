package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// command is one subcommand. Adding a command is one entry in commands():
// the general help, `help NAME`, `NAME --help` and the dispatcher all read
// this table.
type command struct {
	name    string
	args    string // synopsis after the name, e.g. "NAME [--config FILE]"
	summary string
	run     func(ctx context.Context, args []string, e env) error
}

// commands lists every subcommand in the order the help shows them.
func commands() []command {
	return []command{
		{"run", "[--config FILE] [--listen ADDR] [--state-dir DIR] [--reload]", "start the proxy (the default command)", cmdRun},
		{"env", "[--config FILE] [--shell sh|fish|powershell] [--python] [--http]", "print the variables clients need (HTTPS_PROXY, CA bundle, ...)", cmdEnv},
		{"login", "NAME [--config FILE]", "interactive login for a browser-based broker account", cmdLogin},
		{"status", "[--config FILE] [--json]", "accounts, token state, expiry (asks the running proxy, else reads the cache)", cmdStatus},
		{"token", "NAME [--config FILE]", "print a valid token (for clients that cannot use a proxy)", cmdToken},
		{"check", "[--config FILE] [--strict]", "validate the config; exit 1 with line-numbered errors", cmdCheck},
		{"demo", "[--once] [--listen ADDR] [--verbose]", "self-contained demo: fake brokers + the proxy + a sample request each", cmdDemo},
		{"doctor", "[--config FILE]", "diagnose trust, reachability, clock, env; each finding with its fix", cmdDoctor},
		{"ca", "[path|print|install|uninstall|rotate] [--config FILE]", "the local CA: where it is, its PEM, trust it system-wide, re-issue it", cmdCA},
		{"pause", "[NAME...] [--config FILE]", "stop order requests (place/modify/cancel) for these accounts (none: all)", func(ctx context.Context, args []string, e env) error {
			return cmdPause(ctx, args, e, true)
		}},
		{"resume", "[NAME...] [--config FILE]", "let order requests through again", func(ctx context.Context, args []string, e env) error {
			return cmdPause(ctx, args, e, false)
		}},
		{"journal", "[NAME] [--since DUR] [--json] [--config FILE]", "the order journal", cmdJournal},
		{"version", "", "print the version, commit and Go version", cmdVersion},
		{"help", "[COMMAND]", "list the commands, or show one command's flags", cmdHelp},
	}
}

func lookupCommand(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func printUsage(w io.Writer) {
	fmt.Fprintf(w, "authproxy: a local proxy that logs in to your brokers for your scripts\n\nUsage: authproxy COMMAND [flags]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, `
Run 'authproxy help COMMAND' or 'authproxy COMMAND --help' for a command's flags.
Logging flags of run: --verbose (debug), --quiet (warnings only), --log-format text|json.
Config lookup: --config, $AUTHPROXY_CONFIG, ./rules.toml, $XDG_CONFIG_HOME/authproxy/rules.toml.
Exit codes: 0 ok, 1 runtime error, 2 usage error.
`)
}

// printCommandHelp prints one command's synopsis and flags.
func printCommandHelp(w io.Writer, fs *flag.FlagSet) {
	c, _ := lookupCommand(fs.Name())
	fmt.Fprintf(w, "Usage: authproxy %s %s\n\n", c.name, c.args)
	if c.summary != "" {
		fmt.Fprintf(w, "%s\n", strings.ToUpper(c.summary[:1])+c.summary[1:])
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprintf(w, "\nFlags:\n")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

func cmdHelp(ctx context.Context, args []string, e env) error {
	switch len(args) {
	case 0:
		printUsage(e.stdout)
		return nil
	case 1:
		if args[0] == "help" {
			printUsage(e.stdout)
			return nil
		}
		c, ok := lookupCommand(args[0])
		if !ok {
			return usagef("unknown command %q", args[0])
		}
		return c.run(ctx, []string{"--help"}, e)
	default:
		return usagef("help takes at most one command")
	}
}

func cmdVersion(_ context.Context, args []string, e env) error {
	fs := newFlags("version", e)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("version takes no arguments")
	}
	bi, _ := debug.ReadBuildInfo()
	fmt.Fprint(e.stdout, versionText(bi))
	return nil
}

// versionText renders the build info: module version, VCS commit and the
// Go version the binary was built with.
func versionText(bi *debug.BuildInfo) string {
	if bi == nil {
		return fmt.Sprintf("authproxy (no build info)\ngo: %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	}
	version := bi.Main.Version
	if version == "" {
		version = "(devel)"
	}
	path := bi.Main.Path
	if path == "" {
		path = "github.com/authproxy/authproxy"
	}
	var rev, when, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	commit := "unknown (built without VCS info)"
	if rev != "" {
		commit = rev
		if when != "" {
			commit += " (" + when + ")"
		}
		if modified == "true" {
			commit += ", with uncommitted changes"
		}
	}
	goVersion := bi.GoVersion
	if goVersion == "" {
		goVersion = runtime.Version()
	}
	return fmt.Sprintf("authproxy %s\nmodule: %s\ncommit: %s\ngo: %s %s/%s\n", version, path, commit, goVersion, runtime.GOOS, runtime.GOARCH)
}
