// Package scripts holds operator scripts: install.sh puts hogrelay, its
// systemd unit, sysusers.d/tmpfiles.d files and a starting config onto a VM
// (or stages them under DESTDIR); build-deb.sh packages the same staged
// files as a .deb with dpkg-deb. The Go code here is only their tests.
package scripts
