package tradovate

// WebSocket authentication (brokers.md §2, "WebSocket authentication").
//
// Tradovate authenticates a socket in-band: after the server's "o" frame
// the client sends the text message "authorize\n<id>\n\n<token>". The proxy
// lets the client send its own authorize message, with any token or none,
// and replaces the token on the way: RewriteStream wraps the client→broker
// byte stream of an upgraded connection in a relay that parses RFC 6455
// frames until the first authorize message has been rewritten, and from
// then on copies bytes straight through. Broker→client bytes are never
// touched.
//
// The relay works on arbitrary write chunks (a frame split across writes,
// several frames in one write) and holds bytes only while it reads a text
// message that may be the authorize request: at most maxHeld bytes from the
// message's first byte to its last, interleaved control frames included.
// Anything else passes through as it arrives, byte for byte.
//
// Compression: a permessage-deflate frame (RSV1 set) cannot be read, and
// replacing one compressed message would break the client's compression
// context for the messages after it. Inject therefore removes
// Sec-WebSocket-Extensions from Tradovate upgrade requests (prepareUpgrade),
// so compression is never negotiated; a compressed text message that still
// arrives is relayed untouched.

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/authproxy/authproxy/auth"
)

// Interface guards.
var (
	_ auth.StreamRewriter = (*Broker)(nil)
	_ auth.StreamRewriter = (*OAuthBroker)(nil)
)

const (
	// maxHeld bounds the bytes held while a possible authorize message is
	// reassembled: all of its frames and the control frames interleaved
	// with them. A longer message is relayed untouched.
	maxHeld = 64 << 10
	// maxHeldControl bounds the control frames held inside one such
	// message; more make it relayed untouched.
	maxHeldControl = 64
	// maxHeader is the longest frame header: 2 bytes, a 64-bit extended
	// length and a masking key.
	maxHeader = 2 + 8 + 4
)

// Frame opcodes and header bits (RFC 6455 §5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opClose        = 0x8
	finBit         = 0x80
	rsvBits        = 0x70
	maskBit        = 0x80
)

// RewriteStream implements auth.StreamRewriter: the token of the client's
// first authorize message on the socket to host is replaced by t's (the
// mdAccessToken on market-data hosts when t has one, the access token
// everywhere else). Every other byte reaches toBroker unchanged.
func (b *Broker) RewriteStream(host string, t *auth.Token, toBroker io.Writer) io.Writer {
	return rewriteStream(host, t, toBroker)
}

// RewriteStream implements auth.StreamRewriter; see [Broker.RewriteStream].
func (b *OAuthBroker) RewriteStream(host string, t *auth.Token, toBroker io.Writer) io.Writer {
	return rewriteStream(host, t, toBroker)
}

func rewriteStream(host string, t *auth.Token, toBroker io.Writer) io.Writer {
	tok := streamToken(host, t)
	if tok == "" {
		return toBroker
	}
	return newRelay(toBroker, tok)
}

// streamToken is the token an authorize message to host must carry.
func streamToken(host string, t *auth.Token) string {
	if t == nil {
		return ""
	}
	if md := t.Aux[AuxMD]; md != "" && IsMDHost(host) {
		return md.Reveal()
	}
	return t.Access.Reveal()
}

// prepareUpgrade removes every Sec-WebSocket-Extensions header from a
// WebSocket upgrade request, so that permessage-deflate is never negotiated
// and the authorize frame stays readable. Other requests are left alone.
func prepareUpgrade(r *http.Request) {
	if r == nil || r.Header == nil || !isWebSocketUpgrade(r.Header) {
		return
	}
	for k := range r.Header {
		if strings.EqualFold(k, "Sec-WebSocket-Extensions") {
			delete(r.Header, k)
		}
	}
}

// isWebSocketUpgrade reports whether h asks to switch to WebSocket.
func isWebSocketUpgrade(h http.Header) bool {
	for _, v := range h.Values("Upgrade") {
		for _, p := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(p), "websocket") {
				return true
			}
		}
	}
	return false
}

// payloadMode says what happens to the payload of the frame being read.
type payloadMode uint8

const (
	modeStream   payloadMode = iota // forwarded as it arrives
	modeHoldData                    // a fragment of the candidate message: held and unmasked
	modeHoldCtl                     // a control frame inside the candidate message: held
)

// relay is the client→broker writer of one Tradovate socket. It is not
// safe for concurrent use; ReverseProxy writes from one goroutine.
type relay struct {
	dst   io.Writer
	token string
	pass  bool  // the authorize message was rewritten: plain copy from now on
	err   error // the first write error of dst, returned ever after
	out   []byte

	// The frame being read.
	hdr    [maxHeader]byte
	hdrN   int
	inBody bool // header complete, payload bytes pending
	fin    bool // the FIN bit
	mode   payloadMode
	masked bool
	key    [4]byte
	pos    uint64 // payload bytes of this frame read so far
	left   uint64 // payload bytes of this frame still to come

	// The candidate: a text message, not yet complete, that may be the
	// authorize request. Its frames and the control frames between them
	// are held in order until it is complete or known to be something
	// else.
	cand        bool
	candMasked  bool     // its first frame was masked
	held        []byte   // raw bytes, as received
	ctlSpans    [][2]int // control frames within held
	payload     []byte   // the message's unmasked payload so far
	prefixKnown bool     // payload starts like an authorize request
}

func newRelay(dst io.Writer, token string) *relay {
	return &relay{dst: dst, token: token}
}

// Write implements io.Writer. It returns len(p) once every byte of p has
// been forwarded or is held for the candidate message.
func (r *relay) Write(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.pass {
		n, err := r.dst.Write(p)
		if err != nil {
			r.err = err
		}
		return n, err
	}
	total := len(p)
	r.out = r.out[:0]
	for len(p) > 0 && !r.pass {
		if r.inBody {
			p = r.readPayload(p)
		} else {
			p = r.readHeader(p)
		}
	}
	if r.pass {
		r.out = append(r.out, p...)
	}
	if len(r.out) > 0 {
		if _, err := r.dst.Write(r.out); err != nil {
			r.err = err
			return 0, err
		}
	}
	if r.pass {
		// Nothing is parsed any more: let the buffers go.
		r.out, r.held, r.payload, r.ctlSpans = nil, nil, nil, nil
	}
	return total, nil
}

// headerLen is the length of the header that starts with b0, b1.
func headerLen(b1 byte) int {
	n := 2
	switch b1 & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&maskBit != 0 {
		n += 4
	}
	return n
}

// readHeader consumes header bytes of the next frame from p and starts the
// frame once its header is complete.
func (r *relay) readHeader(p []byte) []byte {
	need := 2
	if r.hdrN >= 2 {
		need = headerLen(r.hdr[1])
	}
	for r.hdrN < need && len(p) > 0 {
		r.hdr[r.hdrN] = p[0]
		r.hdrN++
		p = p[1:]
		if r.hdrN == 2 {
			need = headerLen(r.hdr[1])
		}
	}
	if r.hdrN == need {
		r.startFrame()
	}
	return p
}

// startFrame decides what to do with the frame whose header was just read.
func (r *relay) startFrame() {
	h := r.hdr[:r.hdrN]
	r.hdrN = 0
	b0, b1 := h[0], h[1]
	op := b0 & 0x0f
	r.masked = b1&maskBit != 0
	r.fin = b0&finBit != 0
	var length uint64
	switch l := b1 & 0x7f; l {
	case 126:
		length = uint64(binary.BigEndian.Uint16(h[2:4]))
	case 127:
		length = binary.BigEndian.Uint64(h[2:10])
	default:
		length = uint64(l)
	}
	if r.masked {
		copy(r.key[:], h[len(h)-4:])
	}
	r.pos, r.left = 0, length
	r.inBody = true

	fits := func() bool {
		room := maxHeld - len(r.held) - len(h)
		return room >= 0 && length <= uint64(room)
	}
	switch {
	case op >= opClose: // a control frame
		switch {
		case !r.cand:
			r.mode = modeStream
		case op == opClose || len(r.ctlSpans) >= maxHeldControl || !fits():
			// A close ends the conversation: the candidate never
			// completes. Relay what was held as it was.
			r.abandon()
			r.mode = modeStream
		default:
			r.ctlSpans = append(r.ctlSpans, [2]int{len(r.held), -1})
			r.mode = modeHoldCtl
		}
	case op == opContinuation:
		switch {
		case !r.cand:
			r.mode = modeStream
		case !fits():
			r.abandon()
			r.mode = modeStream
		default:
			r.mode = modeHoldData
		}
	default: // the first frame of a data message
		if r.cand {
			// The previous message never finished (a protocol error the
			// broker will report): relay it untouched.
			r.abandon()
		}
		if op == opText && b0&rsvBits == 0 && fits() {
			r.cand, r.candMasked, r.prefixKnown = true, r.masked, false
			r.held, r.payload, r.ctlSpans = r.held[:0], r.payload[:0], r.ctlSpans[:0]
			r.mode = modeHoldData
		} else {
			r.mode = modeStream
		}
	}
	if r.mode == modeStream {
		r.out = append(r.out, h...)
	} else {
		r.held = append(r.held, h...)
	}
	if length == 0 {
		r.endFrame()
	}
}

// readPayload consumes payload bytes of the current frame from p.
func (r *relay) readPayload(p []byte) []byte {
	n := min(uint64(len(p)), r.left)
	chunk := p[:n]
	switch r.mode {
	case modeStream:
		r.out = append(r.out, chunk...)
	case modeHoldCtl:
		r.held = append(r.held, chunk...)
	case modeHoldData:
		r.held = append(r.held, chunk...)
		start := len(r.payload)
		r.payload = append(r.payload, chunk...)
		if r.masked {
			for i := range chunk {
				r.payload[start+i] ^= r.key[(r.pos+uint64(i))&3]
			}
		}
		if !r.prefixKnown {
			switch authorizePrefix(r.payload) {
			case prefixNo:
				r.abandon()
				r.mode = modeStream // the rest of this frame
			case prefixYes:
				r.prefixKnown = true
			}
		}
	}
	r.pos += n
	r.left -= n
	if r.left == 0 {
		r.endFrame()
	}
	return p[n:]
}

// endFrame finishes the current frame.
func (r *relay) endFrame() {
	r.inBody = false
	switch r.mode {
	case modeHoldCtl:
		r.ctlSpans[len(r.ctlSpans)-1][1] = len(r.held)
	case modeHoldData:
		if r.fin {
			r.complete()
		}
	}
}

// complete handles the end of the candidate message: an authorize request
// is re-emitted with the token replaced (after the control frames that
// came with it); anything else is relayed as it was.
func (r *relay) complete() {
	msg, ok := rewriteAuthorize(r.payload, r.token)
	if !ok {
		r.abandon()
		return
	}
	for _, s := range r.ctlSpans {
		r.out = append(r.out, r.held[s[0]:s[1]]...)
	}
	r.out = appendFrame(r.out, opText, r.candMasked, msg)
	r.cand = false
	r.pass = true
}

// abandon relays the held bytes of the candidate message untouched; the
// rest of the message, if any, is streamed.
func (r *relay) abandon() {
	r.out = append(r.out, r.held...)
	r.held, r.payload, r.ctlSpans = r.held[:0], r.payload[:0], r.ctlSpans[:0]
	r.cand = false
}

// appendFrame appends one final (FIN) frame carrying payload, masked with a
// fresh key when masked, with the shortest length encoding.
func appendFrame(dst []byte, op byte, masked bool, payload []byte) []byte {
	var mb byte
	if masked {
		mb = maskBit
	}
	dst = append(dst, finBit|op)
	switch n := len(payload); {
	case n <= 125:
		dst = append(dst, mb|byte(n))
	case n <= 0xffff:
		dst = append(dst, mb|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, mb|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	if !masked {
		return append(dst, payload...)
	}
	var key [4]byte
	_, _ = rand.Read(key[:]) // crypto/rand.Read never fails
	dst = append(dst, key[:]...)
	start := len(dst)
	dst = append(dst, payload...)
	for i := range payload {
		dst[start+i] ^= key[i&3]
	}
	return dst
}

type prefixMatch uint8

const (
	prefixMaybe prefixMatch = iota // too short to tell
	prefixNo
	prefixYes
)

// The authorize request, plain and as a JSON string (one partner sample
// sends JSON.stringify of it).
const (
	authorizePlain = "authorize\n"
	authorizeJSON  = `"authorize\n`
)

// authorizePrefix reports whether payload starts like an authorize request
// (the endpoint in any case).
func authorizePrefix(payload []byte) prefixMatch {
	res := prefixNo
	for _, want := range [...]string{authorizePlain, authorizeJSON} {
		n := min(len(payload), len(want))
		if !strings.EqualFold(string(payload[:n]), want[:n]) {
			continue
		}
		if n == len(want) {
			return prefixYes
		}
		res = prefixMaybe
	}
	return res
}

// rewriteAuthorize returns the authorize request msg with its token (the
// fourth line) replaced by tok, keeping the endpoint, id and query lines as
// the client wrote them. A request wrapped in a JSON string comes back as
// one. ok is false when msg is not an authorize request.
func rewriteAuthorize(msg []byte, tok string) (out []byte, ok bool) {
	if authorizePrefix(msg) != prefixYes {
		return nil, false
	}
	if msg[0] == '"' {
		var s string
		if json.Unmarshal(msg, &s) != nil {
			return nil, false
		}
		plain, ok := rewritePlain(s, tok)
		if !ok {
			return nil, false
		}
		out, err := json.Marshal(plain)
		return out, err == nil
	}
	plain, ok := rewritePlain(string(msg), tok)
	return []byte(plain), ok
}

func rewritePlain(s, tok string) (string, bool) {
	parts := strings.SplitN(s, "\n", 4)
	if len(parts) < 2 || !strings.EqualFold(parts[0], "authorize") {
		return "", false
	}
	for len(parts) < 4 {
		parts = append(parts, "")
	}
	parts[3] = tok
	return strings.Join(parts, "\n"), true
}
