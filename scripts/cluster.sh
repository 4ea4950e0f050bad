#!/usr/bin/env bash
# A real Kubernetes control plane on loopback for the tests: etcd, kube-apiserver (TLS, RBAC,
# ServiceAccount tokens, admission incl. ResourceQuota), kube-controller-manager, kube-scheduler,
# and kwok simulating the nodes worker-1..N (Ready, with cpu/memory) and their pods' lifecycle.
#
#   scripts/cluster.sh up   [DIR]   build if needed (scripts/build-cluster.sh), start, wait until
#                                   /readyz is ok, the nodes are Ready and default/default exists;
#                                   prints the admin kubeconfig's path as the LAST stdout line
#   scripts/cluster.sh down [DIR]   stop what `up` started in DIR (pid files) and remove DIR
#
# DIR defaults to .cache/cluster. Every port is a free loopback port picked at start. DIR holds
# pki/ (CA, serving and client certs, the ServiceAccount key pair), tokens.csv (static token
# users), *.kubeconfig, logs/, *.pid, and cluster.env (server URL, CA, tokens) for the tests.
# Env: HEMOSTAT_CLUSTER_NODES (default 3), HEMOSTAT_CLUSTER_TIMEOUT (seconds, default 120).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cmd="${1:-}"
dir="${2:-$root/.cache/cluster}"
nodes="${HEMOSTAT_CLUSTER_NODES:-3}"
timeout_s="${HEMOSTAT_CLUSTER_TIMEOUT:-120}"
components=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

log() { echo "cluster: $*" >&2; }

alive() { [[ -f "$dir/$1.pid" ]] && kill -0 "$(cat "$dir/$1.pid")" 2>/dev/null; }

stop_all() {
  local c pid i
  for ((i = ${#components[@]} - 1; i >= 0; i--)); do  # reverse order: etcd last
    c="${components[$i]}"
    [[ -f "$dir/$c.pid" ]] || continue
    pid="$(cat "$dir/$c.pid")"
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$dir/$c.pid"
  done
}

down() {
  [[ -d "$dir" ]] || { log "nothing at $dir"; return 0; }
  stop_all
  rm -rf "$dir"
  log "stopped and removed $dir"
}

fail() {
  log "$*"
  local c
  for c in "${components[@]}"; do
    [[ -f "$dir/logs/$c.log" ]] && { echo "----- $c (last lines)" >&2; tail -n 15 "$dir/logs/$c.log" >&2; }
  done
  stop_all
  exit 1
}

free_ports() {  # N distinct free loopback ports, held together while picked
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

pki() {  # CA, serving and client certificates (EC P-256), and the ServiceAccount RSA key pair
  local p="$dir/pki"
  mkdir -p "$p"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
    -keyout "$p/ca.key" -out "$p/ca.crt" -subj "/CN=hemostat-test-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    2>/dev/null
  cert() {  # name subject extendedKeyUsage [subjectAltName]
    local ext="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=$3"
    [[ -n "${4:-}" ]] && ext+="
subjectAltName=$4"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout "$p/$1.key" -out "$p/$1.csr" -subj "$2" 2>/dev/null
    openssl x509 -req -in "$p/$1.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" -CAcreateserial -days 30 \
      -out "$p/$1.crt" -extfile <(echo "$ext") 2>/dev/null
    rm -f "$p/$1.csr"
  }
  local san="IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert apiserver "/CN=kube-apiserver" serverAuth "$san"
  cert admin "/O=system:masters/CN=hemostat-admin" clientAuth
  cert kube-controller-manager "/CN=system:kube-controller-manager" clientAuth
  cert kube-scheduler "/CN=system:kube-scheduler" clientAuth
  cert kwok "/O=system:masters/CN=kwok-controller" "serverAuth,clientAuth" "IP:127.0.0.1,DNS:localhost"
  # the aggregation layer's front proxy: its own CA, and the client cert the apiserver proxies with
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
    -keyout "$p/front-proxy-ca.key" -out "$p/front-proxy-ca.crt" -subj "/CN=hemostat-test-front-proxy-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    2>/dev/null
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$p/front-proxy-client.key" -out "$p/front-proxy-client.csr" -subj "/CN=front-proxy-client" 2>/dev/null
  openssl x509 -req -in "$p/front-proxy-client.csr" -CA "$p/front-proxy-ca.crt" -CAkey "$p/front-proxy-ca.key" \
    -CAcreateserial -days 30 -out "$p/front-proxy-client.crt" \
    -extfile <(printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n') \
    2>/dev/null
  rm -f "$p/front-proxy-client.csr"
  openssl genrsa -out "$p/sa.key" 2048 2>/dev/null
  openssl rsa -in "$p/sa.key" -pubout -out "$p/sa.pub" 2>/dev/null
  chmod 600 "$p"/*.key
}

kubeconfig() {  # name user-cert-basename
  cat > "$dir/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: hemostat-test
  cluster:
    server: $server
    certificate-authority: $dir/pki/ca.crt
users:
- name: $1
  user:
    client-certificate: $dir/pki/$2.crt
    client-key: $dir/pki/$2.key
contexts:
- name: $1@hemostat-test
  context: {cluster: hemostat-test, user: $1, namespace: default}
current-context: $1@hemostat-test
EOF
  chmod 600 "$dir/$1.kubeconfig"
}

start() {  # name args...: in its own session, output to logs/name.log, pid to name.pid
  local name="$1"; shift
  setsid "$bin/$name" "$@" > "$dir/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$dir/$name.pid"
}

api() {  # method path [json body]: the admin's request; prints the body, fails on HTTP >= 400
  curl -sS --fail-with-body --max-time 10 --cacert "$dir/pki/ca.crt" --cert "$dir/pki/admin.crt" \
    --key "$dir/pki/admin.key" -X "$1" -H 'Content-Type: application/json' \
    ${3:+--data-binary "$3"} "$server$2"
}

wait_for() {  # what command...: retry until it succeeds or the deadline passes
  local what="$1"; shift
  until "$@" >/dev/null 2>&1; do
    (( SECONDS < deadline )) || fail "timed out after ${timeout_s}s waiting for $what"
    for c in "${components[@]}"; do
      if [[ -f "$dir/$c.pid" ]] && ! alive "$c"; then fail "$c exited while waiting for $what"; fi
    done
    sleep 0.2
  done
  log "$what after $((SECONDS - started)) s"
}

nodes_ready() {
  api GET /api/v1/nodes | python3 -c '
import json, sys
items = json.load(sys.stdin)["items"]
ready = [n for n in items if any(c["type"] == "Ready" and c["status"] == "True"
                                 for c in n.get("status", {}).get("conditions", []))]
sys.exit(0 if len(ready) >= int(sys.argv[1]) else 1)' "$nodes"
}

up() {
  if alive kube-apiserver && [[ -f "$dir/admin.kubeconfig" ]]; then
    log "already up in $dir"
    echo "$dir/admin.kubeconfig"
    return 0
  fi
  [[ -d "$dir" ]] && { stop_all; rm -rf "$dir"; }
  bin="$("$root/scripts/build-cluster.sh" | tail -n 1)"
  started=$SECONDS
  deadline=$((SECONDS + timeout_s))
  mkdir -p "$dir/logs" "$dir/etcd"
  dir="$(cd "$dir" && pwd)"
  chmod 700 "$dir"
  read -r etcd_port peer_port api_port kcm_port sched_port kwok_port <<< "$(free_ports 6)"
  server="https://127.0.0.1:$api_port"
  pki

  # Static token users: an admin, and two ordinary users for the approval/RBAC tests.
  admin_token="$(openssl rand -hex 16)" alice_token="$(openssl rand -hex 16)" bob_token="$(openssl rand -hex 16)"
  cat > "$dir/tokens.csv" <<EOF
$admin_token,hemostat-admin-token,uid-admin,"system:masters"
$alice_token,alice,uid-alice,"hemostat:approvers,hemostat:dev"
$bob_token,bob,uid-bob,"hemostat:dev"
EOF
  chmod 600 "$dir/tokens.csv"
  kubeconfig admin admin
  kubeconfig kube-controller-manager kube-controller-manager
  kubeconfig kube-scheduler kube-scheduler
  kubeconfig kwok kwok

  start etcd --name default --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "default=http://127.0.0.1:$peer_port" --unsafe-no-fsync --log-level warn
  wait_for "etcd healthy" curl -sf --max-time 2 "http://127.0.0.1:$etcd_port/health"

  # It listens on 127.0.0.1 only, but advertises 192.0.2.1 (TEST-NET-1, never routed): the
  # `kubernetes` Service's Endpoints may not hold a loopback address, and with this the endpoint
  # reconciler keeps default/kubernetes and its EndpointSlice as on any cluster.
  # Audit (metadata only) of what ServiceAccounts outside kube-system and the static users ask,
  # so a test can list the calls Hemostat made under its chart's ServiceAccount (logs/audit.log).
  cat > "$dir/audit-policy.yaml" <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted]
rules:
- level: None
  userGroups: ["system:serviceaccounts:kube-system", "system:nodes", "system:masters"]
- level: Metadata
  userGroups: ["system:serviceaccounts", "hemostat:dev"]
- level: None
EOF
  start kube-apiserver --etcd-servers "http://127.0.0.1:$etcd_port" \
    --audit-policy-file "$dir/audit-policy.yaml" --audit-log-path "$dir/logs/audit.log" \
    --bind-address 127.0.0.1 --secure-port "$api_port" \
    --advertise-address 192.0.2.1 \
    --tls-cert-file "$dir/pki/apiserver.crt" --tls-private-key-file "$dir/pki/apiserver.key" \
    --client-ca-file "$dir/pki/ca.crt" --token-auth-file "$dir/tokens.csv" \
    --requestheader-client-ca-file "$dir/pki/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$dir/pki/front-proxy-client.crt" --proxy-client-key-file "$dir/pki/front-proxy-client.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$dir/pki/sa.pub" --service-account-signing-key-file "$dir/pki/sa.key" \
    --authorization-mode Node,RBAC \
    --enable-admission-plugins NamespaceLifecycle,LimitRanger,ServiceAccount,DefaultStorageClass,DefaultTolerationSeconds,NodeRestriction,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy,ResourceQuota,PodSecurity,Priority \
    --service-cluster-ip-range 10.0.0.0/24 --allow-privileged=true --profiling=false
  wait_for "kube-apiserver /readyz" api GET /readyz

  start kube-controller-manager --kubeconfig "$dir/kube-controller-manager.kubeconfig" \
    --authentication-kubeconfig "$dir/kube-controller-manager.kubeconfig" \
    --authorization-kubeconfig "$dir/kube-controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$kcm_port" --leader-elect=false \
    --use-service-account-credentials=true --service-account-private-key-file "$dir/pki/sa.key" \
    --root-ca-file "$dir/pki/ca.crt" --controllers '*' \
    --cluster-signing-cert-file "$dir/pki/ca.crt" --cluster-signing-key-file "$dir/pki/ca.key" \
    --service-cluster-ip-range 10.0.0.0/24 --profiling=false \
    --horizontal-pod-autoscaler-sync-period 2s
  start kube-scheduler --kubeconfig "$dir/kube-scheduler.kubeconfig" \
    --authentication-kubeconfig "$dir/kube-scheduler.kubeconfig" \
    --authorization-kubeconfig "$dir/kube-scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$sched_port" --leader-elect=false --profiling=false
  # kwok's Logs CRD (from the kwok module, kustomize/crd/bases): a Logs object names a pod's log
  # file, which kwok's kubelet API then serves to `kubectl logs` (also -f) through the apiserver.
  api POST /apis/apiextensions.k8s.io/v1/customresourcedefinitions \
    "$(cat "$root/tests/cluster/controlplane/kwok/logs-crd.json")" > /dev/null || fail "could not create kwok's Logs CRD"
  start kwok --kubeconfig "$dir/kwok.kubeconfig" --config "$bin/kwok-stages.yaml" --enable-crds Logs \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
    --node-ip 127.0.0.1 --node-port "$kwok_port" --server-address "127.0.0.1:$kwok_port" \
    --tls-cert-file "$dir/pki/kwok.crt" --tls-private-key-file "$dir/pki/kwok.key" \
    --node-lease-duration-seconds 40 --cidr 10.244.0.0/16

  local i
  for ((i = 1; i <= nodes; i++)); do
    api POST /api/v1/nodes "$(cat <<EOF
{"apiVersion": "v1", "kind": "Node",
 "metadata": {"name": "worker-$i",
   "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
   "labels": {"kubernetes.io/hostname": "worker-$i", "kubernetes.io/os": "linux",
              "kubernetes.io/arch": "amd64", "type": "kwok",
              "topology.kubernetes.io/zone": "zone-$(( (i - 1) % 2 + 1 ))"}},
 "status": {"allocatable": {"cpu": "4", "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi"},
            "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi"}}}
EOF
)" > /dev/null || fail "could not create node worker-$i"
  done

  wait_for "$nodes nodes Ready" nodes_ready
  wait_for "ServiceAccount default/default" api GET /api/v1/namespaces/default/serviceaccounts/default

  cat > "$dir/cluster.env" <<EOF
SERVER=$server
CA=$dir/pki/ca.crt
KUBECONFIG=$dir/admin.kubeconfig
ADMIN_CERT=$dir/pki/admin.crt
ADMIN_KEY=$dir/pki/admin.key
ADMIN_TOKEN=$admin_token
ALICE_TOKEN=$alice_token
BOB_TOKEN=$bob_token
TOKENS_FILE=$dir/tokens.csv
BIN=$bin
ETCD=http://127.0.0.1:$etcd_port
NODES=$nodes
STARTUP_SECONDS=$((SECONDS - started))
EOF
  chmod 600 "$dir/cluster.env"
  log "up in $((SECONDS - started)) s: $server ($(cat "$bin/VERSIONS" | tr '\n' ' '))"
  echo "$dir/admin.kubeconfig"
}

case "$cmd" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down [DIR]" >&2; exit 2 ;;
esac
