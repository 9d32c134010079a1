#!/bin/sh
# build-deb.sh: build a Debian package of hogrelay with dpkg-deb. The files
# are staged by install.sh (DESTDIR=… PREFIX=/usr), so the package holds
# exactly what a manual install does, with the unit in /usr/lib/systemd/system.
#
# Usage: scripts/build-deb.sh [--binary PATH] [--version V] [--arch A] [--out DIR]
#   --binary PATH  package this binary (default: build ./cmd/hogrelay for --arch)
#   --version V    package version (default: from git describe --tags, else
#                  0.0+git<commits>.<hash>; a leading "v" is dropped)
#   --arch A       Debian architecture (default: dpkg --print-architecture)
#   --out DIR      where hogrelay_<version>_<arch>.deb goes (default: .)
# Environment:
#   DEBFULLNAME, DEBEMAIL  the Maintainer field (as for dch)
#   SOURCE_DATE_EPOCH      file times in the package (default: last commit)
#
# The package's maintainer scripts create the hogrelay user (systemd-sysusers),
# give the config to root:hogrelay 0640, and enable (not start) the service on
# first install. /etc/hogrelay/config.toml is a conffile: upgrades never
# overwrite an edited config. Purge removes /etc/hogrelay but keeps the spool
# in /var/lib/hogrelay.
set -eu
umask 022

die() {
	printf 'build-deb.sh: %s\n' "$*" >&2
	exit 1
}

usage() {
	sed -n '2,/^set -eu/{/^#/s/^# \{0,1\}//p}' "$0"
}

binary=
version=
arch=
out=.
while [ $# -gt 0 ]; do
	case $1 in
	--binary | --version | --arch | --out)
		[ $# -ge 2 ] || die "$1 needs a value"
		opt=${1#--}
		val=$2
		shift 2
		;;
	--binary=* | --version=* | --arch=* | --out=*)
		opt=${1%%=*}
		opt=${opt#--}
		val=${1#*=}
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
	case $opt in
	binary) binary=$val ;;
	version) version=$val ;;
	arch) arch=$val ;;
	out) out=$val ;;
	esac
done

command -v dpkg-deb >/dev/null 2>&1 || die "dpkg-deb not found (apt-get install dpkg)"

repo=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)

# Version: Debian versions must start with a digit and, without a revision,
# hold no "-". v1.2.0 -> 1.2.0; v1.2.0-3-gabc1234-dirty -> 1.2.0+3.gabc1234.dirty.
if [ -z "$version" ]; then
	if described=$(git -C "$repo" describe --tags --dirty 2>/dev/null); then
		described=${described#v}
		case $described in
		*-*) version=${described%%-*}+$(printf '%s' "${described#*-}" | tr - .) ;;
		*) version=$described ;;
		esac
	elif count=$(git -C "$repo" rev-list --count HEAD 2>/dev/null); then
		# No tags yet: the commit count keeps upgrades ordered.
		version=0.0+git$count.$(git -C "$repo" rev-parse --short HEAD)
		if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
			version=$version.dirty
		fi
	else
		die "cannot read a version from git ($(git -C "$repo" rev-parse HEAD 2>&1 | head -n1)); pass --version"
	fi
fi
version=${version#v}
printf '%s\n' "$version" | grep -Eq '^[0-9][A-Za-z0-9.+~]*(-[A-Za-z0-9.+~]+)?$' ||
	die "version '$version' is not a Debian version (digits first; letters, digits, . + ~; one - before a revision)"

if [ -z "$arch" ]; then
	arch=$(dpkg --print-architecture 2>/dev/null) || die "dpkg --print-architecture failed; pass --arch"
fi
# Go's name for the architecture and the ELF e_machine a binary for it has.
goarm=
case $arch in
amd64) goarch=amd64 machine=62 ;;
arm64) goarch=arm64 machine=183 ;;
armhf) goarch=arm goarm=7 machine=40 ;;
i386) goarch=386 machine=3 ;;
riscv64) goarch=riscv64 machine=243 ;;
ppc64el) goarch=ppc64le machine=21 ;;
*) die "unsupported --arch '$arch' (amd64, arm64, armhf, i386, riscv64, ppc64el)" ;;
esac

if [ -z "${SOURCE_DATE_EPOCH-}" ]; then
	SOURCE_DATE_EPOCH=$(git -C "$repo" log -1 --format=%ct 2>/dev/null) || SOURCE_DATE_EPOCH=
	[ -n "$SOURCE_DATE_EPOCH" ] || unset SOURCE_DATE_EPOCH
fi
[ -z "${SOURCE_DATE_EPOCH-}" ] || export SOURCE_DATE_EPOCH

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

if [ -z "$binary" ]; then
	command -v go >/dev/null 2>&1 || die "go not found in PATH; build first and pass --binary"
	echo "building $repo/cmd/hogrelay for $arch"
	(cd "$repo" && CGO_ENABLED=0 GOOS=linux GOARCH=$goarch GOARM=$goarm \
		go build -trimpath -ldflags "-s -w -X github.com/hogrelay/hogrelay/cli.Version=$version" \
		-o "$work/hogrelay" ./cmd/hogrelay) || die "go build failed"
	binary=$work/hogrelay
fi
if [ ! -f "$binary" ] || [ ! -x "$binary" ]; then
	die "--binary $binary is not an executable file"
fi
# A real (ELF) binary must match the package's architecture; a package that
# installs but cannot exec is worse than no package.
if [ "$(od -An -c -N4 "$binary" | tr -d ' ')" = '177ELF' ]; then
	got=$(od -An -tu2 -j18 -N2 "$binary" | tr -d ' ')
	[ "$got" = "$machine" ] || die "$binary is not a $arch binary (ELF machine $got, want $machine); pass the right --arch"
	# The package carries no symbols (Debian policy 10.1; make build keeps
	# them for a developer's debugger). A binary this script built has none;
	# strip a copy of one given with --binary.
	if [ "$binary" != "$work/hogrelay" ]; then
		command -v strip >/dev/null 2>&1 || die "--binary $binary must be stripped for the package and strip is not installed (apt-get install binutils), or leave out --binary to build a stripped one"
		cp "$binary" "$work/hogrelay"
		strip --strip-all "$work/hogrelay" 2>"$work/strip.log" || die "strip $binary failed: $(cat "$work/strip.log"); leave out --binary to build a stripped one"
		binary=$work/hogrelay
	fi
fi

# Stage with install.sh, so the file list lives in one place.
stage=$work/stage
mkdir -p "$stage"
chmod 0755 "$stage"
DESTDIR=$stage PREFIX=/usr UNITDIR=/usr/lib/systemd/system \
	"$repo/scripts/install.sh" --binary "$binary" >"$work/install.log" 2>&1 || {
	cat "$work/install.log" >&2
	die "staging with install.sh failed"
}
sed -n "s|^  installed  $stage|  staged     |p" "$work/install.log"

# What Debian policy asks of every package: the copyright file, a changelog
# (a native package's, for this version), the man page (made from the CLI's
# own help) and the overrides for what lintian cannot know about a Go binary.
doc=$stage/usr/share/doc/hogrelay
install -d -m 0755 "$doc" "$stage/usr/share/man/man1" "$stage/usr/share/lintian/overrides"
install -m 0644 "$repo/scripts/deb/copyright" "$doc/copyright"
install -m 0644 "$repo/scripts/deb/lintian-overrides" "$stage/usr/share/lintian/overrides/hogrelay"
changelog_date=$(date -u -R ${SOURCE_DATE_EPOCH:+-d "@$SOURCE_DATE_EPOCH"})
commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
maintainer="${DEBFULLNAME:-hogrelay maintainers} <${DEBEMAIL:-maintainers@hogrelay.invalid}>"
cat >"$work/changelog" <<CHANGES
hogrelay ($version) unstable; urgency=medium

  * Built from hogrelay commit $commit. What changed is in the README's
    Changelog section.

 -- $maintainer  $changelog_date
CHANGES
gzip -9n <"$work/changelog" >"$doc/changelog.gz"
chmod 0644 "$doc/changelog.gz"
command -v go >/dev/null 2>&1 || die "go not found in PATH: the man page is made from the CLI's help with go run ./scripts/manpage"
(cd "$repo" && go run ./scripts/manpage -version "$version") >"$work/hogrelay.1" || die "making the man page failed"
gzip -9n <"$work/hogrelay.1" >"$stage/usr/share/man/man1/hogrelay.1.gz"
chmod 0644 "$stage/usr/share/man/man1/hogrelay.1.gz"

debian=$stage/DEBIAN
mkdir -m 0755 "$debian"
(cd "$stage" && find etc -type f | sort | sed 's|^|/|') >"$debian/conffiles"
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | sort | xargs md5sum) >"$debian/md5sums"
installed_size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)

cat >"$debian/control" <<EOF
Package: hogrelay
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $installed_size
Recommends: systemd
Section: net
Priority: optional
Homepage: https://github.com/hogrelay/hogrelay
Description: durable PostHog event forwarder and feature-flag cache
 hogrelay runs as one small agent per machine. Producers send PostHog events
 to a local unix socket; each event is fsynced to a disk spool before it is
 acknowledged, and the agent forwards the spool to PostHog with retries.
 Feature flags are evaluated locally from definitions cached on disk.
EOF

# Maintainer scripts. DPKG_ROOT is set (non-empty) when dpkg installs into
# another root with --force-script-chrootless: then nothing may touch this
# machine's users or its running systemd.
cat >"$debian/postinst" <<'EOF'
#!/bin/sh
set -e
root=${DPKG_ROOT:-}
systemd_up=false
if [ -z "$root" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemd_up=true
fi

[ "$1" = configure ] || exit 0

# The hogrelay user and group, from the package's sysusers.d file.
if command -v systemd-sysusers >/dev/null 2>&1; then
	systemd-sysusers ${root:+--root="$root"} hogrelay.conf
elif [ -z "$root" ]; then
	getent group hogrelay >/dev/null 2>&1 || groupadd --system hogrelay
	getent group hogrelay-admin >/dev/null 2>&1 || groupadd --system hogrelay-admin
	getent passwd hogrelay >/dev/null 2>&1 ||
		useradd --system --gid hogrelay --home-dir /var/lib/hogrelay --no-create-home \
			--shell /usr/sbin/nologin --comment "hogrelay PostHog event relay" hogrelay
else
	echo "hogrelay: no systemd-sysusers; the hogrelay user is created when $root boots" >&2
fi

# The config is readable by the agent (group), writable only by root. dpkg
# unpacks it root:root, so this runs on every configure.
if [ -z "$root" ]; then
	group=hogrelay
else
	group=$(sed -n 's/^hogrelay:[^:]*:\([0-9][0-9]*\):.*/\1/p' "$root/etc/group" 2>/dev/null)
fi
# own PATH MODE. Only an unprivileged dpkg --root install may fail to chown;
# hogrelay.tmpfiles fixes the owner when that root boots.
own() {
	chmod "$2" "$1"
	if chown "root:$group" "$1" 2>/dev/null; then
		return 0
	fi
	[ -n "$root" ] || chown "root:$group" "$1"
	echo "hogrelay: cannot chown $1 here; systemd-tmpfiles does it when that system boots" >&2
}
if [ -n "$group" ] && { [ -n "$root" ] || getent group hogrelay >/dev/null 2>&1; }; then
	own "$root/etc/hogrelay" 0750
	if [ -f "$root/etc/hogrelay/config.toml" ]; then
		own "$root/etc/hogrelay/config.toml" 0640
	fi
fi

if $systemd_up; then
	systemctl daemon-reload || true
fi
if [ -z "$2" ]; then
	# First install: enable, do not start; it needs an api_key first.
	# systemctl enable works offline (chroot, image build) too.
	if command -v systemctl >/dev/null 2>&1; then
		systemctl ${root:+--root="$root"} enable --quiet hogrelay.service ||
			echo "hogrelay: could not enable hogrelay.service; run: systemctl enable hogrelay" >&2
	fi
	cat <<-MSG
	hogrelay is installed and enabled, not started. Next:
	  1. Set [posthog] api_key in /etc/hogrelay/config.toml (or HOGRELAY_API_KEY=
	     in /etc/hogrelay/env, mode 0600), then: hogrelay check-config
	  2. systemctl start hogrelay
	  3. usermod -aG hogrelay <producer-user> so it may write /run/hogrelay/hogrelay.sock
	  4. admin commands (spool export, dead letters) use /run/hogrelay/admin.sock: sudo,
	     or README "Security model" for the hogrelay-admin group
	MSG
elif $systemd_up; then
	# Upgrade: a running agent flushes, stops and comes back on the new binary.
	systemctl try-restart hogrelay.service || true
fi
exit 0
EOF

cat >"$debian/prerm" <<'EOF'
#!/bin/sh
set -e
root=${DPKG_ROOT:-}
# Only on removal; an upgrade keeps the service running until postinst
# restarts it on the new binary.
[ "$1" = remove ] || exit 0
if [ -z "$root" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	# Stopping lets the agent flush; what it cannot send stays spooled.
	systemctl stop hogrelay.service || true
fi
if command -v systemctl >/dev/null 2>&1; then
	systemctl ${root:+--root="$root"} disable --quiet hogrelay.service || true
fi
exit 0
EOF

cat >"$debian/postrm" <<'EOF'
#!/bin/sh
set -e
root=${DPKG_ROOT:-}
case $1 in
remove | purge)
	if [ -z "$root" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
		systemctl daemon-reload || true
	fi
	;;
esac
if [ "$1" = purge ]; then
	# dpkg has removed config.toml; the env file and any .dpkg-old go too.
	rm -rf "$root/etc/hogrelay"
	cat <<-MSG
	hogrelay: removed /etc/hogrelay. Kept /var/lib/hogrelay (unsent events and the
	flag cache) and the hogrelay user. If you no longer need them:
	  rm -r /var/lib/hogrelay; userdel hogrelay
	MSG
fi
exit 0
EOF
chmod 0755 "$debian/postinst" "$debian/prerm" "$debian/postrm"
chmod 0644 "$debian/control" "$debian/conffiles" "$debian/md5sums"

mkdir -p "$out"
deb=$out/hogrelay_${version}_$arch.deb
dpkg-deb --root-owner-group --build "$stage" "$deb" >/dev/null
echo "built $deb"
