"""`hemostat ui --server URL`: sign in to the daemon's web incident view (agent.server.web) with
your kubeconfig credential, and open it in a browser.

The daemon checks the credential (TokenReview) and answers a one-time sign-in link valid for a
minute; the browser trades it for a session cookie that lasts an hour. The link is printed too,
for a browser on another machine (through the same `kubectl port-forward` or Ingress).
"""

from __future__ import annotations

import click

from agent.cli.base import server_options


@click.command()
@server_options("the daemon whose web view to open")
@click.option("--no-browser", is_flag=True, help="only print the sign-in link")
def ui(server: str | None, kubeconfig: str | None, kube_context: str | None, no_browser: bool) -> None:
    """Open the web incident view of the daemon at --server, signed in as your Kubernetes identity."""
    import webbrowser

    from agent.cli.approval_client import check_transport, fast_bearer_token, post

    if not server:
        raise click.UsageError("give --server URL (or HEMOSTAT_SERVER): the daemon's address, e.g. "
                               "http://127.0.0.1:9095 through `kubectl port-forward`")
    server = check_transport(server)  # before the credential is fetched
    answer = post(server, "/v1/sessions", fast_bearer_token(kubeconfig, kube_context), {})
    url = f"{server}{answer['path']}"
    who = answer.get("identity", {}).get("name", "you")
    click.echo(f"signed in as {who}; this link works once, within {answer.get('expires_in_s', 60)} s:")
    click.echo(url)
    if not no_browser:
        webbrowser.open(url)
