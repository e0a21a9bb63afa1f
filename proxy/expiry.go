package proxy

import "time"

// LoginWarnAhead is how long before a browser-login account's token expires
// the proxy starts warning (log, dashboard, /metrics authproxy_login_due):
// such a token cannot be renewed, only replaced by a person logging in.
const LoginWarnAhead = time.Hour

// LoginDue reports whether a browser-login account needs a person to log in
// within LoginWarnAhead of now (or already does).
func LoginDue(a AccountStatus, now time.Time) bool {
	if !a.Interactive || a.State == "unconfigured" {
		return false
	}
	if a.Expiry == nil {
		return a.State != "ready" && a.State != "refreshing"
	}
	return a.Expiry.Sub(now) < LoginWarnAhead
}
