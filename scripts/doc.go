// Package scripts holds operator scripts: install.sh puts hogrelay, its
// systemd unit, sysusers.d/tmpfiles.d files and a starting config onto a VM
// (or stages them under DESTDIR). The Go code here is only their tests.
package scripts
