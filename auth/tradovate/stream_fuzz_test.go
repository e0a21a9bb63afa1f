package tradovate

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fuzzGen draws choices from the fuzz input; an exhausted input draws 0.
type fuzzGen struct{ b []byte }

func (g *fuzzGen) byte() byte {
	if len(g.b) == 0 {
		return 0
	}
	c := g.b[0]
	g.b = g.b[1:]
	return c
}

func (g *fuzzGen) intn(n int) int { return int(g.byte()) % n }

func (g *fuzzGen) pick(list []int) int { return list[g.intn(len(list))] }

// payloadSizes straddle the 7/16/64-bit length encodings.
var payloadSizes = []int{0, 1, 2, 3, 7, 12, 30, 124, 125, 126, 127, 200, 1000, 0xffff, 0x10000, 70000}

// genFrame is one input frame with what the model needs to know about it.
type genFrame struct {
	wsFrame
	raw []byte
}

// generate builds a client→broker frame sequence from g: messages of every
// kind, fragmented, with control frames (and now and then a close or a new
// message) inside fragmented ones, masked or not, with random keys.
func generate(g *fuzzGen) []genFrame {
	var frames []genFrame
	large := 0 // payloads over 1000 bytes, kept few for speed
	size := func() int {
		n := g.pick(payloadSizes)
		if n > 1000 {
			if large >= 2 {
				return n % 97
			}
			large++
		}
		return n
	}
	fill := func(n int) []byte {
		b := make([]byte, n)
		seed := g.byte()
		for i := range b {
			b[i] = seed + byte(i*7)
		}
		return b
	}
	frame := func(op byte, fin bool, payload []byte) genFrame {
		f := wsFrame{op: op, fin: fin, payload: payload, masked: g.intn(8) != 7}
		if f.masked {
			f.key = [4]byte{g.byte(), g.byte(), g.byte(), g.byte()}
		}
		switch g.intn(16) {
		case 0:
			f.lenBytes = 2 // non-minimal (or too short: then minimal wins)
		case 1:
			f.lenBytes = 8
		}
		if f.lenBytes == 2 && len(payload) > 0xffff {
			f.lenBytes = 8
		}
		return genFrame{wsFrame: f, raw: f.encode()}
	}
	controlFrame := func() genFrame {
		ops := []byte{0x9, 0xA, 0x9, 0xA, opClose, 0xB, 0xF}
		n := g.intn(126)
		if g.intn(32) == 0 {
			n = 126 + g.intn(200) // oversized control frame: a protocol error, still relayed
		}
		return frame(ops[g.intn(len(ops))], g.intn(16) != 0, fill(n))
	}
	nFrames := 1 + g.intn(48)
	for len(frames) < nFrames && len(g.b) > 0 {
		var op byte
		var payload []byte
		var rsv byte
		switch g.intn(10) {
		case 0, 1, 2: // authorize, in its variants
			tok := string(fill(g.pick([]int{0, 3, 40, 120, 300, 60000})))
			tok = strings.Map(func(r rune) rune { return 'a' + r%26 }, tok)
			id := []string{"1", "2", "", "99"}[g.intn(4)]
			msg := []string{"authorize", "AUTHORIZE", "authorise", "author"}[g.intn(4)] + "\n" + id + "\n\n" + tok
			if g.intn(4) == 0 {
				msg = `"` + strings.ReplaceAll(msg, "\n", `\n`) + `"`
			}
			op, payload = opText, []byte(msg)
			if g.intn(8) == 0 {
				rsv = 0x40 // compressed
			}
		case 3, 4:
			op, payload = opText, fill(size())
			if g.intn(2) == 0 {
				payload = append([]byte("authorize\n"), payload...) // starts like one
			}
		case 5:
			op, payload = 0x2, fill(size())
		case 6, 7:
			frames = append(frames, controlFrame())
			continue
		case 8:
			f := frame(opContinuation, g.intn(2) == 0, fill(size())) // orphan
			frames = append(frames, f)
			continue
		default:
			op, payload = byte(3+g.intn(5)), fill(g.intn(50)) // reserved data opcode
		}
		// Fragment the message; control frames may sit between fragments.
		parts := 1 + g.intn(4)
		for i := 0; i < parts; i++ {
			cut := len(payload)
			if i < parts-1 && len(payload) > 0 {
				cut = g.intn(len(payload) + 1)
			}
			fop := byte(opContinuation)
			if i == 0 {
				fop = op
			}
			f := frame(fop, i == parts-1, payload[:cut])
			if i == 0 {
				f.rsv = rsv
				f.raw = f.encode()
			}
			frames = append(frames, f)
			payload = payload[cut:]
			if i < parts-1 {
				for range g.intn(3) {
					frames = append(frames, controlFrame())
				}
				if g.intn(32) == 0 {
					frames = append(frames, frame(opText, true, []byte("[]"))) // interrupts: a protocol error
				}
			}
		}
	}
	return frames
}

// segment is a piece of the expected output: raw bytes, or the rewritten
// authorize frame, whose masking key is not known in advance.
type segment struct {
	raw       []byte
	rewritten []byte // the expected unmasked payload, when raw is nil
	masked    bool
}

// expect is the model: the first text message (RSV bits clear) that
// completes, spans at most maxHeld bytes and maxHeldControl control frames
// with no close or new message inside, and is an authorize request is
// replaced by its interleaved control frames followed by one rewritten
// frame; every other byte is relayed as it came.
func expect(frames []genFrame, token string) []segment {
	var out []segment
	done := false
	for i := 0; i < len(frames); i++ {
		f := frames[i]
		if done || f.op != opText || f.rsv != 0 {
			out = append(out, segment{raw: f.raw})
			continue
		}
		var (
			span, ctl int
			payload   []byte
			ctlFrames [][]byte
			end       = -1
		)
	scan:
		for j := i; j < len(frames); j++ {
			g := frames[j]
			switch {
			case j > i && g.op >= opClose && (g.op == opClose || ctl >= maxHeldControl):
				break scan
			case j > i && g.op != opContinuation && g.op < opClose:
				break scan
			}
			span += len(g.raw)
			if span > maxHeld {
				break
			}
			if g.op >= opClose {
				ctl++
				ctlFrames = append(ctlFrames, g.raw)
				continue
			}
			payload = append(payload, g.payload...)
			if g.fin {
				end = j
				break
			}
		}
		msg, ok := rewriteAuthorize(payload, token)
		if end < 0 || !ok {
			out = append(out, segment{raw: f.raw})
			continue
		}
		for _, c := range ctlFrames {
			out = append(out, segment{raw: c})
		}
		out = append(out, segment{rewritten: msg, masked: f.masked})
		i = end
		done = true
	}
	return out
}

// FuzzRelay: a random frame sequence written to the relay in random chunks
// comes out identical, byte for byte, except the first complete authorize
// message, which becomes one minimally encoded text frame (masked like the
// original) carrying the new token, after the control frames that were
// interleaved with it. Seeds in testdata/fuzz/FuzzRelay.
func FuzzRelay(f *testing.F) {
	f.Add([]byte{0, 0, 1, 2, 3, 4, 5, 6, 7, 8}, uint8(1))
	f.Add([]byte("\x05\x00\x02\x03\x01\x07\x00\x09\x02\x01\x03\x04\x05\x06\x02\x01\x00"), uint8(2))
	f.Add(bytes.Repeat([]byte{0x0d, 0x03, 0x06, 0x01}, 30), uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, tokenKind uint8) {
		g := &fuzzGen{b: data}
		frames := generate(g)
		var in []byte
		for _, fr := range frames {
			in = append(in, fr.raw...)
		}
		token := "T0k." + strings.Repeat("x", []int{0, 20, 130, 70000}[tokenKind%4])

		var dst bytes.Buffer
		w := newRelay(&dst, token)
		chunks := []int{1, 2, 3, 7, 13, 100, 1000, 40000}
		if len(in) > 16<<10 {
			chunks = chunks[3:] // byte-sized writes of large inputs only cost time
		}
		for rest := in; len(rest) > 0; {
			n := min(len(rest), g.pick(chunks))
			if m, err := w.Write(rest[:n]); err != nil || m != n {
				t.Fatalf("Write(%d) = %d, %v", n, m, err)
			}
			rest = rest[n:]
		}
		out := dst.Bytes()

		want := expect(frames, token)
		rewrote := false
		for i, s := range want {
			if s.raw != nil {
				if !bytes.HasPrefix(out, s.raw) {
					t.Fatalf("segment %d of %d: relayed bytes differ from the input", i, len(want))
				}
				out = out[len(s.raw):]
				continue
			}
			rewrote = true
			p, n, err := parseFrame(out)
			if err != nil {
				t.Fatalf("rewritten frame: %v", err)
			}
			if p.op != opText || !p.fin || p.rsv != 0 || p.masked != s.masked || !p.minimal || !bytes.Equal(p.payload, s.rewritten) {
				t.Fatalf("rewritten frame op=%d fin=%v rsv=%x masked=%v (want %v) minimal=%v, payload ok=%v",
					p.op, p.fin, p.rsv, p.masked, s.masked, p.minimal, bytes.Equal(p.payload, s.rewritten))
			}
			out = out[n:]
		}
		if len(out) != 0 {
			t.Fatalf("%d bytes more than expected", len(out))
		}
		if !rewrote && !bytes.Equal(dst.Bytes(), in) {
			t.Fatal("no authorize message, yet the bytes changed")
		}
	})
}

// TestFuzzRelaySeeds keeps the seed corpus meaningful: the seeds meant to
// carry an authorize message still make the model expect a rewrite, and the
// others still hold what their names say.
func TestFuzzRelaySeeds(t *testing.T) {
	rewrites := map[string]bool{
		"single_authorize": true, "json_wrapped": true, "unmasked_authorize": true,
		"fragmented_with_controls": true, "fragmented_with_controls_long_token": true,
		"mixed_masking_fragments": true, "compressed_then_plain": true, "many_fragments": true,
		"authorize_then_more": true, "several_messages": true,
		"compressed_authorize": false, "close_mid_message": false, "large_payloads": false, "large_fragmented": false,
	}
	for name, want := range rewrites {
		raw, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzRelay", name))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(raw), "\n")
		data, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		frames := generate(&fuzzGen{b: []byte(data)})
		got := false
		var ctl, big, rsv, closes int
		for _, s := range expect(frames, "tok") {
			got = got || s.raw == nil
		}
		for _, f := range frames {
			switch {
			case f.op == opClose:
				closes++
			case f.op > opClose:
				ctl++
			}
			if len(f.payload) > 0xffff {
				big++
			}
			if f.rsv != 0 {
				rsv++
			}
		}
		if got != want {
			t.Errorf("%s: rewrite expected = %v, want %v", name, got, want)
		}
		switch {
		case strings.HasPrefix(name, "fragmented_with_controls") && ctl == 0,
			strings.HasPrefix(name, "compressed") && rsv == 0,
			name == "close_mid_message" && closes == 0,
			strings.HasPrefix(name, "large") && big == 0:
			t.Errorf("%s no longer generates what its name says", name)
		}
	}
}
