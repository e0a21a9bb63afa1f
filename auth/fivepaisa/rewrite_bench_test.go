package fivepaisa_test

import (
	"bytes"
	"testing"

	"github.com/authproxy/authproxy/auth/fivepaisa"
)

// 5paisa request bodies as clients send them: the SDK's usual shape (head
// with a stale key, body with ClientCode), one without head, and a larger
// order book request.
var benchBodies = map[string][]byte{
	"sdk": []byte(`{"head":{"key":"stale-key-from-notebook"},"body":{"ClientCode":"50123456","Exchange":"N",` +
		`"ExchangeType":"C","ScripCode":1660,"Price":0,"OrderType":"Buy","Qty":1,"DisQty":0,"IsIntraday":false,` +
		`"AHPlaced":"N","RemoteOrderID":"bench-1"}}`),
	"no-head": []byte(`{"body":{"Exchange":"N","ExchangeType":"C","ScripCode":1660}}`),
	"market-feed": append(append([]byte(`{"head":{"key":"x"},"body":{"ClientCode":"50123456","Count":40,"MarketFeedData":[`),
		bytes.Repeat([]byte(`{"Exch":"N","ExchType":"C","ScripCode":1660,"ScripData":""},`), 39)...),
		[]byte(`{"Exch":"N","ExchType":"C","ScripCode":2885,"ScripData":""}],"LastRequestTime":"/Date(0)/","RefreshRate":"H"}}`)...),
}

// BenchmarkRewriteBody is the JSON-body injection on every 5paisa API call:
// set head.key and body.ClientCode, keep everything else byte for byte.
func BenchmarkRewriteBody(b *testing.B) {
	for _, name := range []string{"sdk", "no-head", "market-feed"} {
		body := benchBodies[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			var out []byte
			for b.Loop() {
				var err error
				out, err = fivepaisa.RewriteBody(body, "APPKEY0123456789", "50123456")
				if err != nil {
					b.Fatal(err)
				}
			}
			if !bytes.Contains(out, []byte(`"key":"APPKEY0123456789"`)) || !bytes.Contains(out, []byte(`"ClientCode":"50123456"`)) {
				b.Fatalf("rewritten body lacks the injected fields: %s", out)
			}
		})
	}
}
