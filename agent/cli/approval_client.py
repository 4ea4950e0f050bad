"""`hemostat approve --server URL`: send the engineer's own Kubernetes credential to the daemon.

The credential comes from the kubeconfig through the official client's loader, so whatever the
kubeconfig does (a static token, a token file, an exec plugin such as `aws eks get-token`,
`gke-gcloud-auth-plugin` or `kubelogin` for OIDC) yields the bearer token the daemon then checks
with a TokenReview. Only this path imports the Kubernetes client; plain `approve` stays fast.
The token is never printed, and never sent over plain HTTP except to a loopback address
(`kubectl port-forward`).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from agent.model import ConfigError, HemostatError, truncate

CERT_HELP = ("your kubeconfig user authenticates with a client certificate, which the approval API "
             "cannot check (Kubernetes has no TokenReview for certificates). Use a token instead: "
             "your cloud's exec plugin (aws eks get-token, gke-gcloud-auth-plugin, kubelogin for "
             "OIDC), or a service account's `kubectl create token NAME --duration 1h` put in a "
             "kubeconfig user (`kubectl config set-credentials approver --token ...`), then pass "
             "--context")
TIMEOUT_S = 30
DIAGNOSE_TIMEOUT_S = 120  # every probe of the target, each bounded by the daemon's probe timeout


def bearer_token(kubeconfig: str | None, context: str | None) -> str:
    """The kubeconfig's bearer token (exec plugins and token files resolved by the loader)."""
    import yaml
    from kubernetes import client
    from kubernetes import config as kconfig

    configuration = client.Configuration()
    try:
        kconfig.load_kube_config(config_file=kubeconfig, context=context,  # type: ignore[no-untyped-call]
                                 client_configuration=configuration, persist_config=False)
    except (kconfig.ConfigException, OSError, yaml.YAMLError) as e:
        raise ConfigError(kubeconfig or "kubeconfig", context or "current-context",
                          f"cannot load credentials: {truncate(' '.join(str(e).split()), 300)}") from None
    auth = str(configuration.api_key.get("BearerToken") or "")
    if auth.startswith("Bearer ") and auth.removeprefix("Bearer ").strip():
        return auth.removeprefix("Bearer ").strip()
    if configuration.cert_file:
        raise HemostatError(CERT_HELP, code="client_certificate")
    raise HemostatError("your kubeconfig user has no bearer token (basic auth or no credentials): "
                        + CERT_HELP.split(". ", 1)[1], code="no_token")


def fast_bearer_token(kubeconfig: str | None, context: str | None) -> str:
    """The kubeconfig's bearer token read directly when it is a static one (a token or a token
    file: no Kubernetes client to import, so `diagnose --server` answers as fast as kubectl);
    anything else (an exec plugin, an auth provider) through the official loader."""
    from agent.model.kube_http import kubeconfig_endpoint

    endpoint = kubeconfig_endpoint(kubeconfig, context)
    try:
        header = endpoint.headers().get("Authorization", "") if endpoint is not None else ""
    except OSError as e:  # the user's tokenFile
        raise ConfigError(kubeconfig or "kubeconfig", "tokenFile",
                          f"cannot read {getattr(endpoint, 'token_file', '')}: {e.strerror}") from None
    if header.startswith("Bearer "):
        return header.removeprefix("Bearer ")
    return bearer_token(kubeconfig, context)


def check_transport(server: str) -> str:
    """The server URL, refusing to send a credential in clear text across a network."""
    parts = urlsplit(server)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("--server", server, "must be an http(s) URL such as https://hemostat.example.com")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise ConfigError("--server", server, "plain http sends your credential in clear text; use "
                          "https (an Ingress) or `kubectl port-forward` and http://127.0.0.1:PORT")
    return server.rstrip("/")


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def call(server: str, ref: str, verb: str, token: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """POST to the approval API; an error answer becomes a HemostatError carrying its message."""
    return post(server, f"/v1/proposals/{verb}", token, {"id": ref, **(body or {})})


def post(server: str, path: str, token: str, body: dict[str, Any],
         timeout_s: float = TIMEOUT_S) -> dict[str, Any]:
    """POST `body` as JSON to the daemon's API with the bearer token; the JSON answer, or a
    HemostatError carrying the daemon's message."""
    url = f"{check_transport(server)}{path}"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # scheme checked above
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as e:
        raise HemostatError(f"{server} answered {e.code}: {_error(e)}", code=f"http_{e.code}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise HemostatError(f"cannot reach the daemon's API at {server}: {reason}",
                            code="approval_api_unreachable") from None


def _error(e: urllib.error.HTTPError) -> str:
    raw = e.read()
    try:
        return str(json.loads(raw).get("error") or raw.decode(errors="replace"))
    except ValueError:
        return truncate(raw.decode(errors="replace"), 300)


def approve_remote(server: str, ref: str, kubeconfig: str | None, context: str | None) -> dict[str, Any]:
    server = check_transport(server)  # before the credential is fetched (an exec plugin may prompt)
    return call(server, ref, "approve", bearer_token(kubeconfig, context))


def revert_remote(server: str, ref: str, reason: str, kubeconfig: str | None,
                  context: str | None) -> dict[str, Any]:
    server = check_transport(server)
    return call(server, ref, "revert", bearer_token(kubeconfig, context), {"reason": reason})


def diagnose_remote(server: str, target: str, record: bool, kubeconfig: str | None,
                    context: str | None) -> dict[str, Any]:
    """`hemostat diagnose TARGET --server URL`: the daemon runs the diagnosis (agent.server.diagnose_api)."""
    server = check_transport(server)
    return post(server, "/v1/diagnose", fast_bearer_token(kubeconfig, context),
                {"target": target, "record": record}, timeout_s=DIAGNOSE_TIMEOUT_S)
