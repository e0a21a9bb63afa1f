//go:build !unix

package certs

import "io/fs"

func checkOwner(string, fs.FileInfo) error { return nil }
