//go:build !linux

package sdnotify

// monotonicUsec has nothing to report off Linux, where systemd does not run;
// Reloading then sends RELOADING=1 alone.
func monotonicUsec() (uint64, bool) { return 0, false }
