#!/bin/sh
# install.sh: install hogrelay as a systemd service on this machine, or stage
# it under DESTDIR for an image or package build.
#
# Usage: scripts/install.sh [--binary PATH] [--uninstall]
#   --binary PATH  install this binary instead of building ./cmd/hogrelay
#   --uninstall    remove the binary and systemd files; keep config and data
# Environment:
#   DESTDIR  staging root (default: empty = this machine). When set, the host's
#            users and systemd are never touched: the sysusers.d/tmpfiles.d
#            files create the user and fix ownership on the target's boot.
#   PREFIX   where bin/hogrelay goes (default /usr/local); the unit follows it.
#   UNITDIR  where hogrelay.service goes (default /etc/systemd/system; a
#            package uses /usr/lib/systemd/system). Pass the same to --uninstall.
#
# Running it again is safe: files that are already right are left alone and
# an existing /etc/hogrelay/config.toml is never overwritten.
set -eu

# Directories we create must not inherit a restrictive root umask (0077 would
# make /usr/lib/sysusers.d unreadable to anyone else). Files get explicit modes.
umask 022

die() {
	printf 'install.sh: %s\n' "$*" >&2
	exit 1
}

# say ACTION PATH: one line per thing done, so the operator sees what changed.
say() {
	printf '  %-10s %s\n' "$1" "$2"
}

usage() {
	sed -n '2,/^set -eu/{/^#/s/^# \{0,1\}//p}' "$0"
}

binary=
uninstall=false
while [ $# -gt 0 ]; do
	case $1 in
	--binary)
		[ $# -ge 2 ] || die "--binary needs a path"
		binary=$2
		shift 2
		;;
	--binary=*)
		binary=${1#--binary=}
		shift
		;;
	--uninstall)
		uninstall=true
		shift
		;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		usage >&2
		die "unknown argument: $1"
		;;
	esac
done

DESTDIR=${DESTDIR-}
DESTDIR=${DESTDIR%/}
PREFIX=${PREFIX:-/usr/local}
PREFIX=${PREFIX%/}
# PREFIX is written into the unit's Exec lines, which would need quoting for
# anything beyond these characters.
case $PREFIX in
/*) ;;
*) die "PREFIX must be an absolute path, got '$PREFIX'" ;;
esac
case $PREFIX in
*[!A-Za-z0-9/._-]*) die "PREFIX '$PREFIX' has characters a unit file would need quoted; use a plain path" ;;
esac

UNITDIR=${UNITDIR:-/etc/systemd/system}
UNITDIR=${UNITDIR%/}
case $UNITDIR in
/*) ;;
*) die "UNITDIR must be an absolute path, got '$UNITDIR'" ;;
esac

repo=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)

bin_path=$PREFIX/bin/hogrelay
unit_path=$UNITDIR/hogrelay.service
sysusers_path=/usr/lib/sysusers.d/hogrelay.conf
tmpfiles_path=/usr/lib/tmpfiles.d/hogrelay.conf
conf_dir=/etc/hogrelay
conf_path=$conf_dir/config.toml
env_path=$conf_dir/env
data_dir=/var/lib/hogrelay

# live: installing onto this machine, not into a staging root.
live=false
if [ -z "$DESTDIR" ]; then
	live=true
	[ "$(id -u)" -eq 0 ] || die "installing onto this machine needs root (or set DESTDIR=/some/dir to stage the files)"
fi

# systemd_up: systemctl can talk to a running systemd (the sd_booted(3) test).
systemd_up=false
if $live && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
	systemd_up=true
fi

workdir=$(mktemp -d)
pending=
cleanup() {
	rm -rf "$workdir"
	[ -z "$pending" ] || rm -f "$pending"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# put SRC DST MODE: install SRC as $DESTDIR/DST unless it is already there
# with the same content; sets changed=true|false. The copy is renamed into
# place, so a running binary is replaced atomically and a crash never leaves
# half a file.
put() {
	dst=$DESTDIR$2
	mkdir -p "$(dirname -- "$dst")"
	if [ -f "$dst" ] && cmp -s "$1" "$dst"; then
		chmod "$3" "$dst"
		say unchanged "$dst"
		changed=false
		return 0
	fi
	pending=$dst.install-tmp
	cp -- "$1" "$pending"
	chmod "$3" "$pending"
	mv -f -- "$pending" "$dst"
	pending=
	say installed "$dst"
	changed=true
}

# remove DST: delete $DESTDIR/DST if present.
remove() {
	if [ -e "$DESTDIR$1" ] || [ -L "$DESTDIR$1" ]; then
		rm -f -- "$DESTDIR$1"
		say removed "$DESTDIR$1"
	else
		say absent "$DESTDIR$1"
	fi
}

if $uninstall; then
	echo "Uninstalling hogrelay${DESTDIR:+ from $DESTDIR}:"
	if $systemd_up && systemctl cat hogrelay.service >/dev/null 2>&1; then
		# Stopping lets the agent flush; whatever it cannot send stays spooled.
		systemctl disable --now hogrelay.service
		say disabled "hogrelay.service (stopped)"
	fi
	remove "$bin_path"
	remove "$unit_path"
	remove "$sysusers_path"
	remove "$tmpfiles_path"
	if $systemd_up; then
		systemctl daemon-reload
	fi
	say kept "$DESTDIR$conf_dir (config and env file)"
	say kept "$DESTDIR$data_dir (spooled events and flag cache, if any)"
	if $live; then
		say kept "user hogrelay, groups hogrelay and hogrelay-admin (they own the data)"
		cat <<-MSG

		Your config and any unsent events are still there. To remove them too:
		  rm -r $conf_dir $data_dir
		  userdel hogrelay; groupdel hogrelay; groupdel hogrelay-admin
		  rm -r /etc/systemd/system/hogrelay.service.d   # if you made drop-ins with systemctl edit
		MSG
	fi
	exit 0
fi

echo "Installing hogrelay${DESTDIR:+ into $DESTDIR}:"

# 1. The binary. Built static (CGO_ENABLED=0) so it runs on any glibc and
#    needs nothing from the sandboxed filesystem.
if [ -z "$binary" ]; then
	command -v go >/dev/null 2>&1 ||
		die "go not found in PATH; build first (go build -o hogrelay ./cmd/hogrelay) and pass --binary ./hogrelay (sudo often drops PATH)"
	echo "  building   $repo/cmd/hogrelay"
	(cd "$repo" && CGO_ENABLED=0 go build -trimpath -o "$workdir/hogrelay" ./cmd/hogrelay) ||
		die "go build failed"
	binary=$workdir/hogrelay
fi
if [ ! -f "$binary" ] || [ ! -x "$binary" ]; then
	die "--binary $binary is not an executable file"
fi
put "$binary" "$bin_path" 0755
binary_changed=$changed

# 2. The user and group, from the sysusers.d file so a live install and an
#    image build create the same account.
put "$repo/systemd/hogrelay.sysusers" "$sysusers_path" 0644
put "$repo/systemd/hogrelay.tmpfiles" "$tmpfiles_path" 0644
if $live; then
	if getent group hogrelay >/dev/null 2>&1 && getent group hogrelay-admin >/dev/null 2>&1 && getent passwd hogrelay >/dev/null 2>&1; then
		say unchanged "user hogrelay, groups hogrelay and hogrelay-admin"
	elif command -v systemd-sysusers >/dev/null 2>&1; then
		systemd-sysusers "$sysusers_path"
		say created "user hogrelay, groups hogrelay and hogrelay-admin (systemd-sysusers)"
	else
		nologin=/bin/false
		for sh in /usr/sbin/nologin /sbin/nologin; do
			if [ -x "$sh" ]; then
				nologin=$sh
				break
			fi
		done
		getent group hogrelay >/dev/null 2>&1 || groupadd --system hogrelay
		getent group hogrelay-admin >/dev/null 2>&1 || groupadd --system hogrelay-admin
		getent passwd hogrelay >/dev/null 2>&1 ||
			useradd --system --gid hogrelay --home-dir "$data_dir" --no-create-home \
				--shell "$nologin" --comment "hogrelay PostHog event relay" hogrelay
		say created "user hogrelay, groups hogrelay and hogrelay-admin (useradd)"
	fi
else
	say skipped "creating user hogrelay (DESTDIR set: $sysusers_path creates it on the target)"
fi

# 3. The unit, pointed at wherever PREFIX put the binary.
sed "s|/usr/local/bin/hogrelay|$bin_path|g" "$repo/systemd/hogrelay.service" >"$workdir/hogrelay.service"
put "$workdir/hogrelay.service" "$unit_path" 0644
unit_changed=$changed

# 4. The config: readable by the agent (group), writable only by root.
mkdir -p "$DESTDIR$conf_dir"
chmod 0750 "$DESTDIR$conf_dir"
if $live; then chown root:hogrelay "$conf_dir"; fi
if [ -e "$DESTDIR$conf_path" ]; then
	say kept "$DESTDIR$conf_path (already exists; not overwritten; see $repo/config.example.toml for new keys)"
else
	put "$repo/config.example.toml" "$conf_path" 0640
	if $live; then chown root:hogrelay "$conf_path"; fi
fi

# 5. Tell systemd.
if $systemd_up; then
	systemctl daemon-reload
	if systemctl is-enabled --quiet hogrelay.service; then
		say unchanged "hogrelay.service enabled"
	else
		systemctl enable --quiet hogrelay.service
		say enabled "hogrelay.service (starts at boot)"
	fi
	if systemctl is-active --quiet hogrelay.service && { $binary_changed || $unit_changed; }; then
		echo "  NOTE       hogrelay is running the old version: systemctl restart hogrelay"
	fi
elif $live; then
	say skipped "systemctl daemon-reload/enable (systemd is not PID 1 here)"
fi

if $live; then
	cat <<-MSG

	Next steps:
	  1. Edit $conf_path: set [posthog] api_key (phc_...), or put
	     HOGRELAY_API_KEY=phc_... in $env_path (chmod 0600). Then check it:
	       $bin_path check-config --config $conf_path
	  2. Start it:  systemctl start hogrelay
	     Watch it:  systemctl status hogrelay; journalctl -u hogrelay -f
	  3. Let a producer write to /run/hogrelay/hogrelay.sock:
	       usermod -aG hogrelay <producer-user>   (then restart that producer)
	  4. Admin commands (spool export, dead letters, compact) use
	     /run/hogrelay/admin.sock: run them with sudo, or see README
	     "Security model" to give the hogrelay-admin group access.
	MSG
else
	cat <<-MSG

	Staged into $DESTDIR. When the target boots, systemd-sysusers creates
	the hogrelay user and systemd-tmpfiles makes $conf_dir root:hogrelay.
	Then edit $conf_path there and run: systemctl enable --now hogrelay
	MSG
fi
