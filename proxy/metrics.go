package proxy

import (
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/authproxy/authproxy/auth"
)

// Metrics is authproxy's Prometheus instrumentation, on a registry of its
// own (never the global one). Counters and the latency histogram are fed by
// [Metrics.Observe] (wire it to Options.Observe) and [Metrics.OnEvent]
// (auth.CacheOptions.OnEvent); gauges are read from the proxy's status at
// scrape time. Serve it at /metrics. All methods are safe for concurrent use.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	logins   *prometheus.CounterVec
	replays  *prometheus.CounterVec
	rejected *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	handler  http.Handler
	status   func() StatusReport // nil: no gauges

	descExpiry, descReady, descTunnels, descStore, descRejected *prometheus.Desc
	descClientTLS, descLoginDue                                 *prometheus.Desc
}

// Login kinds of authproxy_logins_total.
const (
	LoginKindLogin         = "login"          // a full login succeeded (browser logins included)
	LoginKindRenewal       = "renewal"        // a refresh/renewal succeeded
	LoginKindLoginFailed   = "login_failed"   // a login failed
	LoginKindRenewalFailed = "renewal_failed" // a renewal failed
	LoginKindRateLimited   = "rate_limited"   // the broker locked the account out
)

// NewMetrics builds the metrics and their registry. status is where the
// scrape-time gauges come from (normally the running proxy's Status; nil:
// no gauges).
func NewMetrics(status func() StatusReport) *Metrics {
	m := &Metrics{
		status: status,
		reg:    prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authproxy_requests_total",
			Help: "Proxied broker requests by account and outcome (ok, upstream_error, bypass, or the error code the client got).",
		}, []string{"account", "outcome"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authproxy_logins_total",
			Help: "Logins and renewals by account and kind (login, renewal, login_failed, renewal_failed, rate_limited).",
		}, []string{"account", "kind"}),
		replays: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authproxy_replays_total",
			Help: "Requests replayed with a fresh token after the broker rejected the first one.",
		}, []string{"account"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authproxy_token_rejections_total",
			Help: "Tokens the broker rejected (each one dropped and replaced).",
		}, []string{"account"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "authproxy_upstream_duration_seconds",
			Help:    "Time from a forwarded request's arrival to the end of the broker's response, by account (a login the request waited for included).",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"account"}),
		descExpiry: prometheus.NewDesc("authproxy_token_expiry_seconds",
			"Seconds until the account's current token expires (negative: expired; absent: no token or no known expiry).",
			[]string{"account"}, nil),
		descReady: prometheus.NewDesc("authproxy_account_ready",
			"1 when the account has a valid token being served, else 0; state is the state in words.",
			[]string{"account", "state"}, nil),
		descTunnels: prometheus.NewDesc("authproxy_open_tunnels",
			"Open CONNECT tunnels (decrypted and blind).", nil, nil),
		descClientTLS: prometheus.NewDesc("authproxy_client_tls_failures_total",
			"TLS handshakes clients broke off on the proxy's certificate (usually: the client does not trust the authproxy CA).", nil, nil),
		descLoginDue: prometheus.NewDesc("authproxy_login_due",
			"1 when a browser-login account's token expires within the hour (or has expired): a person must log in again; 0 otherwise. Only browser-login accounts.",
			[]string{"account"}, nil),
		descStore: prometheus.NewDesc("authproxy_store_up",
			"1 when the account's last call to the shared token store succeeded (always 1 with the file store), else 0.",
			[]string{"account"}, nil),
		descRejected: prometheus.NewDesc("authproxy_account_rejected_by_broker",
			"1 while the broker refuses even a fresh token of the account (re-logins on rejection are held); message is the broker's own.",
			[]string{"account", "message"}, nil),
	}
	m.reg.MustRegister(m.requests, m.logins, m.replays, m.rejected, m.latency, statusCollector{m})
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
	})
	return m
}

// Registry is the metrics' own registry (for tests and extra collectors).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ServeHTTP serves the Prometheus text format.
func (m *Metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) { m.handler.ServeHTTP(w, r) }

// Observe records one proxied request (Options.Observe).
func (m *Metrics) Observe(rec RequestRecord) {
	acct := accountLabel(rec.Account)
	m.requests.WithLabelValues(acct, outcomeLabel(rec.Outcome)).Inc()
	if rec.Replayed {
		m.replays.WithLabelValues(acct).Inc()
	}
	// Only requests that reached the broker say something about its latency.
	if rec.Status > 0 && (rec.Outcome == "ok" || rec.Outcome == "upstream_error" || rec.Outcome == "bypass") {
		m.latency.WithLabelValues(acct).Observe(rec.Duration.Seconds())
	}
}

// OnEvent records a token cache event (auth.CacheOptions.OnEvent).
func (m *Metrics) OnEvent(ev auth.Event) {
	acct := accountLabel(ev.Account)
	switch ev.Kind {
	case auth.EventLogin:
		m.logins.WithLabelValues(acct, LoginKindLogin).Inc()
	case auth.EventRefresh:
		m.logins.WithLabelValues(acct, LoginKindRenewal).Inc()
	case auth.EventLoginFailed:
		m.logins.WithLabelValues(acct, LoginKindLoginFailed).Inc()
	case auth.EventRefreshFailed:
		m.logins.WithLabelValues(acct, LoginKindRenewalFailed).Inc()
	case auth.EventRateLimited:
		m.logins.WithLabelValues(acct, LoginKindRateLimited).Inc()
	case auth.EventInvalidated:
		m.rejected.WithLabelValues(acct).Inc()
	}
}

func accountLabel(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// outcomeLabel keeps the label's values few and well-formed whatever a
// future error code looks like.
func outcomeLabel(s string) string {
	if s == "" {
		return "unknown"
	}
	if len(s) > 40 || strings.ContainsFunc(s, func(r rune) bool {
		return !(r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
	}) {
		return "other"
	}
	return s
}

// statusCollector turns the proxy's status into gauges at scrape time.
type statusCollector struct{ m *Metrics }

func (c statusCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.m.descExpiry
	ch <- c.m.descReady
	ch <- c.m.descStore
	ch <- c.m.descTunnels
	ch <- c.m.descClientTLS
	ch <- c.m.descLoginDue
	ch <- c.m.descRejected
}

func (c statusCollector) Collect(ch chan<- prometheus.Metric) {
	if c.m.status == nil {
		return
	}
	rep := c.m.status()
	ch <- prometheus.MustNewConstMetric(c.m.descTunnels, prometheus.GaugeValue, float64(rep.OpenTunnels))
	ch <- prometheus.MustNewConstMetric(c.m.descClientTLS, prometheus.CounterValue, float64(rep.ClientTLSFailures))
	for _, a := range rep.Accounts {
		ready := 0.0
		if a.State == auth.StateReady {
			ready = 1
		}
		ch <- prometheus.MustNewConstMetric(c.m.descReady, prometheus.GaugeValue, ready, a.Name, a.State)
		if a.State == auth.StateRejected {
			ch <- prometheus.MustNewConstMetric(c.m.descRejected, prometheus.GaugeValue, 1, a.Name, clip(a.LastError, 200))
		}
		if a.State != "unconfigured" {
			up := 1.0
			if a.StoreError != "" {
				up = 0
			}
			ch <- prometheus.MustNewConstMetric(c.m.descStore, prometheus.GaugeValue, up, a.Name)
		}
		if a.Interactive && a.State != "unconfigured" {
			due := 0.0
			if LoginDue(a, rep.Time) {
				due = 1
			}
			ch <- prometheus.MustNewConstMetric(c.m.descLoginDue, prometheus.GaugeValue, due, a.Name)
		}
		if a.Expiry != nil {
			secs := a.Expiry.Sub(rep.Time).Seconds()
			ch <- prometheus.MustNewConstMetric(c.m.descExpiry, prometheus.GaugeValue, secs, a.Name)
		}
	}
}
