package integration

import "testing"

func TestContainsSecret(t *testing.T) {
	for _, c := range []struct {
		text, secret string
		want         bool
	}{
		{`"mpin":"4821"`, "4821", true},
		{"4821", "4821", true},
		{"read tcp 127.0.0.1:48212->127.0.0.1:45835", "4821", false},
		{"took=148213ms", "4821", false},
		{"pin 4821, again", "4821", true},
		{"JBSWY3DPEHPK3PXP inside", "JBSWY3DPEHPK3PXP", true},
		{"no secret here", "JBSWY3DPEHPK3PXP", false},
	} {
		if got := containsSecret(c.text, c.secret); got != c.want {
			t.Errorf("containsSecret(%q, %q) = %v, want %v", c.text, c.secret, got, c.want)
		}
	}
}
