package main

import (
	"context"
	"net"
	"strings"
	"testing"
)

// A taken port names the fix: --listen, and authproxy status.
func TestListenAddressInUseNamesFix(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = listen(context.Background(), ln.Addr().String())
	if err == nil {
		t.Fatal("listening twice on one port succeeded")
	}
	for _, want := range []string{"address already in use", "--listen", "authproxy status"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}
