"""The probes' Kubernetes reads as plain HTTPS GETs, without the official client.

Importing `kubernetes` costs about 150 ms of CPU (every model class of the API, oauthlib, the
config loaders), which in a one-shot `hemostat diagnose` is more than the reads themselves take.
For the static credentials most clusters hand out (a service-account token in the pod, a bearer
token, a client certificate, basic auth; a CA or `insecure-skip-tls-verify`), `KubeEndpoint` is
built from the in-cluster files or the kubeconfig directly and the reads go out over httpx.
Credentials only the official client knows how to obtain (an `exec` plugin such as
`aws eks get-token` or `gke-gcloud-auth-plugin`, an `auth-provider`, impersonation, a proxy, a
merged multi-file KUBECONFIG) give `None`: the probes then read through the official client,
as before. Writes (the actions) always use the official client.

The order of the official loader is kept: in-cluster first, then the kubeconfig.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import os
import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

IN_CLUSTER = Path("/var/run/secrets/kubernetes.io/serviceaccount")
# Fields the plain reader understands; any other user field (exec, auth-provider, as, ...) means
# the official client must obtain or shape the credentials.
USER_FIELDS = frozenset({"token", "tokenFile", "client-certificate", "client-certificate-data",
                         "client-key", "client-key-data", "username", "password"})
CLUSTER_FIELDS = frozenset({"server", "certificate-authority", "certificate-authority-data",
                            "insecure-skip-tls-verify", "tls-server-name", "extensions"})


class KubeStatusError(Exception):
    """A non-2xx answer: what `probes._kube.to_error` reads (`status`, `body`), as it reads the
    official client's ApiException."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}")
        self.status, self.body = status, body


@dataclass(frozen=True)
class KubeEndpoint:
    """Where the API server is and how to prove who we are, for plain GETs."""

    server: str
    ca_file: str | None = None
    ca_data: str | None = None  # PEM
    insecure: bool = False
    tls_server_name: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    cert_data: bytes | None = field(default=None, repr=False)
    key_data: bytes | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    token_file: str | None = None  # read per request: bound service-account tokens rotate
    basic: tuple[str, str] | None = field(default=None, repr=False)

    @property
    def host(self) -> str:
        """host:port, for the breaker's key (as the official client's path names it)."""
        return self.server.split("://", 1)[-1].rstrip("/")

    def headers(self) -> dict[str, str]:
        token = self.token
        if self.token_file:
            token = Path(self.token_file).read_text().strip()
        if token:
            return {"Authorization": f"Bearer {token}"}
        if self.basic:
            pair = base64.b64encode(f"{self.basic[0]}:{self.basic[1]}".encode()).decode()
            return {"Authorization": f"Basic {pair}"}
        return {}

    def request_extensions(self) -> dict[str, Any]:
        return {"sni_hostname": self.tls_server_name} if self.tls_server_name else {}

    def verify(self) -> ssl.SSLContext | bool:
        """The TLS context for this server (built once per endpoint), or False for plain http."""
        if not self.server.startswith("https://"):
            return False
        return _tls_context(self)


@functools.cache
def _tls_context(endpoint: KubeEndpoint) -> ssl.SSLContext:
    client_cert = bool(endpoint.cert_file or endpoint.cert_data)
    if endpoint.insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif endpoint.ca_file or endpoint.ca_data:
        context = ssl.create_default_context(cafile=endpoint.ca_file, cadata=endpoint.ca_data)
    elif client_cert:
        context = ssl.create_default_context()  # its own: a client certificate is loaded into it
    else:
        from agent.model.tls import shared_tls

        return shared_tls()  # a public CA signed the server's certificate
    if client_cert:
        with _pem_files(endpoint) as (cert, key):
            context.load_cert_chain(cert, key)
    return context


@contextlib.contextmanager
def _pem_files(endpoint: KubeEndpoint) -> Iterator[tuple[str, str | None]]:
    """The client certificate and key as files, which is all `load_cert_chain` reads: inline
    data goes to a private temporary directory that is removed as soon as it is loaded."""
    if endpoint.cert_data is None and endpoint.key_data is None:
        yield str(endpoint.cert_file), endpoint.key_file
        return
    import tempfile

    with tempfile.TemporaryDirectory(prefix="hemostat-kube-") as tmp:  # mode 0700
        cert = endpoint.cert_file or _write(Path(tmp) / "cert.pem", endpoint.cert_data or b"")
        key = endpoint.key_file or (_write(Path(tmp) / "key.pem", endpoint.key_data)
                                    if endpoint.key_data else None)
        yield cert, key


def _write(path: Path, data: bytes) -> str:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return str(path)


def endpoint_for(kubeconfig: str | Path | None, context: str | None, environ: Mapping[str, str] = os.environ,
                 in_cluster: Path = IN_CLUSTER) -> KubeEndpoint | None:
    """The endpoint the official loader would pick (in-cluster, else the kubeconfig), or None
    when only the official client can work out its credentials (or finds the config broken:
    it then says what is wrong, as it always has)."""
    found = _in_cluster(environ, in_cluster)
    return found if found is not None else kubeconfig_endpoint(kubeconfig, context, environ)


def kubeconfig_endpoint(kubeconfig: str | Path | None, context: str | None,
                        environ: Mapping[str, str] = os.environ) -> KubeEndpoint | None:
    """The kubeconfig's endpoint alone (what `kubectl` uses on an engineer's machine), or None
    when only the official client can work out its credentials."""
    path = kubeconfig or environ.get("KUBECONFIG") or Path.home() / ".kube" / "config"
    if os.pathsep in str(path):
        return None  # a merged list of kubeconfigs: the official loader merges them
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError):
        return None
    try:
        return _from_kubeconfig(doc, Path(path).parent, context)
    except (KeyError, TypeError, AttributeError, ValueError):
        return None


def _in_cluster(environ: Mapping[str, str], root: Path) -> KubeEndpoint | None:
    host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get("KUBERNETES_SERVICE_PORT")
    token = root / "token"
    if not host or not port or not token.is_file():
        return None
    host = f"[{host}]" if ":" in host else host
    ca = root / "ca.crt"
    return KubeEndpoint(f"https://{host}:{port}", ca_file=str(ca) if ca.is_file() else None,
                        token_file=str(token))


def _named(doc: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    for entry in doc.get(kind) or []:
        if entry.get("name") == name:
            return dict(entry.get(kind[:-1]) or {})
    raise KeyError(f"{kind[:-1]} {name!r}")


def _from_kubeconfig(doc: dict[str, Any], base: Path, context: str | None) -> KubeEndpoint | None:
    ctx = _named(doc, "contexts", context or doc["current-context"])
    cluster, user = _named(doc, "clusters", ctx["cluster"]), _named(doc, "users", ctx.get("user", ""))
    if set(cluster) - CLUSTER_FIELDS or set(user) - USER_FIELDS or not cluster.get("server"):
        return None

    def path(value: str | None) -> str | None:
        return str(base / value) if value else None  # relative to the kubeconfig, as kubectl reads it

    def data(value: str | None) -> bytes | None:
        return base64.b64decode(value) if value else None

    ca_data = data(cluster.get("certificate-authority-data"))
    basic = (str(user["username"]), str(user.get("password", ""))) if user.get("username") else None
    return KubeEndpoint(
        server=str(cluster["server"]).rstrip("/"),
        ca_file=path(cluster.get("certificate-authority")), ca_data=ca_data.decode() if ca_data else None,
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        tls_server_name=cluster.get("tls-server-name"),
        cert_file=path(user.get("client-certificate")), key_file=path(user.get("client-key")),
        cert_data=data(user.get("client-certificate-data")), key_data=data(user.get("client-key-data")),
        token=user.get("token"), token_file=path(user.get("tokenFile")), basic=basic)


def endpoint_of_configuration(configuration: Any) -> KubeEndpoint | None:
    """The endpoint an official-client `Configuration` describes, when its credentials are
    static (how tests hand the probes a fake apiserver's client); None otherwise."""
    if getattr(configuration, "refresh_api_key_hook", None) is not None or configuration.proxy:
        return None
    keys = configuration.api_key or {}
    auth = keys.get("authorization") or keys.get("BearerToken")
    prefix = (configuration.api_key_prefix or {}).get("authorization", "")
    token = None
    if auth:
        token = auth.split(" ", 1)[1] if auth.lower().startswith("bearer ") else auth
        if prefix and prefix.lower() != "bearer":
            return None
    basic = (configuration.username, configuration.password or "") if configuration.username else None
    return KubeEndpoint(
        server=str(configuration.host).rstrip("/"), ca_file=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        tls_server_name=getattr(configuration, "tls_server_name", None),
        cert_file=configuration.cert_file, key_file=configuration.key_file, token=token, basic=basic)
