package fivepaisa

import (
	"testing"

	"github.com/authproxy/authproxy/auth"
)

func TestUpstreamHostFollowsRedirectServer(t *testing.T) {
	var s session
	tok := func(rs string) *auth.Token { return &auth.Token{Meta: map[string]string{"redirect_server": rs}} }
	tests := []struct {
		host string
		tok  *auth.Token
		want string
	}{
		{"openfeed.5paisa.com", tok("A"), "aopenfeed.5paisa.com"},
		{"aopenfeed.5paisa.com", tok("B"), "bopenfeed.5paisa.com"},
		{"bopenfeed.5paisa.com", tok("C"), "openfeed.5paisa.com"},
		{"openfeed.5paisa.com", tok("c"), "openfeed.5paisa.com"},
		{"aopenfeed.5paisa.com", tok(""), "aopenfeed.5paisa.com"},
		{"aopenfeed.5paisa.com", tok("Z"), "aopenfeed.5paisa.com"},
		{"openapi.5paisa.com", tok("A"), "openapi.5paisa.com"},
		{"gateway.5paisa.com", tok("A"), "gateway.5paisa.com"},
		{"openfeed.5paisa.com", nil, "openfeed.5paisa.com"},
	}
	for _, tt := range tests {
		if got := s.UpstreamHost(tt.host, tt.tok); got != tt.want {
			t.Errorf("UpstreamHost(%s) = %s, want %s", tt.host, got, tt.want)
		}
	}
}
