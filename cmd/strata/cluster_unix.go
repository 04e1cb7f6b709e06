//go:build unix

package main

import "syscall"

// detached runs a cluster process in a session of its own, so that it
// outlives strata cluster up and a Ctrl-C in its terminal.
func detached() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }
