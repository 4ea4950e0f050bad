#!/usr/bin/env bash
# Build a real Kubernetes control plane for the tests (tests/cluster/), from Go modules only:
#   kube-apiserver, kube-controller-manager, kube-scheduler  (k8s.io/kubernetes, tests/cluster/controlplane/kube)
#   etcd                                                      (go.etcd.io/etcd/server/v3, .../controlplane/etcd)
#   kwok (simulated nodes and pod lifecycle)                  (sigs.k8s.io/kwok, .../controlplane/kwok)
# Each comes from its own small wrapper module whose go.mod/go.sum pin the versions; nothing but
# the Go module proxy is reached. The binaries go to .cache/kube-<version>/bin/ and are reused
# when that directory's stamp matches the wrapper modules (so a version bump rebuilds).
# Prints the bin directory as the last line of stdout; everything else goes to stderr.
#
# Env: HEMOSTAT_CACHE_DIR (default .cache), GO (default go), HEMOSTAT_CLUSTER_REBUILD=1 to force.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${HEMOSTAT_CACHE_DIR:-$root/.cache}"
mods="$root/tests/cluster/controlplane"
go="${GO:-go}"
export GOTOOLCHAIN=local GOFLAGS="${GOFLAGS:--buildvcs=false} -mod=readonly"

components=(kube-apiserver kube-controller-manager kube-scheduler etcd kwok)

version_of() {  # the version a wrapper module requires of `module`
  awk -v m="$1" '$1 == m && $2 ~ /^v/ {print $2; exit} $1 == "require" && $2 == m {print $3; exit}' "$2/go.mod"
}

kube_version="$(version_of k8s.io/kubernetes "$mods/kube")"
[[ -n "$kube_version" ]] || { echo "build-cluster: no k8s.io/kubernetes version in $mods/kube/go.mod" >&2; exit 1; }
bin="$cache/kube-$kube_version/bin"
stamp="$(cat "$mods"/*/go.mod "$mods"/*/go.sum "$mods"/*/*.go "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16)"

have_all() {
  [[ -f "$bin/.stamp" && "$(cat "$bin/.stamp")" == "$stamp" ]] || return 1
  for c in "${components[@]}"; do [[ -x "$bin/$c" ]] || return 1; done
}

if [[ "${HEMOSTAT_CLUSTER_REBUILD:-}" != 1 ]] && have_all; then
  echo "build-cluster: reusing $bin" >&2
  echo "$bin"
  exit 0
fi

command -v "$go" >/dev/null || { echo "build-cluster: no Go toolchain ($go)" >&2; exit 1; }
tmp="$bin.part"
rm -rf "$tmp"
mkdir -p "$tmp"
started=$SECONDS

# Version stamps as hack/lib/version.sh sets them, so `kubectl version` shows the server's real
# version (not v0.0.0-master) and the apiserver's emulation version is the binary's own.
minor="${kube_version#v1.}"; minor="${minor%%.*}"
build_date="$(cd "$mods/kube" && "$go" list -m -f '{{if .Time}}{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}{{end}}' k8s.io/kubernetes)"
ldflags="-s -w"
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  ldflags+=" -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=${build_date:-1970-01-01T00:00:00Z}"
done

echo "build-cluster: kube $kube_version (apiserver, controller-manager, scheduler) ..." >&2
(cd "$mods/kube" && "$go" build -trimpath -ldflags="$ldflags" -o "$tmp/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler)

etcd_version="$(version_of go.etcd.io/etcd/server/v3 "$mods/etcd")"
echo "build-cluster: etcd $etcd_version ..." >&2
(cd "$mods/etcd" && "$go" build -trimpath -ldflags="-s -w" -o "$tmp/etcd" .)

kwok_version="$(version_of sigs.k8s.io/kwok "$mods/kwok")"
echo "build-cluster: kwok $kwok_version ..." >&2
(cd "$mods/kwok" && "$go" build -trimpath \
  -ldflags="-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${kwok_version#v}" -o "$tmp/" sigs.k8s.io/kwok/cmd/kwok)

# kwok's own stage definitions (the ones `kwokctl` uses): nodes become Ready and keep a lease,
# pods are scheduled -> Running/Ready at once, and complete or go away as a kubelet's would.
kwok_dir="$(cd "$mods/kwok" && "$go" list -m -f '{{.Dir}}' sigs.k8s.io/kwok)"
for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
         pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
  echo "---"
  cat "$kwok_dir/kustomize/stage/$f"
done > "$tmp/kwok-stages.yaml"

echo "$stamp" > "$tmp/.stamp"
printf 'kubernetes %s\netcd %s\nkwok %s\n' "$kube_version" "$etcd_version" "$kwok_version" > "$tmp/VERSIONS"
rm -rf "$bin"
mv "$tmp" "$bin"
echo "build-cluster: built ${components[*]} in $((SECONDS - started)) s -> $bin" >&2
echo "$bin"
