package testredis

import (
	"os/exec"
	"syscall"
)

// setPdeathsig has the kernel kill the server if the test binary dies
// without running its cleanups (a panic or a timeout), so no redis-server
// outlives the test run.
func setPdeathsig(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
