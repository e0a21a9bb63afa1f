// Command bench measures what authproxy costs a trading script: it starts a
// TLS origin impersonating Tradingo's API (a fakeca leaf for
// tradingorestapi.swastika.co.in that checks the Authorization header; in a
// child process of its own), builds and runs the real authproxy binary with
// a cached token, and runs the same load directly, through authproxy and
// through mitmdump (with an equivalent header-injection addon), back to back:
//
//	go run ./integration/bench                  # the quick run, under 4 minutes
//	go run ./integration/bench --soak 2m        # add a soak showing RSS over time
//	go run ./integration/bench --profile cpu.pprof --mitm=false   # in-process proxy, CPU profile
//
// Every request must reach the origin once, with the injected bearer, and
// no login may reach the broker; a row where that fails is marked FAIL.
// Proxy CPU per request comes from /proc/<pid>/stat, RSS from
// /proc/<pid>/status. BENCHMARKS.md records a run and explains the columns.
package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

type flags struct {
	dur       time.Duration
	warm      time.Duration
	maxReqs   int64
	rows      string
	mitm      bool
	mem       bool
	soak      time.Duration
	inproc    bool
	profile   string
	originH1  bool
	proxyArgs string
	curves    string
	budget    time.Duration
	bin       string
	noDirect  bool
	proxyEnv  string
	// originInproc runs the origin inside the bench process.
	originInproc bool
	// serveOrigin is set in the origin's child process.
	serveOrigin string
	memHold     time.Duration
}

func main() {
	var f flags
	flag.DurationVar(&f.dur, "dur", 5*time.Second, "measured duration of each row and target")
	flag.DurationVar(&f.warm, "warm", 500*time.Millisecond, "warm-up before each measured run")
	flag.Int64Var(&f.maxReqs, "max", 200000, "at most this many requests per row and target")
	flag.StringVar(&f.rows, "rows", "ka1,ka32,new1,new8,close1,new1nr,tun1,tun32", "rows to run (comma-separated keys; \"none\" for none)")
	flag.BoolVar(&f.mitm, "mitm", true, "also measure mitmdump")
	flag.BoolVar(&f.mem, "mem", true, "run the memory rows (256 keep-alive clients, 1,000 idle connections)")
	flag.DurationVar(&f.soak, "soak", 0, "after the table, soak authproxy with mixed load for this long (at most 2m) and show RSS over time")
	flag.BoolVar(&f.inproc, "inproc", false, "run authproxy inside the bench process instead of the built binary")
	flag.StringVar(&f.profile, "profile", "", "write a CPU profile of the authproxy rows to this file (implies --inproc)")
	flag.BoolVar(&f.originH1, "origin-h1", false, "origin offers HTTP/1.1 only (compare the proxy's upstream over h1 and h2)")
	flag.StringVar(&f.proxyArgs, "proxy-args", "", "extra arguments for `authproxy run` (space-separated, e.g. --quiet)")
	flag.StringVar(&f.curves, "curves", "classic", "client TLS key exchange: classic (X25519, P-256, as OpenSSL 3.0 clients such as Python's) or go (Go's default, X25519MLKEM768 first)")
	flag.DurationVar(&f.budget, "budget", 225*time.Second, "stop starting new rows after this long (the quick run stays under 4 minutes)")
	flag.StringVar(&f.bin, "bin", "", "use this authproxy binary instead of building one")
	flag.BoolVar(&f.noDirect, "no-direct", false, "skip the direct runs (cleaner --profile; no ratios)")
	flag.StringVar(&f.proxyEnv, "proxy-env", "", "extra environment for authproxy (space-separated KEY=VALUE, e.g. GOMAXPROCS=1)")
	flag.BoolVar(&f.originInproc, "origin-inproc", false, "run the origin inside the bench process (default: a child process)")
	flag.StringVar(&f.serveOrigin, "serve-origin", "", "internal: run only the origin, in this directory")
	flag.DurationVar(&f.memHold, "mem-hold", 0, "hold the 256 and the 1,000 connections of the memory rows this long (to inspect the proxy)")
	flag.Parse()
	if f.serveOrigin != "" {
		if err := serveOriginChild(f.serveOrigin, f.originH1); err != nil {
			fmt.Fprintln(os.Stderr, "bench origin:", err)
			os.Exit(1)
		}
		return
	}
	if f.profile != "" {
		f.inproc = true
	}
	if f.soak > 2*time.Minute {
		f.soak = 2 * time.Minute
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, f); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, f flags) error {
	began := time.Now()
	specs, err := pickRows(f.rows)
	if err != nil {
		return err
	}
	var curves []tls.CurveID
	switch f.curves {
	case "classic":
		curves = []tls.CurveID{tls.X25519, tls.CurveP256}
	case "go":
	default:
		return fmt.Errorf("--curves: want classic or go, got %q", f.curves)
	}
	dir, err := os.MkdirTemp("", "authproxy-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	token := randomToken()
	var o *originRef
	if f.originInproc {
		o, err = inprocOrigin(dir, token, f.originH1)
	} else {
		o, err = childOrigin(dir, token, f.originH1)
	}
	if err != nil {
		return err
	}
	defer o.stop()

	// Each proxy can be started afresh: the memory rows and the soak each
	// get a new process, so that one measurement does not inherit another's
	// connections or heap.
	var startAP func() (*target, error)
	if f.inproc {
		startAP = func() (*target, error) { return startInproc(dir, o, token) }
	} else {
		bin := f.bin
		if bin == "" {
			if bin, err = buildAuthproxy(dir); err != nil {
				return err
			}
		}
		startAP = func() (*target, error) {
			return startAuthproxy(bin, dir, o, token, strings.Fields(f.proxyArgs), strings.Fields(f.proxyEnv))
		}
	}
	ap, err := startAP()
	if err != nil {
		return err
	}
	defer func() { ap.stop() }()

	var (
		mitm      *target
		startMitm func() (*target, error)
	)
	mitmNote := "not measured (--mitm=false)"
	if f.mitm {
		if exe, note := findMitmdump(); exe == "" {
			mitmNote = "UNAVAILABLE: " + note
		} else {
			startMitm = func() (*target, error) { return startMitmdump(exe, dir, o, token) }
			if mitm, err = startMitm(); err != nil {
				mitmNote = "UNAVAILABLE: " + err.Error()
				mitm, startMitm = nil, nil
			} else {
				defer func() { mitm.stop() }()
				mitmNote = mitmVersion(exe)
			}
		}
	}

	lo := loadOpts{dur: f.dur, maxReqs: f.maxReqs, token: token, curves: curves, origin: o.addr, roots: o.roots}
	header(f, o, ap, mitmNote)

	if f.profile != "" {
		pf, err := os.Create(f.profile)
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	targets := []*target{directTarget(o), ap}
	if f.noDirect {
		targets = targets[1:]
	}
	if mitm != nil {
		targets = append(targets, mitm)
	}
	var pids []int
	for _, t := range targets {
		pids = append(pids, t.pid)
	}
	pids = append(pids, o.pid)
	var results [][]*rowResult
	for _, spec := range specs {
		var row []*rowResult
		for _, t := range targets {
			if spec.tunnel && t.name == "mitmdump" {
				continue // mitmdump decrypts everything; nothing to compare
			}
			if ctx.Err() != nil || time.Since(began) > f.budget {
				row = append(row, &rowResult{spec: spec, target: t.name, skipped: "time budget"})
				continue
			}
			row = append(row, measureRow(t, o, spec, lo, f.warm, pids))
		}
		results = append(results, row)
	}
	printTable(results)

	if s, err := sampleProc(ap.pid); err == nil && !ap.inproc {
		fmt.Printf("\nauthproxy after the table: RSS %.1f MiB (peak %.1f MiB), %d threads, %d fds; %s so far\n",
			mib(s.rss), mib(s.hwm), s.threads, s.fds, time.Since(began).Round(time.Second))
	}
	var mems []*memResult
	if f.mem {
		for _, k := range []struct {
			start func() (*target, error)
			cur   **target
		}{{startAP, &ap}, {startMitm, &mitm}} {
			if k.start == nil || ctx.Err() != nil {
				continue
			}
			if time.Since(began) > f.budget+10*time.Second {
				fmt.Printf("\nmemory rows for %s skipped: time budget\n", (*k.cur).name)
				continue
			}
			m, err := memoryRows(k.start, k.cur, o, lo, f.memHold)
			if err != nil {
				return err
			}
			mems = append(mems, m)
		}
		printMemory(mems, ap.inproc)
	}
	fails := 0
	if len(results) > 0 || len(mems) > 0 {
		fails = printTargets(results, mems, mitm != nil)
	}

	if f.soak > 0 && ctx.Err() == nil {
		every := max(f.soak/24, 2*time.Second)
		ap.stop()
		if ap, err = startAP(); err != nil {
			return err
		}
		samples, sf := soak(ctx, ap, o, lo, f.soak, every)
		if !printSoak(samples, sf, f.soak) {
			fails++
		}
	}
	if fails > 0 {
		return fmt.Errorf("%d checks failed (see FAIL above)", fails)
	}
	return nil
}

// memoryRows measures one proxy's memory rows, each on a fresh process:
// *cur is stopped first and left pointing at the last process started.
func memoryRows(start func() (*target, error), cur **target, o *originRef, lo loadOpts, hold time.Duration) (*memResult, error) {
	(*cur).stop()
	t, err := start()
	if err != nil {
		return nil, err
	}
	*cur = t
	m := &memResult{target: t.name}
	measure256(t, o, lo, hold, m)
	t.stop()
	if t, err = start(); err != nil {
		return nil, err
	}
	*cur = t
	measureIdle(t, o, lo, hold, m)
	return m, nil
}

func pickRows(s string) ([]rowSpec, error) {
	if s == "none" {
		return nil, nil
	}
	var out []rowSpec
	for k := range strings.SplitSeq(s, ",") {
		k = strings.TrimSpace(k)
		found := false
		for _, r := range allRows {
			if r.key == k {
				out = append(out, r)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("--rows: unknown row %q", k)
		}
	}
	return out, nil
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return "bench-" + hex.EncodeToString(b)
}

func mitmVersion(exe string) string {
	out, err := runShort(exe, "--version")
	if err != nil {
		return "mitmdump (version unknown)"
	}
	for line := range strings.SplitSeq(out, "\n") {
		if strings.HasPrefix(line, "Mitmproxy:") {
			return "mitmdump " + strings.TrimSpace(strings.TrimPrefix(line, "Mitmproxy:"))
		}
	}
	return "mitmdump"
}

func header(f flags, o *originRef, ap *target, mitmNote string) {
	goVer, _ := runShort("go", "version")
	fmt.Printf("authproxy bench — %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Printf("machine: nproc %d; %s; %s\n", runtime.NumCPU(), machine(), strings.TrimSpace(goVer))
	if rev, err := runShort("git", "rev-parse", "--short", "HEAD"); err == nil {
		dirty, _ := runShort("git", "status", "--porcelain", "--untracked-files=no")
		n := 0
		for line := range strings.SplitSeq(dirty, "\n") {
			if strings.TrimSpace(line) != "" {
				n++
			}
		}
		fmt.Printf("source: commit %s, %d modified tracked files\n", strings.TrimSpace(rev), n)
	}
	mode := "built binary (go build, no -race), default logging"
	if f.bin != "" {
		mode = "binary " + f.bin + ", default logging"
	}
	if f.proxyArgs != "" {
		mode += ", args " + f.proxyArgs
	}
	if f.proxyEnv != "" {
		mode += ", env " + f.proxyEnv
	}
	if ap.inproc {
		mode = "IN-PROCESS (proxy CPU/RSS include the bench's clients and origin)"
	}
	la, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("load average before the run: %s\n", strings.TrimSpace(string(la)))
	fmt.Printf("authproxy: %s; mitmdump: %s\n", mode, mitmNote)
	fmt.Printf("%s; clients: Go http.Client over HTTP/1.1, curves %s; POST %s (%d B body, %d B reply)\n",
		o.desc, f.curves, apiPath, len(apiBody), len(originReply))
	fmt.Printf("each row: %s warm-up, then %s or %d requests; ratios are req/s vs the same row's direct or mitmdump run\n\n",
		f.warm, f.dur, f.maxReqs)
}

func printTable(results [][]*rowResult) {
	if len(results) == 0 {
		return
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "row\ttarget\treq/s\tp50\tp99\tvs direct\tvs mitmdump\tproxy CPU/req\tproxy RSS\torigin conns\tupstream h2\tclient resumed\tother CPU\tcheck\t")
	for _, row := range results {
		byName := map[string]*rowResult{}
		for _, r := range row {
			byName[r.target] = r
		}
		for _, r := range row {
			if r.skipped != "" || r.load == nil {
				what := "SKIPPED " + r.skipped
				if r.skipped == "" {
					what = "FAIL: " + strings.Join(r.fail, "; ")
				}
				fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t%s\t\n", r.spec.label, r.target, what)
				continue
			}
			l := r.load
			vsDirect, vsMitm := "", ""
			if r.target != "direct" {
				vsDirect = ratio(r, byName["direct"])
			}
			if r.target == "authproxy" {
				vsMitm = ratio(r, byName["mitmdump"])
			}
			cpu, rss := "-", "-"
			if r.target != "direct" {
				cpu = fmt.Sprintf("%.0f µs", float64(r.cpu.Microseconds())/float64(max(l.n, 1)))
				rss = fmt.Sprintf("%.1f MiB", mib(r.rss))
			}
			check := "ok"
			if !r.ok() {
				check = "FAIL: " + strings.Join(r.fail, "; ")
			}
			h2 := fmt.Sprintf("%.0f%%", 100*float64(r.origin.h2)/float64(max(r.origin.ok, 1)))
			resumed := "-"
			if r.spec.mode != keepAlive {
				resumed = fmt.Sprintf("%.0f%%", 100*float64(l.resumed)/float64(max(l.n, 1)))
			}
			fmt.Fprintf(tw, "%s\t%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%.0f%%\t%s\t\n", r.spec.label, r.target, l.rps(),
				fmtDur(l.pct(0.50)), fmtDur(l.pct(0.99)), vsDirect, vsMitm, cpu, rss, r.origin.conns, h2, resumed, 100*r.foreign, check)
		}
	}
	tw.Flush()
}

func ratio(a, b *rowResult) string {
	if b == nil || b.load == nil || !b.ok() || b.load.rps() == 0 || a.load == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", a.load.rps()/b.load.rps())
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	}
}

func printMemory(mems []*memResult, inproc bool) {
	if len(mems) == 0 {
		return
	}
	fmt.Println()
	if inproc {
		fmt.Println("memory (IN-PROCESS: RSS includes the bench itself; use the binary for these numbers)")
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "memory (fresh process per row)\ttarget\tRSS at start (file-backed)\tRSS, 256 keep-alive clients\treq/s (256)\tRSS, 1,000 idle conns\tproxy fds (1,000 idle)\tthreads\tcheck\t")
	for _, m := range mems {
		check := "ok"
		if len(m.fail) > 0 {
			check = "FAIL: " + strings.Join(m.fail, "; ")
		}
		fmt.Fprintf(tw, "memory\t%s\t%.1f MiB (%.1f)\t%.1f MiB\t%.0f\t%.1f MiB\t%d\t%d\t%s\t\n", m.target, mib(m.base.rss), mib(m.base.rssFile),
			mib(m.ka256.rss), m.ka256rps, mib(m.idle1000.rss), m.idle1000.fds, m.idle1000.threads, check)
	}
	tw.Flush()
}

// goal is one target from the issue.
type goal struct {
	what string
	got  float64
	want float64
	less bool // want got <= want
	have bool
}

// printTargets prints each target with PASS/MISS and returns the number of
// failed correctness checks (misses are reported, not counted as failures).
func printTargets(results [][]*rowResult, mems []*memResult, withMitm bool) int {
	fails := 0
	rps := map[string]map[string]float64{}
	for _, row := range results {
		for _, r := range row {
			if r.skipped == "" && !r.ok() {
				fails++
			}
			if r.load == nil || !r.ok() {
				continue
			}
			if rps[r.spec.key] == nil {
				rps[r.spec.key] = map[string]float64{}
			}
			rps[r.spec.key][r.target] = r.load.rps()
		}
	}
	rel := func(key, a, b string) (float64, bool) {
		m := rps[key]
		if m == nil || m[a] == 0 || m[b] == 0 {
			return 0, false
		}
		return m[a] / m[b], true
	}
	var goals []goal
	add := func(what, key, vs string, want float64) {
		v, ok := rel(key, "authproxy", vs)
		goals = append(goals, goal{what: what, got: v, want: want, have: ok})
	}
	add("keep-alive c=32 vs direct", "ka32", "direct", 0.5)
	add("keep-alive c=1 vs direct", "ka1", "direct", 0.5)
	add("new conn c=1 vs direct", "new1", "direct", 0.8)
	add("new conn c=8 vs direct", "new8", "direct", 0.85)
	add("Connection: close c=1 vs direct", "close1", "direct", 0.75)
	if withMitm {
		add("keep-alive c=32 vs mitmdump", "ka32", "mitmdump", 15)
		add("keep-alive c=1 vs mitmdump", "ka1", "mitmdump", 4)
		add("new conn c=1 vs mitmdump", "new1", "mitmdump", 4)
		add("new conn c=8 vs mitmdump", "new8", "mitmdump", 4)
		add("Connection: close c=1 vs mitmdump", "close1", "mitmdump", 4)
	}
	for _, m := range mems {
		if m.target != "authproxy" {
			continue
		}
		if len(m.fail) > 0 {
			fails++
		}
		goals = append(goals,
			goal{what: "RSS, 256 keep-alive clients (MiB)", got: mib(m.ka256.rss), want: 40, less: true, have: true},
			goal{what: "RSS, 1,000 idle connections (MiB)", got: mib(m.idle1000.rss), want: 64, less: true, have: true})
	}
	fmt.Println("\ntargets (one run):")
	for _, g := range goals {
		if !g.have {
			fmt.Printf("  %-40s  not measured\n", g.what)
			continue
		}
		met := g.got >= g.want
		cmp := ">="
		if g.less {
			met, cmp = g.got <= g.want, "<="
		}
		verdict := "PASS"
		if !met {
			if g.less {
				verdict = fmt.Sprintf("MISS by %.1f", g.got-g.want)
			} else {
				verdict = fmt.Sprintf("MISS by %.0f%%", 100*(g.want-g.got)/g.want)
			}
		}
		unit := "x"
		if g.less {
			unit = ""
		}
		fmt.Printf("  %-40s  %6.2f%s (want %s %g%s)  %s\n", g.what, g.got, unit, cmp, g.want, unit, verdict)
	}
	if fails > 0 {
		fmt.Printf("  %d correctness checks FAILED\n", fails)
	}
	return fails
}

// printSoak prints the RSS series and whether it stayed flat: the largest
// RSS in the last third is at most 10%% (or 2 MiB) above the largest in the
// first third, and file descriptors did not grow.
func printSoak(samples []soakSample, fails []string, dur time.Duration) bool {
	fmt.Printf("\nsoak: %s of 32 keep-alive + 2 new-connection + 1 Connection: close clients through authproxy\n", dur)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "t\trequests\tRSS\tthreads\tfds\t")
	for _, s := range samples {
		fmt.Fprintf(tw, "%s\t%d\t%.1f MiB\t%d\t%d\t\n", s.at.Round(time.Second), s.reqs, mib(s.proc.rss), s.proc.threads, s.proc.fds)
	}
	tw.Flush()
	ok := len(fails) == 0
	if len(samples) < 6 {
		fmt.Println("soak: too few samples to judge")
		return ok
	}
	// Skip the first sample (before load) when judging.
	loaded := samples[1:]
	third := len(loaded) / 3
	maxRSS := func(ss []soakSample) int64 {
		var m int64
		for _, s := range ss {
			m = max(m, s.proc.rss)
		}
		return m
	}
	first, last := maxRSS(loaded[:third]), maxRSS(loaded[len(loaded)-third:])
	limit := max(first+first/10, first+2<<20)
	flat := last <= limit
	verdict := "flat"
	if !flat {
		verdict = "GROWING"
		ok = false
	}
	fmt.Printf("soak: RSS max first third %.1f MiB, last third %.1f MiB: %s", mib(first), mib(last), verdict)
	if n := len(samples); n > 0 {
		fmt.Printf("; %d requests, %.0f req/s", samples[n-1].reqs, float64(samples[n-1].reqs)/samples[n-1].at.Seconds())
	}
	fmt.Println()
	for _, f := range fails {
		fmt.Println("soak FAIL:", f)
	}
	return ok
}

func runShort(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}
