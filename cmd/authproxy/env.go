package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"

	"github.com/authproxy/authproxy/config"
)

func cmdEnv(ctx context.Context, args []string, e env) error {
	var cf commonFlags
	fs := newFlags("env", e)
	cf.register(fs, false)
	shell := fs.String("shell", "sh", "sh (bash, zsh), fish or powershell")
	python := fs.Bool("python", false, "print a Python snippet for a notebook cell")
	withHTTP := fs.Bool("http", false, "also export HTTP_PROXY/http_proxy (plain-http traffic through the proxy; off by default)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("env takes no arguments")
	}
	cfg, err := loadConfig(&cf, e)
	if err != nil {
		return err
	}
	ca, err := loadCA(cfg, newLogger(io.Discard, &cf))
	if err != nil {
		return err
	}
	vars := clientEnv(cfg, ca.CertPath(), ca.BundlePath())
	if !*withHTTP {
		delete(vars, "HTTP_PROXY")
		delete(vars, "http_proxy")
	}
	noProxy := mergeNoProxy(vars["NO_PROXY"], e.getenv("NO_PROXY"), e.getenv("no_proxy"))
	noProxy = dropBrokerBypass(e.stderr, noProxy, cfg)
	vars["NO_PROXY"], vars["no_proxy"] = noProxy, noProxy
	warnNoProxy(ctx, e.stderr, cfg)
	if *python {
		return printPython(e.stdout, vars, cfg)
	}
	switch *shell {
	case "sh", "bash", "zsh", "":
		printShell(e.stdout, vars, cfg, func(k, v string) string { return "export " + k + "=" + shQuote(v) }, "#")
	case "fish":
		printShell(e.stdout, vars, cfg, func(k, v string) string { return "set -gx " + k + " " + fishQuote(v) + ";" }, "#")
	case "powershell", "pwsh":
		printShell(e.stdout, vars, cfg, func(k, v string) string { return "$env:" + k + " = " + psQuote(v) }, "#")
	default:
		return usagef("unknown --shell %q (want sh, fish or powershell)", *shell)
	}
	return nil
}

// clientEnv is what a client needs to use the proxy: proxy variables (both
// cases: curl reads only lower-case http_proxy) and CA bundle variables for
// curl, Python (requests, httpx, aiohttp via SSL_CERT_FILE), and Node.
func clientEnv(cfg *config.Config, caPath, bundlePath string) map[string]string {
	proxyURL := "http://" + cfg.Listen
	host, _, _ := net.SplitHostPort(cfg.Listen)
	noProxy := host
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() || host == "localhost" {
		noProxy = "127.0.0.1,localhost,::1"
	}
	return map[string]string{
		"HTTPS_PROXY":         proxyURL,
		"https_proxy":         proxyURL,
		"HTTP_PROXY":          proxyURL,
		"http_proxy":          proxyURL,
		"NO_PROXY":            noProxy,
		"no_proxy":            noProxy,
		"SSL_CERT_FILE":       bundlePath,
		"REQUESTS_CA_BUNDLE":  bundlePath,
		"CURL_CA_BUNDLE":      bundlePath,
		"NODE_EXTRA_CA_CERTS": caPath,
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func printShell(w io.Writer, vars map[string]string, cfg *config.Config, line func(k, v string) string, comment string) {
	fmt.Fprintf(w, "%s authproxy at %s (config %s)\n", comment, cfg.Listen, cfg.Path)
	if cfg.ProxyAuth != nil {
		fmt.Fprintf(w, "%s [proxy_auth] is on: put USER:PASSWORD@ after http:// in the proxy variables\n", comment)
	}
	for _, k := range sortedKeys(vars) {
		fmt.Fprintln(w, line(k, vars[k]))
	}
}

func printPython(w io.Writer, vars map[string]string, cfg *config.Config) error {
	fmt.Fprintf(w, "# authproxy at %s: run this in the first cell of a notebook\nimport os\nos.environ.update({\n", cfg.Listen)
	for _, k := range sortedKeys(vars) {
		fmt.Fprintf(w, "    %s: %s,\n", pyQuote(k), pyQuote(vars[k]))
	}
	fmt.Fprintln(w, "})")
	return nil
}

func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// fishQuote: inside fish's single quotes only \\ and \' are escapes.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
func psQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
func pyQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`).Replace(s) + "'"
}
