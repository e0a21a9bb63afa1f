package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ErrNoExpiry is returned by JWTExpiry for a token without an exp claim.
var ErrNoExpiry = errors.New("jwt has no exp claim")

// maxJWTLen bounds the input JWTClaims will look at; broker tokens are a few
// kilobytes at most.
const maxJWTLen = 64 << 10

// maxExp is the largest exp JWTExpiry accepts (year 9999), so the result
// always fits a time.Time without overflow.
const maxExp = 253402300799

// JWTClaims decodes the payload of a compact JWS (header.payload.signature)
// without checking the signature: authproxy reads broker tokens only to learn
// when they expire and which host they belong to, never to trust them.
// The payload may be base64url with or without padding. Errors never quote
// the token.
func JWTClaims(token string) (map[string]any, error) {
	if len(token) > maxJWTLen {
		return nil, fmt.Errorf("jwt too long (%d bytes)", len(token))
	}
	parts := strings.Split(strings.TrimSpace(token), ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("jwt has %d segments, want 3", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, fmt.Errorf("jwt payload is not base64url: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil {
		return nil, fmt.Errorf("jwt payload is not a JSON object: %w", err)
	}
	if claims == nil {
		return nil, errors.New("jwt payload is not a JSON object")
	}
	if dec.More() {
		return nil, errors.New("jwt payload has trailing data")
	}
	return claims, nil
}

// JWTExpiry returns the exp claim of token as a time. exp may be a JSON
// number (fractions allowed) or a string holding one. A token without exp
// yields an error wrapping ErrNoExpiry.
func JWTExpiry(token string) (time.Time, error) {
	claims, err := JWTClaims(token)
	if err != nil {
		return time.Time{}, err
	}
	raw, ok := claims["exp"]
	if !ok || raw == nil {
		return time.Time{}, ErrNoExpiry
	}
	var s string
	switch v := raw.(type) {
	case json.Number:
		s = v.String()
	case string:
		s = strings.TrimSpace(v)
	default:
		return time.Time{}, fmt.Errorf("jwt exp claim is a %T, want a number", raw)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return time.Time{}, errors.New("jwt exp claim is not a number")
	}
	if f <= 0 || f > maxExp {
		return time.Time{}, fmt.Errorf("jwt exp claim %v out of range", f)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC(), nil
}
