#!/bin/sh
# image.sh [TAG]: build cgwd's container image from a static binary (build.sh)
# and Containerfile (FROM scratch), with podman, or docker when podman is
# missing. No registry is contacted: the context holds the binary alone, so
# the build takes seconds once Go's build cache is warm.
set -eu
tag=${1:-localhost/cgwd:latest}
here=$(cd "$(dirname "$0")" && pwd)
if command -v podman >/dev/null 2>&1; then
	engine=podman
elif command -v docker >/dev/null 2>&1; then
	engine=docker
else
	echo "image.sh: neither podman nor docker is installed (Debian: apt-get install podman runc)" >&2
	exit 1
fi
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
sh "$here/build.sh" "$ctx/cgwd"
"$engine" build --build-arg VERSION="${VERSION:-devel}" -t "$tag" -f "$here/Containerfile" "$ctx"
echo "image.sh: built $tag with $engine"
