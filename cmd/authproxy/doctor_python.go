package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// pyHandshake is run by python3: it opens a CONNECT tunnel through the
// proxy to HOST:443 and does a real TLS handshake with the CA bundle
// requests would use (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, else certifi's),
// or Python's default context when requests is not installed. No request
// is sent, so no broker is contacted.
const pyHandshake = `
import base64, os, socket, ssl, sys
proxy, host, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
auth = sys.argv[4] if len(sys.argv) > 4 else ""
try:
    import requests.utils
    ca = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or requests.utils.DEFAULT_CA_BUNDLE_PATH
    who = "requests"
except ImportError:
    ca, who = None, "ssl (requests is not installed)"
ctx = ssl.create_default_context(cafile=ca) if ca else ssl.create_default_context()
h, p = proxy.rsplit(":", 1)
s = socket.create_connection((h.strip("[]"), int(p)), timeout=timeout)
hdr = "Proxy-Authorization: Basic " + auth + "\r\n" if auth else ""
s.sendall(("CONNECT %s:443 HTTP/1.1\r\nHost: %s:443\r\n%s\r\n" % (host, host, hdr)).encode())
head = b""
while not head.endswith(b"\r\n\r\n") and len(head) < 8192:
    b = s.recv(1)
    if not b:
        break
    head += b
status = head.split(b"\r\n", 1)[0].decode("latin-1")
if " 200" not in status:
    print("CONNECT refused: " + status)
    sys.exit(3)
try:
    t = ctx.wrap_socket(s, server_hostname=host)
except ssl.SSLError as e:
    print("%s with CA bundle %s: %s" % (who, ca or "(default)", e))
    sys.exit(2)
print("%s with CA bundle %s: %s" % (who, ca or "(default)", t.version()))
t.close()
`

// checkPython checks which bundle Python's requests will trust, then, when
// python3 and the proxy are both there, does a real handshake from Python
// through the proxy: the bundle check alone said "ok" while requests failed.
func (d *doctor) checkPython(ctx context.Context) {
	d.checkPythonBundle(ctx)
	host := d.firstHost()
	if d.ca == nil || d.addr == "" || host == "" {
		return
	}
	py, err := d.lookPath("python3")
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout+2e9)
	defer cancel()
	args := []string{"-c", pyHandshake, d.addr, host, fmt.Sprint(d.timeout.Seconds())}
	if u := d.proxyUser(); u != nil {
		pass, _ := u.Password()
		args = append(args, basicAuth(u.Username(), pass))
	}
	cmd := exec.CommandContext(ctx, py, args...)
	cmd.Env = d.environ()
	out, err := cmd.Output()
	msg := strings.TrimSpace(string(out))
	fix := "run " + d.envCmd() + " before starting Python (REQUESTS_CA_BUNDLE for requests, SSL_CERT_FILE for httpx and aiohttp), or `authproxy ca install`; in a notebook: authproxy env --python"
	switch {
	case err == nil:
		d.add(levelOK, "python", "python3 completed a TLS handshake with "+host+" through the proxy: "+msg, "")
	case msg != "":
		d.add(levelFail, "python", "python3 could not complete a TLS handshake with "+host+" through the proxy: "+msg, fix)
	default:
		d.add(levelWarn, "python", "python3 handshake check did not run: "+shortErr(err), "")
	}
}

// environ is the environment child programs get: the command's own.
func (d *doctor) environ() []string {
	if d.e.environ != nil {
		return d.e.environ()
	}
	return os.Environ()
}

// checkRedirects flags browser-login accounts whose redirect_uri the proxy
// does not serve: the login would wait for a callback that never comes.
func (d *doctor) checkRedirects() {
	listen := d.cfg.Listen
	if d.addr != "" {
		listen = d.addr
	}
	bad := 0
	for _, a := range d.cfg.Accounts {
		if msg := redirectMismatch(listen, a); msg != "" {
			bad++
			d.add(levelWarn, "redirect", a.Name+": "+msg, "set redirect_uri in rules.toml to the URL registered with the broker, and listen where it points")
		}
	}
	if bad == 0 {
		d.add(levelOK, "redirect", "every browser-login account's redirect_uri reaches this proxy", "")
	}
}

func basicAuth(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}
