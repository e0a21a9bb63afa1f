// Package fakehttp holds the wire helpers every fake broker shares: writing
// a JSON answer and reading a bearer token as strictly as a real API does.
package fakehttp

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// WriteJSON answers status with v as JSON (Content-Type and Content-Length
// set).
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// Bearer returns the token of the request's single Authorization header
// "Bearer <token>" (scheme in any case). Several Authorization headers, a
// different scheme, an empty token, or one holding a space, tab or comma
// are refused.
func Bearer(h http.Header) (string, bool) {
	vals := h.Values("Authorization")
	if len(vals) != 1 {
		return "", false
	}
	scheme, tok, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" || strings.ContainsAny(tok, " \t,") {
		return "", false
	}
	return tok, true
}

// RandToken returns n random bytes, base64url without padding: a token,
// code or id a fake broker hands out.
func RandToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}
