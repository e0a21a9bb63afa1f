package proxy

import "net/http"

// serveCAPEM answers GET /ca.pem with the local CA's certificate, for
// clients to trust (like mitmproxy's mitm.it). The certificate is public:
// no [proxy_auth] needed, and never the key.
func (p *Proxy) serveCAPEM(w http.ResponseWriter, _ *http.Request) {
	c, ok := p.opts.CA.(interface{ CertPEM() []byte })
	if !ok || len(c.CertPEM()) == 0 {
		http.Error(w, "authproxy: no CA certificate to serve", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("Content-Disposition", `attachment; filename="authproxy-ca.pem"`)
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(c.CertPEM())
}
