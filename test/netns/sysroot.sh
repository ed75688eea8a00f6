#!/usr/bin/env bash
# sysroot.sh [DIR]: build, once, the Debian 12 root filesystem that
# TestSystemdUnitLab boots with systemd-nspawn to run deploy/systemd/cgwd.service
# under a real systemd. It comes from Debian's packages (mmdebstrap, minbase
# plus systemd, and procps for the unit's /bin/kill), from deb.debian.org
# unless MIRROR names another: two minutes here, about 200 MB on disk. DIR defaults to $CGWD_SYSROOT or
# /var/cache/cgwd/sysroot-bookworm; DIR/.cgwd-sysroot records what was built,
# and a DIR that matches is kept. The test boots it read-only (a tmpfs overlay
# takes the writes), so one build serves every run.
set -euo pipefail
DIR=${1:-${CGWD_SYSROOT:-/var/cache/cgwd/sysroot-bookworm}}
SUITE=bookworm
PACKAGES=systemd,systemd-sysv,procps
want="$SUITE minbase $PACKAGES"

if [[ -f $DIR/.cgwd-sysroot && $(cat "$DIR/.cgwd-sysroot") == "$want" ]]; then
	echo "sysroot.sh: $DIR is ready ($want)"
	exit 0
fi
command -v mmdebstrap >/dev/null || { echo "sysroot.sh: mmdebstrap is not installed (apt-get install mmdebstrap)" >&2; exit 1; }
mkdir -p "$(dirname "$DIR")"
tmp=$DIR.new
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
# shellcheck disable=SC2086 # MIRROR may be empty
mmdebstrap --quiet --variant=minbase --include="$PACKAGES" "$SUITE" "$tmp" ${MIRROR:-}
echo "$want" >"$tmp/.cgwd-sysroot"
rm -rf "$DIR"
mv "$tmp" "$DIR"
echo "sysroot.sh: built $DIR ($want)"
