// Package systemd holds the files that run hogrelay under systemd on a VM:
// hogrelay.service (the hardened Type=notify unit), hogrelay.sysusers (the
// static user and group producers join to reach the socket) and
// hogrelay.tmpfiles (ownership of /etc/hogrelay). scripts/install.sh installs
// them. The Go code here is only the tests that keep the files valid and in
// step with the agent's defaults.
package systemd
