package auth

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// CallbackCode is the authorization code of an OAuth 2.0 callback
// (RFC 6749 §4.1.2) for account. A callback that carries "error" is the
// broker's refusal: a *LoginError with "error: error_description", made
// safe to show; one without a code is a *LoginError too.
func CallbackCode(account string, callback url.Values) (string, error) {
	if e := callback.Get("error"); e != "" {
		msg := strings.TrimSuffix(BrokerMessage(e+": "+callback.Get("error_description")), ":")
		return "", &LoginError{Account: account, Message: msg}
	}
	code := callback.Get("code")
	if code == "" {
		return "", &LoginError{Account: account, Message: "the callback carries no authorization code"}
	}
	return code, nil
}

// CheckBearer is a *LoginError for account unless tokenType, from a token
// answer, is empty or "bearer" (in any case).
func CheckBearer(account, tokenType string) error {
	if tokenType != "" && !strings.EqualFold(tokenType, "bearer") {
		return &LoginError{Account: account, Message: "unexpected token_type " + strconv.Quote(BrokerMessage(tokenType))}
	}
	return nil
}

// OnceTransport is an http.RoundTripper (for x/oauth2's token requests)
// that sends each request exactly once through Client: an authorization
// code or a rotating refresh token is spent by the first attempt, so a
// blind retry could only lose it. Header's values are set on a copy of the
// request first.
type OnceTransport struct {
	Client *HTTPClient
	Header map[string]string
}

// RoundTrip implements http.RoundTripper.
func (t OnceTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if len(t.Header) > 0 {
		r = r.Clone(r.Context())
		for k, v := range t.Header {
			r.Header.Set(k, v)
		}
	}
	return t.Client.Do(r.Context(), r, false)
}
