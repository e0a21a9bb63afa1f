package redisstore

import (
	"log/slog"
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	// go-redis logs every failed dial; the outage tests make plenty.
	RouteClientLogs(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}
