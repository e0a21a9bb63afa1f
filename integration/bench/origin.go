package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/authproxy/authproxy/internal/fakebroker/fakeca"
)

// brokerHost is the real Tradingo API host the origin impersonates.
const brokerHost = "tradingorestapi.swastika.co.in"

// apiPath is the request every client sends (a Tradingo order-book call).
const apiPath = "/kb/OrderBook/GetOrderBookList"

// apiBody is the JSON body clients POST.
const apiBody = `{"Uid":"GO11240","Exchange":"NSE","Segment":"E"}`

// originReply is a Tradingo-shaped envelope of typical size (~0.5 KiB).
var originReply = []byte(`{"StatusCode":200,"Message":"Success","IsError":false,"ResponseException":null,` +
	`"Result":{"ResponseMessage":"OK","Data":[{"OrderNo":"1240001","Symbol":"RELIANCE-EQ","Exchange":"NSE",` +
	`"Side":"BUY","Qty":10,"Price":2950.05,"Status":"COMPLETE","Time":"2025-01-02T09:15:03"},` +
	`{"OrderNo":"1240002","Symbol":"INFY-EQ","Exchange":"NSE","Side":"SELL","Qty":5,"Price":1890.4,` +
	`"Status":"OPEN","Time":"2025-01-02T09:16:41"},{"OrderNo":"1240003","Symbol":"TCS-EQ","Exchange":"NSE",` +
	`"Side":"BUY","Qty":2,"Price":4102.0,"Status":"REJECTED","Time":"2025-01-02T09:17:12"}]}}`)

// origin is the fake broker API: real TLS with a fakeca leaf for brokerHost,
// HTTP/2 and HTTP/1.1. It answers every request whose Authorization is the
// expected bearer and counts everything else as a failure of the proxy.
type origin struct {
	addr   string
	srv    *http.Server
	ca     *fakeca.CA
	caFile string
	want   string // "Bearer <token>"

	ok, bad, logins atomic.Int64
	conns           atomic.Int64 // new TCP connections accepted
	resumed         atomic.Int64 // requests on a resumed TLS session (first request per conn)
	h2              atomic.Int64 // requests over HTTP/2
}

// originCounts is a snapshot of an origin's counters.
type originCounts struct{ ok, bad, logins, conns, resumed, h2 int64 }

func (o *origin) counts() originCounts {
	return originCounts{o.ok.Load(), o.bad.Load(), o.logins.Load(), o.conns.Load(), o.resumed.Load(), o.h2.Load()}
}

func (a originCounts) sub(b originCounts) originCounts {
	return originCounts{a.ok - b.ok, a.bad - b.bad, a.logins - b.logins, a.conns - b.conns, a.resumed - b.resumed, a.h2 - b.h2}
}

// startOrigin starts the origin on 127.0.0.1. With h1Only it does not offer
// HTTP/2 (to compare the proxy's upstream over HTTP/1.1).
func startOrigin(ca *fakeca.CA, caFile, token string, h1Only bool) (*origin, error) {
	cfg, err := ca.ServerTLS(brokerHost)
	if err != nil {
		return nil, err
	}
	if h1Only {
		cfg.NextProtos = []string{"http/1.1"}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	o := &origin{addr: ln.Addr().String(), ca: ca, caFile: caFile, want: "Bearer " + token}
	o.srv = &http.Server{
		Handler:           http.HandlerFunc(o.handle),
		TLSConfig:         cfg,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          log.New(io.Discard, "", 0),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				o.conns.Add(1)
			}
		},
	}
	if h1Only {
		o.srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	go func() { _ = o.srv.ServeTLS(ln, "", "") }()
	return o, nil
}

func (o *origin) handle(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/auth/") {
		// A login reaching the origin means the proxy did not use the
		// cached token: steady state must make zero broker auth calls.
		o.logins.Add(1)
		http.Error(w, `{"IsError":true,"StatusCode":500,"Message":"the bench origin does not log in"}`, http.StatusInternalServerError)
		return
	}
	_, _ = io.Copy(io.Discard, r.Body)
	if r.ProtoMajor == 2 {
		o.h2.Add(1)
	}
	if r.TLS != nil && r.TLS.DidResume {
		o.resumed.Add(1)
	}
	if got := r.Header.Values("Authorization"); len(got) != 1 || got[0] != o.want {
		o.bad.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"StatusCode":401,"Message":"Unauthorized","IsError":true}`))
		return
	}
	o.ok.Add(1)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(originReply)
}

func (o *origin) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = o.srv.Shutdown(ctx)
}

func (o *origin) String() string {
	protos := "h2+http/1.1"
	if !slices.Contains(o.srv.TLSConfig.NextProtos, "h2") {
		protos = "http/1.1 only"
	}
	return fmt.Sprintf("origin %s (%s)", o.addr, protos)
}
