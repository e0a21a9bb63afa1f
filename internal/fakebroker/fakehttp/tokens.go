package fakehttp

import "time"

// Token is an access token a fake issued.
type Token struct {
	Expiry  time.Time
	Revoked bool
}

// Tokens are the access tokens a fake issued, by value. It has no lock of
// its own: the fake holds its mutex around every use.
type Tokens map[string]*Token

// RevokeAll revokes every token issued so far.
func (ts Tokens) RevokeAll() {
	for _, t := range ts {
		t.Revoked = true
	}
}

// Live reports whether tok was issued, is not revoked and has not expired
// at now.
func (ts Tokens) Live(tok string, now time.Time) bool {
	t, ok := ts[tok]
	return ok && !t.Revoked && now.Before(t.Expiry)
}
