package auth

import (
	"testing"
	"time"
)

func TestCheckAccount(t *testing.T) {
	for _, c := range []struct {
		account string
		req     []Required
		want    string
	}{
		{"", []Required{Need("a", false)}, "kind: account name is empty"},
		{"acc", nil, ""},
		{"acc", []Required{Need("a", true), Need("b", true)}, ""},
		{"acc", []Required{Need("a", false), Need("b", true), Need("c", false)}, `kind account "acc": missing a, c`},
	} {
		err := CheckAccount("kind", c.account, c.req...)
		if got := ""; err != nil {
			got = err.Error()
			if got != c.want {
				t.Errorf("CheckAccount(%q, %v) = %q, want %q", c.account, c.req, got, c.want)
			}
		} else if c.want != "" {
			t.Errorf("CheckAccount(%q, %v) = nil, want %q", c.account, c.req, c.want)
		}
	}
}

func TestDefaults(t *testing.T) {
	if _, _, err := Defaults("kind", "acc", nil, nil, nil); err == nil || err.Error() != `kind account "acc": no HTTP client` {
		t.Fatalf("nil client: %v", err)
	}
	now, log, err := Defaults("kind", "acc", &HTTPClient{}, nil, nil)
	if err != nil || now == nil || log == nil {
		t.Fatalf("Defaults: now set %v, logger set %v, err %v", now != nil, log != nil, err)
	}
	fixed := time.Unix(1, 0)
	now, _, _ = Defaults("kind", "acc", &HTTPClient{}, func() time.Time { return fixed }, nil)
	if !now().Equal(fixed) {
		t.Fatal("Defaults replaced a given now")
	}
}
