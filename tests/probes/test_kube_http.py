"""The probes' plain Kubernetes reads (agent/model/kube_http.py) against a real TLS server on
loopback, with certificates made by `openssl`: the cluster's CA is checked, a client certificate
is presented, tls-server-name is honoured, and only the credentials kubectl would send are sent.
Credentials only the official client can produce (exec plugins, auth providers, impersonation,
proxies) leave the reads to it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.model import TemporaryError
from agent.model.context import ProbeContext
from agent.model.kube_http import KubeEndpoint, endpoint_for, kubeconfig_endpoint
from probes._kube import plain_get
from tests.services import missing

PODS = "/api/v1/namespaces/shop/pods"
WHAT = ("list", "pods", "shop", "")


@dataclass
class Pki:
    """A CA, a server certificate for `kubernetes.default` (not 127.0.0.1), a client certificate."""

    root: Path

    def path(self, name: str) -> Path:
        return self.root / name

    def b64(self, name: str) -> str:
        return base64.b64encode(self.path(name).read_bytes()).decode()


def _openssl(pki: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=pki, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    if shutil.which("openssl") is None:
        missing("no openssl binary", "scripts/install-services.sh installs it")
    root = tmp_path_factory.mktemp("pki")
    _openssl(root, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "2", "-subj", "/CN=test-cluster-ca")
    for name, cn, ext in (("server", "kubernetes.default", "subjectAltName=DNS:kubernetes.default"),
                          ("client", "alice", "extendedKeyUsage=clientAuth")):
        _openssl(root, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={cn}")
        (root / f"{name}.ext").write_text(ext + "\n")
        _openssl(root, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext")
    return Pki(root)


@dataclass
class TlsApi:
    """An HTTPS server answering `PODS` with an empty PodList; it records each request's
    Authorization header and whether a client certificate came with it."""

    pki: Pki
    require_client_cert: bool = False
    seen: list[dict[str, Any]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"https://127.0.0.1:{self._server.server_port}"

    def start(self) -> TlsApi:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                peer = self.connection.getpeercert() if isinstance(self.connection, ssl.SSLSocket) else None
                owner.seen.append({"path": self.path, "authorization": self.headers.get("Authorization"),
                                   "client": dict(x[0] for x in peer["subject"])["commonName"] if peer else None})
                body = json.dumps({"kind": "PodList", "items": []}).encode()
                self.send_response(200 if self.path.startswith(PODS) else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.pki.path("server.crt"), self.pki.path("server.key"))
        if self.require_client_cert:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(self.pki.path("ca.crt"))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@pytest.fixture
def api(pki: Pki) -> Iterator[TlsApi]:
    server = TlsApi(pki).start()
    yield server
    server.stop()


def _kubeconfig(tmp_path: Path, cluster: dict[str, Any], user: dict[str, Any]) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": cluster}], "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    return path


def _get(endpoint: KubeEndpoint) -> dict[str, Any]:
    ctx = ProbeContext(timeout_s=5, kube_endpoint=lambda: endpoint)
    body, cut = asyncio.run(plain_get(ctx, endpoint, WHAT, PODS, [("labelSelector", "app=web")], 1 << 20))
    assert not cut
    return dict(json.loads(body))


def test_the_cluster_ca_is_checked_and_tls_server_name_honoured(tmp_path: Path, pki: Pki, api: TlsApi) -> None:
    trusted = _kubeconfig(tmp_path, {"server": api.url, "certificate-authority-data": pki.b64("ca.crt"),
                                     "tls-server-name": "kubernetes.default"}, {"token": "t0k3n"})
    endpoint = kubeconfig_endpoint(trusted, None)
    assert endpoint is not None and _get(endpoint)["kind"] == "PodList"
    assert api.seen[-1] == {"path": f"{PODS}?labelSelector=app%3Dweb", "authorization": "Bearer t0k3n",
                            "client": None}
    # the certificate names kubernetes.default: without tls-server-name 127.0.0.1 does not match it
    wrong_name = kubeconfig_endpoint(_kubeconfig(tmp_path, {"server": api.url, "certificate-authority-data":
                                                            pki.b64("ca.crt")}, {"token": "t0k3n"}), None)
    assert wrong_name is not None
    with pytest.raises(TemporaryError, match=r"unreachable: .*(mismatch|doesn't match|not valid for)"):
        _get(wrong_name)


def test_a_server_no_configured_ca_vouches_for_is_refused_unless_told_to_skip(
        tmp_path: Path, api: TlsApi) -> None:
    untrusted = kubeconfig_endpoint(_kubeconfig(tmp_path, {"server": api.url}, {"token": "t0k3n"}), None)
    assert untrusted is not None
    with pytest.raises(TemporaryError, match="CERTIFICATE_VERIFY_FAILED") as refused:
        _get(untrusted)
    assert refused.value.code == "kube_unreachable" and api.seen == []  # the token never left
    skipping = kubeconfig_endpoint(_kubeconfig(tmp_path, {"server": api.url, "insecure-skip-tls-verify": True},
                                               {"token": "t0k3n"}), None)
    assert skipping is not None and _get(skipping)["kind"] == "PodList"


def test_a_client_certificate_from_inline_data_is_presented_and_not_left_on_disk(
        tmp_path: Path, pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    server = TlsApi(pki, require_client_cert=True).start()
    try:
        monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
        (tmp_path / "tmp").mkdir()
        import tempfile
        monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
        config = _kubeconfig(tmp_path, {"server": server.url, "certificate-authority-data": pki.b64("ca.crt"),
                                        "tls-server-name": "kubernetes.default"},
                             {"client-certificate-data": pki.b64("client.crt"),
                              "client-key-data": pki.b64("client.key")})
        endpoint = kubeconfig_endpoint(config, None)
        assert endpoint is not None and _get(endpoint)["kind"] == "PodList"
        assert server.seen[-1]["client"] == "alice" and server.seen[-1]["authorization"] is None
        assert list((tmp_path / "tmp").iterdir()) == []  # the key was written 0600 and removed
    finally:
        server.stop()


def test_a_token_file_is_read_per_request_so_a_rotated_token_is_used(tmp_path: Path, pki: Pki,
                                                                      api: TlsApi) -> None:
    (tmp_path / "token").write_text("first\n")
    config = _kubeconfig(tmp_path, {"server": api.url, "certificate-authority": "pki/ca.crt",
                                    "tls-server-name": "kubernetes.default"}, {"tokenFile": "token"})
    (tmp_path / "pki").mkdir()
    shutil.copy(pki.path("ca.crt"), tmp_path / "pki" / "ca.crt")  # paths are relative to the kubeconfig
    endpoint = kubeconfig_endpoint(config, None)
    assert endpoint is not None
    _get(endpoint)
    (tmp_path / "token").write_text("second\n")
    _get(endpoint)
    assert [s["authorization"] for s in api.seen] == ["Bearer first", "Bearer second"]


@pytest.mark.parametrize("user", [
    {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "aws", "args": ["eks", "get-token"]}},
    {"auth-provider": {"name": "oidc", "config": {"id-token": "x"}}},
    {"token": "t", "as": "admin"},
])
def test_credentials_only_the_official_client_can_produce_leave_the_reads_to_it(
        tmp_path: Path, user: dict[str, Any]) -> None:
    assert kubeconfig_endpoint(_kubeconfig(tmp_path, {"server": "https://k:6443"}, user), None) is None
    proxied = _kubeconfig(tmp_path, {"server": "https://k:6443", "proxy-url": "http://proxy:3128"}, {"token": "t"})
    assert kubeconfig_endpoint(proxied, None) is None
    assert kubeconfig_endpoint(f"{proxied}:{proxied}", None) is None  # a merged list: the loader merges


def test_in_cluster_comes_first_as_with_the_official_loader(tmp_path: Path) -> None:
    sa = tmp_path / "serviceaccount"
    sa.mkdir()
    (sa / "token").write_text("sa-token")
    (sa / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    kubeconfig = _kubeconfig(tmp_path, {"server": "https://elsewhere:6443"}, {"token": "t"})
    env = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}
    endpoint = endpoint_for(kubeconfig, None, environ=env, in_cluster=sa)
    assert endpoint is not None and endpoint.server == "https://[fd00::1]:443"
    assert endpoint.headers() == {"Authorization": "Bearer sa-token"} and endpoint.ca_file == str(sa / "ca.crt")
    outside = endpoint_for(kubeconfig, None, environ={}, in_cluster=sa)
    assert outside is not None and outside.server == "https://elsewhere:6443"
