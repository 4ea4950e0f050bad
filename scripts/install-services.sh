#!/usr/bin/env bash
# Installs what the test suite runs for real: PostgreSQL server binaries (the suite starts its
# own throwaway cluster; no system service is started) and the other real parts the tests run
# (each listed below with why). As root only; otherwise says what is missing and leaves it to the
# tests to fail or skip.
set -euo pipefail

need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || need+=(postgresql)
command -v redis-server >/dev/null || need+=(redis-server)
command -v git >/dev/null || need+=(git)
command -v openssl >/dev/null || need+=(openssl)  # tests/probes/test_kube_http.py makes its TLS certificates
command -v prometheus >/dev/null || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)
# The container image test: podman with runc (crun fails on hybrid cgroups) and a Debian base
# made by mmdebstrap, since no container registry is reachable.
command -v podman >/dev/null || need+=(podman fuse-overlayfs slirp4netns)
command -v runc >/dev/null || need+=(runc)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
# The web view's browser test (tests/agent/test_web_view.py): Playwright drives Debian's chromium.
command -v chromium >/dev/null || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-services: missing ${need[*]}; install them (not root, so not doing it here)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian starts the packaged services on install; the tests run their own on free ports.
service redis-server stop >/dev/null 2>&1 || true
service postgresql stop >/dev/null 2>&1 || true
service prometheus stop >/dev/null 2>&1 || true
service prometheus-alertmanager stop >/dev/null 2>&1 || true
