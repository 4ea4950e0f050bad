#!/usr/bin/env bash
# Build the Hemostat container image with podman, on a machine with no Docker engine and no
# reachable container registry (this project's CI). Users with a registry keep building the
# Dockerfile on the official Python image; this builds the same Dockerfile on a Debian base made
# from Debian's own packages, offline from a wheelhouse made on the host.
#
#   scripts/build-image.sh [IMAGE]     (default localhost/hemostat:dev)
#
# Prints the image name on stdout (progress goes to stderr). Needs root, podman, runc and
# mmdebstrap (scripts/install-services.sh installs them). The base image is made once and reused.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
image="${1:-localhost/hemostat:dev}"
base="${HEMOSTAT_BASE_IMAGE:-localhost/hemostat-base:bookworm}"
cache="${HEMOSTAT_CACHE_DIR:-$root/.cache}"
python="${PYTHON:-$root/.venv/bin/python}"
[[ -x "$python" ]] || python=python3
# crun fails on these machines' hybrid cgroups; runc works.
podman=(podman --runtime runc)

for tool in podman runc mmdebstrap; do
  command -v "$tool" >/dev/null || { echo "build-image: $tool is not installed (scripts/install-services.sh)" >&2; exit 2; }
done
mkdir -p "$cache"

if ! "${podman[@]}" image exists "$base"; then
  # python3-venv: the Dockerfile installs into a virtualenv; git: the git-deploys probe needs it,
  # and with it in the base the Dockerfile skips its apt-get step (which needs a network).
  echo "build-image: making $base from Debian packages (mmdebstrap)" >&2
  rootfs="$(mktemp "$cache/rootfs.XXXXXX.tar")"
  trap 'rm -f "$rootfs"' EXIT
  mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,git,ca-certificates \
    bookworm "$rootfs" >&2
  "${podman[@]}" import --quiet "$rootfs" "$base" >&2
fi

# Every wheel the image installs, built by the host's pip (which reaches the package index);
# the build containers then install with --no-index. setuptools and wheel build hemostat itself.
# async-timeout: Debian's python3 is 3.11.2 and redis needs it below 3.11.3, a marker the host's
# newer Python resolves away (pip cannot evaluate markers for another interpreter). Warnings
# about the host's own local indexes may show on stderr.
wheelhouse="$cache/wheelhouse"
mkdir -p "$wheelhouse"
echo "build-image: wheelhouse in $wheelhouse" >&2
"$python" -m pip wheel --quiet --wheel-dir "$wheelhouse" "$root" "setuptools>=77" wheel \
  "async-timeout>=4.0.3" >&2

echo "build-image: podman build $image on $base" >&2
# --layers=false: podman 4 neither keys a cached RUN on what its `--mount=type=bind,from=build`
# holds (a stale install was reused after the code changed) nor finds that mount when the build
# stage itself came from the cache. Both stages are quick from the local wheelhouse.
"${podman[@]}" build --quiet --isolation chroot --layers=false \
  --volume "$wheelhouse:/wheelhouse:ro" \
  --build-arg "PYTHON_IMAGE=$base" \
  --build-arg "PIP_EXTRA_ARGS=--no-index --find-links=/wheelhouse" \
  --tag "$image" "$root" >&2
echo "$image"
