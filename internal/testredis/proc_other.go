//go:build !linux

package testredis

import "os/exec"

// setPdeathsig is Linux-only; elsewhere t.Cleanup alone stops the server.
func setPdeathsig(*exec.Cmd) {}
