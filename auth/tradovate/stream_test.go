package tradovate

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/authproxy/authproxy/auth"
)

// wsFrame is one frame a test sends.
type wsFrame struct {
	op      byte
	fin     bool
	rsv     byte // RSV bits, already shifted (0x40 is RSV1)
	masked  bool
	key     [4]byte
	payload []byte
	// lenBytes forces the length encoding: 0 minimal, 2 16-bit, 8 64-bit.
	lenBytes int
}

// encode returns f's wire bytes.
func (f wsFrame) encode() []byte {
	b0 := f.op | f.rsv
	if f.fin {
		b0 |= finBit
	}
	var mb byte
	if f.masked {
		mb = maskBit
	}
	out := []byte{b0}
	n := len(f.payload)
	switch {
	case f.lenBytes == 8 || (f.lenBytes == 0 && n > 0xffff):
		out = append(out, mb|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	case f.lenBytes == 2 || (f.lenBytes == 0 && n > 125):
		out = append(out, mb|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, mb|byte(n))
	}
	if f.masked {
		out = append(out, f.key[:]...)
	}
	start := len(out)
	out = append(out, f.payload...)
	if f.masked {
		for i := range f.payload {
			out[start+i] ^= f.key[i&3]
		}
	}
	return out
}

// parsed is one frame read back from the relay's output.
type parsed struct {
	op      byte
	fin     bool
	rsv     byte
	masked  bool
	minimal bool // the length has its shortest encoding
	payload []byte
	raw     []byte
}

// parseFrame reads one frame from the start of b.
func parseFrame(b []byte) (parsed, int, error) {
	if len(b) < 2 {
		return parsed{}, 0, errors.New("short header")
	}
	f := parsed{op: b[0] & 0x0f, fin: b[0]&finBit != 0, rsv: b[0] & rsvBits, masked: b[1]&maskBit != 0}
	n := 2
	var length uint64
	switch l := b[1] & 0x7f; l {
	case 126:
		if len(b) < 4 {
			return parsed{}, 0, errors.New("short 16-bit length")
		}
		length = uint64(binary.BigEndian.Uint16(b[2:4]))
		f.minimal = length > 125
		n += 2
	case 127:
		if len(b) < 10 {
			return parsed{}, 0, errors.New("short 64-bit length")
		}
		length = binary.BigEndian.Uint64(b[2:10])
		f.minimal = length > 0xffff
		n += 8
	default:
		length = uint64(l)
		f.minimal = true
	}
	var key []byte
	if f.masked {
		if len(b) < n+4 {
			return parsed{}, 0, errors.New("short mask")
		}
		key = b[n : n+4]
		n += 4
	}
	if uint64(len(b)-n) < length {
		return parsed{}, 0, fmt.Errorf("payload: want %d bytes, have %d", length, len(b)-n)
	}
	f.payload = bytes.Clone(b[n : n+int(length)])
	for i := range f.payload {
		if key != nil {
			f.payload[i] ^= key[i&3]
		}
	}
	f.raw = b[:n+int(length)]
	return f, n + int(length), nil
}

func parseAll(t *testing.T, b []byte) []parsed {
	t.Helper()
	var out []parsed
	for len(b) > 0 {
		f, n, err := parseFrame(b)
		if err != nil {
			t.Fatalf("output frame %d: %v", len(out), err)
		}
		out = append(out, f)
		b = b[n:]
	}
	return out
}

func text(payload string, fin bool) wsFrame {
	return wsFrame{op: opText, fin: fin, masked: true, key: [4]byte{0x37, 0xfa, 0x21, 0x3d}, payload: []byte(payload)}
}

func cont(payload string, fin bool) wsFrame {
	return wsFrame{op: opContinuation, fin: fin, masked: true, key: [4]byte{1, 2, 3, 4}, payload: []byte(payload)}
}

func control(op byte, payload string) wsFrame {
	return wsFrame{op: op, fin: true, masked: true, key: [4]byte{9, 8, 7, 6}, payload: []byte(payload)}
}

func join(frames ...wsFrame) []byte {
	var b []byte
	for _, f := range frames {
		b = append(b, f.encode()...)
	}
	return b
}

// run feeds in to a relay for token in chunks of size chunk (0: one write)
// and returns what reached the broker.
func run(t *testing.T, token string, in []byte, chunk int) []byte {
	t.Helper()
	var dst bytes.Buffer
	w := newRelay(&dst, token)
	if chunk <= 0 {
		chunk = len(in) + 1
	}
	for len(in) > 0 {
		n := min(chunk, len(in))
		m, err := w.Write(in[:n])
		if err != nil || m != n {
			t.Fatalf("Write(%d bytes) = %d, %v", n, m, err)
		}
		in = in[n:]
	}
	return dst.Bytes()
}

// chunkings are the write sizes every framing test is run with.
var chunkings = []int{0, 1, 2, 3, 5, 13, 64}

const realToken = "REAL.access-token.0123456789"

func TestRelayRewritesAuthorize(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"dummy token", "authorize\n2\n\nplaceholder", "authorize\n2\n\n" + realToken},
		{"empty token", "authorize\n2\n\n", "authorize\n2\n\n" + realToken},
		{"no token line", "authorize\n7", "authorize\n7\n\n" + realToken},
		{"query kept", "authorize\n3\nq=1\nold", "authorize\n3\nq=1\n" + realToken},
		{"token with newlines", "authorize\n4\n\nold\nmore", "authorize\n4\n\n" + realToken},
		{"endpoint case", "Authorize\n5\n\nx", "Authorize\n5\n\n" + realToken},
		{"json wrapped", `"authorize\n6\n\nold"`, `"authorize\n6\n\n` + realToken + `"`},
	} {
		for _, chunk := range chunkings {
			t.Run(fmt.Sprintf("%s/chunk%d", tc.name, chunk), func(t *testing.T) {
				out := parseAll(t, run(t, realToken, text(tc.in, true).encode(), chunk))
				if len(out) != 1 {
					t.Fatalf("got %d frames, want 1", len(out))
				}
				f := out[0]
				if f.op != opText || !f.fin || f.rsv != 0 || !f.masked || !f.minimal || string(f.payload) != tc.want {
					t.Fatalf("got frame op=%d fin=%v rsv=%x masked=%v minimal=%v payload %q; want %q",
						f.op, f.fin, f.rsv, f.masked, f.minimal, f.payload, tc.want)
				}
			})
		}
	}
}

func TestRelayLengthBoundaries(t *testing.T) {
	// Original and rewritten payloads on both sides of the 125/126 and
	// 65535/65536 boundaries: the length encoding must follow the new size.
	prefix := "authorize\n1\n\n"
	for _, tc := range []struct {
		name          string
		oldTok, token int // lengths
	}{
		{"7-bit to 7-bit", 3, 100},
		{"7-bit to 16-bit", 3, 126 - len(prefix)},
		{"7-bit at 125", 1, 125 - len(prefix)},
		{"16-bit to 7-bit", 500, 10},
		{"16-bit at 65535", 10, 0xffff - len(prefix)},
		{"7-bit to 64-bit", 5, 0x10000 - len(prefix)},
		{"16-bit to 64-bit", 60000, 70000},
		{"64-bit encoded to 7-bit", 2, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			token := strings.Repeat("T", tc.token)
			f := text(prefix+strings.Repeat("o", tc.oldTok), true)
			if tc.name == "64-bit encoded to 7-bit" {
				f.lenBytes = 8
			}
			for _, chunk := range []int{0, 1, 1000} {
				out := parseAll(t, run(t, token, f.encode(), chunk))
				if len(out) != 1 || !out[0].minimal || !out[0].masked || string(out[0].payload) != prefix+token {
					t.Fatalf("chunk %d: bad rewrite (%d frames)", chunk, len(out))
				}
			}
		})
	}
}

func TestRelayFragmentedAuthorize(t *testing.T) {
	ping := control(0x9, "p1")
	pong := control(0xA, "")
	in := join(
		text("auth", false), // the prefix itself is split
		ping,
		cont("orize\n9\n", false),
		pong,
		cont("", false),
		cont("\nold-tok", true),
		text("[]", true),
	)
	for _, chunk := range chunkings {
		out := run(t, realToken, in, chunk)
		fs := parseAll(t, out)
		if len(fs) != 4 {
			t.Fatalf("chunk %d: %d frames, want ping, pong, authorize, heartbeat", chunk, len(fs))
		}
		if !bytes.Equal(fs[0].raw, ping.encode()) || !bytes.Equal(fs[1].raw, pong.encode()) {
			t.Errorf("chunk %d: control frames changed", chunk)
		}
		if fs[2].op != opText || !fs[2].fin || string(fs[2].payload) != "authorize\n9\n\n"+realToken {
			t.Errorf("chunk %d: authorize frame %+v", chunk, fs[2])
		}
		if !bytes.Equal(fs[3].raw, text("[]", true).encode()) {
			t.Errorf("chunk %d: later frame changed", chunk)
		}
	}
}

// TestRelayUntouched: everything that is not a complete, readable
// authorize message leaves byte for byte.
func TestRelayUntouched(t *testing.T) {
	big := strings.Repeat("x", maxHeld)
	compressed := text("authorize\n1\n\nold", true)
	compressed.rsv = 0x40
	unfinished := text("authorize\n1\n\nold", false)
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"heartbeat and binary", join(text("[]", true), wsFrame{op: 0x2, fin: true, masked: true, payload: []byte("authorize\n1\n\nx")})},
		{"other requests", join(text("md/subscribeQuote\n3\n\n{}", true), text("author\n1\n\nx", true), text("", true))},
		{"compressed authorize", compressed.encode()},
		{"closed mid-message", join(unfinished, control(opClose, "\x03\xe8bye"), cont("more", true))},
		{"new message mid-message", join(unfinished, text("[]", true))},
		{"oversized authorize", join(text("authorize\n1\n\n"+big, true))},
		{"oversized by fragments", join(text("authorize\n1\n\n", false), cont(big[:maxHeld/2], false), cont(big[:maxHeld/2], true))},
		{"orphan continuation", join(cont("authorize\n1\n\nx", true))},
		{"json that is not a string", join(text(`"authorize\n1\n\nx`, true))},
		{"too many control frames", func() []byte {
			b := text("authorize\n1\n", false).encode()
			for range maxHeldControl + 1 {
				b = append(b, control(0x9, "").encode()...)
			}
			return append(b, cont("\nx", true).encode()...)
		}()},
		{"reserved opcodes", join(wsFrame{op: 0x3, fin: true, payload: []byte("authorize\n1\n\nx")}, control(0xB, "z"))},
		{"non-minimal lengths", join(wsFrame{op: 0x2, fin: true, masked: true, payload: []byte("ab"), lenBytes: 8},
			wsFrame{op: 0x9, fin: true, payload: []byte("p"), lenBytes: 2})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, chunk := range chunkings {
				if out := run(t, realToken, tc.in, chunk); !bytes.Equal(out, tc.in) {
					t.Fatalf("chunk %d: bytes changed (%d in, %d out)", chunk, len(tc.in), len(out))
				}
			}
		})
	}
}

func TestRelayUnmaskedAuthorize(t *testing.T) {
	f := text("authorize\n1\n\nold", true)
	f.masked = false
	out := parseAll(t, run(t, realToken, f.encode(), 0))
	if len(out) != 1 || out[0].masked || string(out[0].payload) != "authorize\n1\n\n"+realToken {
		t.Fatalf("got %+v", out)
	}
}

// TestRelayPassThroughAfterAuthorize: once the authorize message has been
// rewritten nothing else is parsed or changed, a second authorize included.
func TestRelayPassThroughAfterAuthorize(t *testing.T) {
	first := text("authorize\n1\n\nold", true).encode()
	rest := join(text("authorize\n2\n\nsecond", true), wsFrame{op: 0x2, fin: true, masked: true, payload: bytes.Repeat([]byte{0xff}, 70000)})
	rest = append(rest, 0x81, 0xff, 0x00) // not even a complete frame
	for _, chunk := range chunkings {
		out := run(t, realToken, append(bytes.Clone(first), rest...), chunk)
		f, n, err := parseFrame(out)
		if err != nil || string(f.payload) != "authorize\n1\n\n"+realToken {
			t.Fatalf("chunk %d: first frame %q %v", chunk, f.payload, err)
		}
		if !bytes.Equal(out[n:], rest) {
			t.Fatalf("chunk %d: bytes after the authorize frame changed", chunk)
		}
	}
	var dst bytes.Buffer
	w := newRelay(&dst, realToken)
	if _, err := w.Write(first); err != nil || !w.pass || w.held != nil || w.out != nil {
		t.Fatalf("after authorize: pass=%v held=%d out=%d err=%v", w.pass, len(w.held), len(w.out), err)
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	f.n++
	return 0, errors.New("broken pipe")
}

func TestRelayWriteError(t *testing.T) {
	fw := &failWriter{}
	w := newRelay(fw, realToken)
	if n, err := w.Write(text("[]", true).encode()); err == nil || n != 0 {
		t.Fatalf("Write = %d, %v; want the broker's error", n, err)
	}
	if _, err := w.Write([]byte{0x81}); err == nil || fw.n != 1 {
		t.Fatalf("a write after an error reached the broker (%d calls) or succeeded (%v)", fw.n, err)
	}
	// Held bytes are not written, so no error yet; the error comes with
	// the first write that reaches the broker.
	fw2 := &failWriter{}
	w2 := newRelay(fw2, realToken)
	if n, err := w2.Write(text("authorize\n1\n", false).encode()); err != nil || n == 0 || fw2.n != 0 {
		t.Fatalf("held write = %d, %v (%d broker writes)", n, err, fw2.n)
	}
}

func TestStreamToken(t *testing.T) {
	withMD := &auth.Token{Access: "acc", Aux: map[string]auth.Secret{AuxMD: "mdtok"}}
	noMD := &auth.Token{Access: "acc"}
	for _, tc := range []struct {
		host string
		tok  *auth.Token
		want string
	}{
		{"demo.tradovateapi.com", withMD, "acc"},
		{"live.tradovateapi.com", withMD, "acc"},
		{"md.tradovateapi.com", withMD, "mdtok"},
		{"MD.tradovateapi.com:443", withMD, "mdtok"},
		{"md-demo.tradovateapi.com", withMD, "mdtok"},
		{"md.tradovateapi.com", noMD, "acc"},
		{"replay.tradovateapi.com", withMD, "acc"},
		{"demo.tradovateapi.com", nil, ""},
	} {
		if got := streamToken(tc.host, tc.tok); got != tc.want {
			t.Errorf("streamToken(%q) = %q, want %q", tc.host, got, tc.want)
		}
	}
}

func TestRewriteStreamBrokers(t *testing.T) {
	tok := &auth.Token{Access: "acc", Aux: map[string]auth.Secret{AuxMD: "mdtok"}}
	in := text("authorize\n1\n\nx", true).encode()
	for name, sr := range map[string]auth.StreamRewriter{"credentials": &Broker{}, "oauth": &OAuthBroker{}} {
		for host, want := range map[string]string{"demo.tradovateapi.com": "acc", "md.tradovateapi.com": "mdtok"} {
			var dst bytes.Buffer
			w := sr.RewriteStream(host, tok, &dst)
			if _, err := w.Write(in); err != nil {
				t.Fatal(err)
			}
			f, _, err := parseFrame(dst.Bytes())
			if err != nil || string(f.payload) != "authorize\n1\n\n"+want {
				t.Errorf("%s on %s: %q %v", name, host, f.payload, err)
			}
		}
		// No token: the bytes go straight to the broker.
		var dst bytes.Buffer
		if w := sr.RewriteStream("demo.tradovateapi.com", &auth.Token{}, &dst); w != io.Writer(&dst) {
			t.Errorf("%s: a writer was wrapped without a token", name)
		}
	}
}

func TestPrepareUpgrade(t *testing.T) {
	up, _ := http.NewRequest(http.MethodGet, "https://demo.tradovateapi.com/v1/websocket", nil)
	up.Header.Set("Connection", "Upgrade")
	up.Header.Set("Upgrade", "WebSocket")
	up.Header.Set("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")
	up.Header["sec-websocket-extensions"] = []string{"x-webkit-deflate-frame"}
	up.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	prepareUpgrade(up)
	for k := range up.Header {
		if strings.EqualFold(k, "Sec-WebSocket-Extensions") {
			t.Errorf("upgrade request still has %s", k)
		}
	}
	if up.Header.Get("Sec-WebSocket-Key") == "" {
		t.Error("other upgrade headers were removed")
	}
	plain, _ := http.NewRequest(http.MethodGet, "https://demo.tradovateapi.com/v1/account/list", nil)
	plain.Header.Set("Sec-WebSocket-Extensions", "kept")
	prepareUpgrade(plain)
	if plain.Header.Get("Sec-WebSocket-Extensions") != "kept" {
		t.Error("a request that is not an upgrade was changed")
	}
}

func TestAuthorizePrefix(t *testing.T) {
	for in, want := range map[string]prefixMatch{
		"":               prefixMaybe,
		"a":              prefixMaybe,
		"AUTHORIZE":      prefixMaybe,
		"authorize\n":    prefixYes,
		"authorize\nxyz": prefixYes,
		`"authorize\n1`:  prefixYes,
		`"auth`:          prefixMaybe,
		"authorized\n":   prefixNo,
		"[]":             prefixNo,
		" authorize\n":   prefixNo,
	} {
		if got := authorizePrefix([]byte(in)); got != want {
			t.Errorf("authorizePrefix(%q) = %d, want %d", in, got, want)
		}
	}
}

func BenchmarkRelayPassThrough(b *testing.B) {
	frame := wsFrame{op: 0x2, fin: true, masked: true, payload: make([]byte, 4096)}.encode()
	w := newRelay(io.Discard, realToken)
	if _, err := w.Write(text("authorize\n1\n\nx", true).encode()); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		_, _ = w.Write(frame)
	}
}

func BenchmarkRelayParsing(b *testing.B) {
	frame := wsFrame{op: 0x2, fin: true, masked: true, payload: make([]byte, 4096)}.encode()
	w := newRelay(io.Discard, realToken)
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		_, _ = w.Write(frame)
	}
}

// TestInjectUpgrade: Inject on an upgrade request sets the bearer (the md
// token on md hosts) and removes the compression offer.
func TestInjectUpgrade(t *testing.T) {
	tok := &auth.Token{Access: "acc", Aux: map[string]auth.Secret{AuxMD: "mdtok"}}
	for name, b := range map[string]auth.Broker{"credentials": &Broker{}, "oauth": &OAuthBroker{}} {
		for host, want := range map[string]string{"live.tradovateapi.com": "acc", "md.tradovateapi.com": "mdtok"} {
			r, _ := http.NewRequest(http.MethodGet, "https://"+host+"/v1/websocket", nil)
			r.Header.Set("Upgrade", "websocket")
			r.Header.Set("Connection", "Upgrade")
			r.Header.Set("Sec-WebSocket-Extensions", "permessage-deflate")
			if err := b.Inject(r, tok); err != nil {
				t.Fatal(err)
			}
			if r.Header.Get("Authorization") != "Bearer "+want || r.Header.Get("Sec-WebSocket-Extensions") != "" {
				t.Errorf("%s on %s: headers %v", name, host, r.Header)
			}
		}
	}
}
