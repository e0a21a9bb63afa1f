package auth

import (
	"net/http"
)

// noRedirects is the login client's CheckRedirect: a login request carries
// MPINs, TOTP codes and passwords, so it is never re-sent elsewhere.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// redirectError turns a redirect answer from a login endpoint into a
// LoginError naming the Location's host (never the full URL: its query may
// carry codes). It returns nil for any other answer.
func redirectError(req *http.Request, resp *http.Response) error {
	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusMultipleChoices:
	default:
		return nil
	}
	host := "an unnamed location"
	if loc := resp.Header.Get("Location"); loc != "" {
		if u, err := req.URL.Parse(loc); err == nil && u.Host != "" {
			host = u.Hostname()
		} else if err == nil {
			host = req.URL.Hostname() + " (same host)"
		}
	}
	return &LoginError{StatusCode: resp.StatusCode,
		Message: "the login endpoint " + safeURL(req.URL) +
			" redirected to " + host + "; authproxy never follows a redirect from a login endpoint (it would re-send the credentials there)"}
}
