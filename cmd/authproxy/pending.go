package main

import (
	"context"
	"errors"
)

// These commands arrive with their issues (browser login, demo, doctor).

func cmdLogin(context.Context, []string, env) error {
	return errors.New("login: not available in this build yet")
}

func cmdDemo(context.Context, []string, env) error {
	return errors.New("demo: not available in this build yet")
}

func cmdDoctor(context.Context, []string, env) error {
	return errors.New("doctor: not available in this build yet")
}
