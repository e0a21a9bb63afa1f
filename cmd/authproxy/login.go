package main

import (
	"context"
	"errors"
)

func cmdLogin(context.Context, []string, env) error {
	return errors.New("login: not available in this build yet")
}
