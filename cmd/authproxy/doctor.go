package main

import (
	"context"
	"errors"
)

func cmdDoctor(context.Context, []string, env) error {
	return errors.New("doctor: not available in this build yet")
}
