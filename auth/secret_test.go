package auth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestSecretNeverPrints(t *testing.T) {
	const value = "s3cr3t-V4lue"
	s := Secret(value)
	tok := &Token{
		Access:  s,
		Refresh: s,
		Expiry:  time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Aux:     map[string]Secret{"md": s},
		Meta:    map[string]string{"client": "GO11240"},
	}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%s", "%d", "%q", "%x", "%X", "%#v", "%10.3s", "%T"} {
		outs = append(outs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, tok), fmt.Sprintf(verb, *tok))
	}
	outs = append(outs, fmt.Sprint(s), fmt.Sprintln(s, tok), s.String(), s.GoString(), fmt.Sprint([]Secret{s}))
	for _, o := range outs {
		if strings.Contains(o, value) || strings.Contains(o, fmt.Sprintf("%x", value)) {
			t.Errorf("formatted output leaks the secret: %q", o)
		}
	}
	if got := fmt.Sprintf("%s|%q|%d", s, s, s); got != "REDACTED|REDACTED|REDACTED" {
		t.Errorf("got %q", got)
	}

	for name, h := range map[string]func(*bytes.Buffer) slog.Handler{
		"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		"json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var buf bytes.Buffer
		l := slog.New(h(&buf))
		l.Info("msg", "secret", s, "token", tok, "any", any(s), slog.Any("aux", tok.Aux), slog.Group("g", "s", s))
		l.With("w", s).Info("with")
		if strings.Contains(buf.String(), value) {
			t.Errorf("slog %s handler leaks the secret: %s", name, buf.String())
		}
		if !strings.Contains(buf.String(), Redacted) {
			t.Errorf("slog %s handler output lacks %s: %s", name, Redacted, buf.String())
		}
	}

	for _, v := range []any{s, tok, *tok, map[string]Secret{"k": s}, struct{ S Secret }{s}} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), value) {
			t.Errorf("json.Marshal leaks the secret: %s", b)
		}
	}
	if s.Reveal() != value {
		t.Error("Reveal lost the value")
	}
}
