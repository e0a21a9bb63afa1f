package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// connMode is how a row's clients use connections.
type connMode int

const (
	keepAlive connMode = iota // one pooled client; connections reused
	newConn                   // a new TCP+TLS connection per request, no Connection: close
	connClose                 // requests carry Connection: close (req.Close)
)

// rowSpec is one line of the table.
type rowSpec struct {
	key      string
	label    string
	mode     connMode
	conc     int
	noResume bool // new connections without a TLS session cache
	// tunnel rows address the origin by IP (not a broker host): authproxy
	// relays them byte for byte without decrypting, and clients send their
	// own bearer. They show the least any process in the middle costs here.
	tunnel bool
}

var allRows = []rowSpec{
	{key: "ka1", label: "keep-alive c=1", mode: keepAlive, conc: 1},
	{key: "ka32", label: "keep-alive c=32", mode: keepAlive, conc: 32},
	{key: "new1", label: "new conn c=1", mode: newConn, conc: 1},
	{key: "new8", label: "new conn c=8", mode: newConn, conc: 8},
	{key: "close1", label: "Connection: close c=1", mode: connClose, conc: 1},
	{key: "new1nr", label: "new conn c=1, no resumption", mode: newConn, conc: 1, noResume: true},
	{key: "tun1", label: "tunnel (no MITM) keep-alive c=1", mode: keepAlive, conc: 1, tunnel: true},
	{key: "tun32", label: "tunnel (no MITM) keep-alive c=32", mode: keepAlive, conc: 32, tunnel: true},
}

// loadOpts bound one measured run.
type loadOpts struct {
	dur     time.Duration
	maxReqs int64
	token   string // sent by direct clients themselves
	curves  []tls.CurveID
	origin  string         // the origin's address, for tunnel rows
	roots   *x509.CertPool // the origin's CA, trusted end to end in tunnel rows
}

// loadResult is what the clients saw.
type loadResult struct {
	n, errs  int64
	firstErr string
	lat      []time.Duration
	resumed  int64 // client-side handshakes that resumed a session
	elapsed  time.Duration
}

func (r *loadResult) rps() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.n) / r.elapsed.Seconds()
}

func (r *loadResult) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(float64(len(r.lat)-1) * p)
	return r.lat[i]
}

// clientSet holds a row's clients for one target: one shared client for
// keep-alive and Connection: close, one per worker for new connections (each
// worker drops its connection after every request).
type clientSet struct {
	shared  *http.Transport
	workers []*http.Transport
}

func newClientSet(t *target, spec rowSpec, o loadOpts) *clientSet {
	var sessions tls.ClientSessionCache
	if !spec.noResume {
		sessions = tls.NewLRUClientSessionCache(64)
	}
	var roots *x509.CertPool
	if spec.tunnel {
		roots = o.roots
	}
	cs := &clientSet{}
	switch spec.mode {
	case keepAlive, connClose:
		cs.shared = t.transportTrusting(roots, sessions, o.curves, spec.conc)
	case newConn:
		for range spec.conc {
			cs.workers = append(cs.workers, t.transportTrusting(roots, sessions, o.curves, 1))
		}
	}
	return cs
}

func (cs *clientSet) transport(i int) *http.Transport {
	if cs.shared != nil {
		return cs.shared
	}
	return cs.workers[i]
}

func (cs *clientSet) close() {
	if cs.shared != nil {
		cs.shared.CloseIdleConnections()
	}
	for _, tr := range cs.workers {
		tr.CloseIdleConnections()
	}
}

// doRequest sends one API request and checks the answer.
func doRequest(c *http.Client, t *target, mode connMode, lo loadOpts, tunnel bool) (resumed bool, err error) {
	host := brokerHost
	if tunnel {
		host = lo.origin
	}
	req, err := http.NewRequest(http.MethodPost, "https://"+host+apiPath, strings.NewReader(apiBody))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if t.direct() || tunnel {
		req.Header.Set("Authorization", "Bearer "+lo.token)
	}
	req.Close = mode == connClose
	resp, err := c.Do(req)
	if err != nil {
		return false, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return false, err
	}
	if resp.StatusCode != http.StatusOK || n != int64(len(originReply)) {
		return false, fmt.Errorf("status %d, %d body bytes (%s)", resp.StatusCode, n, resp.Header.Get("X-Authproxy-Error"))
	}
	return resp.TLS != nil && resp.TLS.DidResume, nil
}

// runLoad runs spec.conc workers against t until dur has passed or maxReqs
// requests were made. Workers finish their request in flight.
func runLoad(t *target, spec rowSpec, cs *clientSet, o loadOpts) *loadResult {
	var (
		count    atomic.Int64
		errs     atomic.Int64
		resumed  atomic.Int64
		errOnce  sync.Once
		firstErr string
		mu       sync.Mutex
		lat      []time.Duration
		wg       sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(o.dur)
	for i := range spec.conc {
		tr := cs.transport(i)
		c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, 4096)
			for time.Now().Before(deadline) && count.Add(1) <= o.maxReqs {
				t0 := time.Now()
				res, err := doRequest(c, t, spec.mode, o, spec.tunnel)
				d := time.Since(t0)
				if spec.mode == newConn {
					tr.CloseIdleConnections()
				}
				if err != nil {
					errs.Add(1)
					errOnce.Do(func() { firstErr = err.Error() })
					if errs.Load() > 1000 {
						return
					}
					continue
				}
				if res {
					resumed.Add(1)
				}
				mine = append(mine, d)
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	r := &loadResult{n: int64(len(lat)), errs: errs.Load(), firstErr: firstErr, lat: lat,
		resumed: resumed.Load(), elapsed: time.Since(start)}
	slices.Sort(r.lat)
	return r
}

// rowResult is one measured row for one target.
type rowResult struct {
	spec    rowSpec
	target  string
	load    *loadResult
	origin  originCounts
	cpu     time.Duration // proxy CPU during the run
	rss     int64
	foreign float64 // cores used by processes outside the bench meanwhile
	fail    []string
	skipped string
}

func (r *rowResult) ok() bool { return r.skipped == "" && len(r.fail) == 0 }

// measureRow warms t up for spec, then measures it.
func measureRow(t *target, o *originRef, spec rowSpec, lo loadOpts, warm time.Duration, pids []int) *rowResult {
	res := &rowResult{spec: spec, target: t.name}
	cs := newClientSet(t, spec, lo)
	defer cs.close()
	wo := lo
	wo.dur, wo.maxReqs = warm, 1<<40
	w := runLoad(t, spec, cs, wo)
	if w.errs > 0 && w.n == 0 {
		res.fail = append(res.fail, "warm-up failed: "+w.firstErr)
		return res
	}
	before := o.counts()
	var p0 procSample
	if t.pid != 0 {
		p0, _ = sampleProc(t.pid)
	}
	meter := startCPUMeter(pids...)
	res.load = runLoad(t, spec, cs, lo)
	res.foreign = meter.foreign()
	res.origin = o.counts().sub(before)
	if t.pid != 0 {
		if p1, err := sampleProc(t.pid); err == nil {
			res.cpu, res.rss = p1.cpu-p0.cpu, p1.rss
		} else {
			res.fail = append(res.fail, "proxy process: "+err.Error())
		}
	}
	res.check()
	return res
}

// check marks the row FAIL unless every request succeeded and reached the
// origin exactly once carrying the right bearer, with no login.
func (r *rowResult) check() {
	l := r.load
	if l.errs > 0 {
		r.fail = append(r.fail, fmt.Sprintf("%d client errors (first: %s)", l.errs, l.firstErr))
	}
	if r.origin.bad > 0 {
		r.fail = append(r.fail, fmt.Sprintf("%d requests without the injected bearer", r.origin.bad))
	}
	if r.origin.logins > 0 {
		r.fail = append(r.fail, fmt.Sprintf("%d login calls reached the broker", r.origin.logins))
	}
	if r.origin.ok != l.n {
		r.fail = append(r.fail, fmt.Sprintf("origin answered %d, clients counted %d", r.origin.ok, l.n))
	}
	if l.n == 0 {
		r.fail = append(r.fail, "no requests completed")
	}
}

// memResult is the memory row for one proxy.
type memResult struct {
	target               string
	base                 procSample // before the memory rows
	ka256                procSample // during 256 keep-alive clients
	ka256rps             float64
	idle1000             procSample // with 1,000 idle client connections
	idleOpened, idleFail int
	fail                 []string
}

// measure256 runs 256 keep-alive clients against a freshly started t for
// a few seconds and records the proxy's peak RSS while they are connected.
func measure256(t *target, o *originRef, lo loadOpts, hold time.Duration, m *memResult) {
	m.base, _ = sampleProc(t.pid)
	before := o.counts()
	spec := rowSpec{key: "mem256", label: "256 keep-alive clients", mode: keepAlive, conc: 256}
	cs := newClientSet(t, spec, lo)
	defer cs.close()
	ml := lo
	ml.dur, ml.maxReqs = 3*time.Second, 1<<40
	var peak procSample
	stopSampler := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopSampler:
				return
			case <-tick.C:
				if s, err := sampleProc(t.pid); err == nil && s.rss > peak.rss {
					peak = s
				}
			}
		}
	}()
	r := runLoad(t, spec, cs, ml)
	end, _ := sampleProc(t.pid) // the 256 connections are still open, now idle
	close(stopSampler)
	<-sampled
	if hold > 0 {
		fmt.Fprintf(os.Stderr, "holding 256 keep-alive connections to %s (pid %d) for %s\n", t.name, t.pid, hold)
		time.Sleep(hold)
	}
	if end.rss > peak.rss {
		peak = end
	}
	m.ka256, m.ka256rps = peak, r.rps()
	if r.errs > 0 {
		m.fail = append(m.fail, fmt.Sprintf("256 clients: %d errors (first: %s)", r.errs, r.firstErr))
	}
	if d := o.counts().sub(before); d.bad > 0 || d.logins > 0 || d.ok != r.n {
		m.fail = append(m.fail, fmt.Sprintf("256 clients: %d requests without the bearer, %d logins, origin answered %d of %d",
			d.bad, d.logins, d.ok, r.n))
	}
}

// measureIdle opens 1,000 keep-alive connections to a freshly started t (one
// client per connection, one request each), leaves them idle and records
// the proxy's RSS.
func measureIdle(t *target, o *originRef, lo loadOpts, hold time.Duration, m *memResult) {
	const idleConns = 1000
	before := o.counts()
	trs := make([]*http.Transport, idleConns)
	defer func() {
		for _, tr := range trs {
			if tr != nil {
				tr.CloseIdleConnections()
			}
		}
	}()
	sessions := tls.NewLRUClientSessionCache(64)
	var (
		wg     sync.WaitGroup
		failed atomic.Int64
		errMu  sync.Mutex
		first  error
	)
	sem := make(chan struct{}, 32)
	for i := range trs {
		trs[i] = t.transport(sessions, lo.curves, 1)
		wg.Add(1)
		sem <- struct{}{}
		go func(tr *http.Transport) {
			defer wg.Done()
			defer func() { <-sem }()
			c := &http.Client{Transport: tr, Timeout: 60 * time.Second}
			if _, err := doRequest(c, t, keepAlive, lo, false); err != nil {
				failed.Add(1)
				errMu.Lock()
				if first == nil {
					first = err
				}
				errMu.Unlock()
			}
		}(trs[i])
	}
	wg.Wait()
	m.idleFail = int(failed.Load())
	m.idleOpened = idleConns - m.idleFail
	time.Sleep(2 * time.Second) // let the proxy settle into idle
	m.idle1000, _ = sampleProc(t.pid)
	if hold > 0 {
		fmt.Fprintf(os.Stderr, "holding 1,000 idle connections to %s (pid %d) for %s\n", t.name, t.pid, hold)
		time.Sleep(hold)
	}
	if m.idleFail > 0 {
		m.fail = append(m.fail, fmt.Sprintf("1000 idle: %d connections failed (first: %v)", m.idleFail, first))
	}
	if m.idle1000.fds < idleConns {
		m.fail = append(m.fail, fmt.Sprintf("1000 idle: proxy holds only %d fds", m.idle1000.fds))
	}
	if d := o.counts().sub(before); d.bad > 0 || d.logins > 0 || d.ok != int64(m.idleOpened) {
		m.fail = append(m.fail, fmt.Sprintf("1000 idle: %d requests without the bearer, %d logins, origin answered %d of %d",
			d.bad, d.logins, d.ok, m.idleOpened))
	}
}

// soakSample is one reading during the soak.
type soakSample struct {
	at   time.Duration
	proc procSample
	reqs int64
}

// soak runs a mixed load (32 keep-alive clients, 2 new-connection clients,
// 1 Connection: close client) against t for dur, sampling the proxy.
func soak(ctx context.Context, t *target, o *originRef, lo loadOpts, dur time.Duration, every time.Duration) ([]soakSample, []string) {
	var fails []string
	before := o.counts()
	var total, errs atomic.Int64
	var firstErr atomic.Value
	start := time.Now()
	deadline := start.Add(dur)
	ka := t.transport(tls.NewLRUClientSessionCache(64), lo.curves, 32)
	defer ka.CloseIdleConnections()
	sessions := tls.NewLRUClientSessionCache(64)
	var wg sync.WaitGroup
	worker := func(tr *http.Transport, mode connMode) {
		defer wg.Done()
		c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
		for time.Now().Before(deadline) && ctx.Err() == nil {
			if _, err := doRequest(c, t, mode, lo, false); err != nil {
				errs.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			} else {
				total.Add(1)
			}
			if mode == newConn {
				tr.CloseIdleConnections()
			}
		}
	}
	for range 32 {
		wg.Add(1)
		go worker(ka, keepAlive)
	}
	for range 2 {
		wg.Add(1)
		go worker(t.transport(sessions, lo.curves, 1), newConn)
	}
	closer := t.transport(sessions, lo.curves, 1)
	wg.Add(1)
	go worker(closer, connClose)

	var samples []soakSample
	tick := time.NewTicker(every)
	if s, err := sampleProc(t.pid); err == nil {
		samples = append(samples, soakSample{at: 0, proc: s})
	}
	for time.Now().Before(deadline) && ctx.Err() == nil {
		<-tick.C
		s, err := sampleProc(t.pid)
		if err != nil {
			fails = append(fails, "proxy process: "+err.Error())
			break
		}
		samples = append(samples, soakSample{at: time.Since(start), proc: s, reqs: total.Load()})
	}
	tick.Stop()
	wg.Wait()
	d := o.counts().sub(before)
	if n := errs.Load(); n > 0 {
		fe, _ := firstErr.Load().(string)
		fails = append(fails, fmt.Sprintf("%d client errors (first: %s)", n, fe))
	}
	if d.bad > 0 || d.logins > 0 {
		fails = append(fails, fmt.Sprintf("%d requests without the bearer, %d logins", d.bad, d.logins))
	}
	if d.ok != total.Load() {
		fails = append(fails, fmt.Sprintf("origin answered %d, clients counted %d", d.ok, total.Load()))
	}
	return samples, fails
}
