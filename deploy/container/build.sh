#!/bin/sh
# build.sh OUTPUT: build cgwd exactly as the container image does: a static
# binary (CGO_ENABLED=0, no libc, no dynamic loader), trimmed paths, stripped,
# with the version stamped in. The Dockerfile runs this script, and so does
# deploy/container's Go test, so the tested binary is the shipped one.
set -eu
out=${1:?usage: build.sh OUTPUT}
cd "$(dirname "$0")/../.."
CGO_ENABLED=0 go build -trimpath -buildvcs=false \
	-ldflags "-s -w -X github.com/cgwd/cgwd/pkg/version.Version=${VERSION:-devel}" \
	-o "$out" ./cmd/cgwd
