// Package integration holds authproxy's end-to-end tests: the built binary,
// fake brokers served over real TLS on loopback (integration/fakes), and real
// clients (curl, Python requests) configured only by `authproxy env`.
//
// The tests are skipped under -short. The fakes follow brokers.md strictly;
// product code never special-cases them.
package integration
