package main

import (
	"context"
	"errors"
)

func cmdDemo(context.Context, []string, env) error {
	return errors.New("demo: not available in this build yet")
}
