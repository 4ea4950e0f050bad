"""`hemostat diagnose TARGET`: every probe of the target at once, triage, and gated proposals,
here (one-shot, the config's credentials) or, with --server, by the daemon for the caller's
Kubernetes identity (agent.server.diagnose_api). Put on the `hemostat` group by agent.cli.main.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from agent.cli.base import Ctx, pass_ctx, server_options

if TYPE_CHECKING:
    from agent.diagnosis.wiring import App


@click.command()
@click.argument("targets", metavar="TARGET...", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.option("--snapshot", type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="diagnose a directory of API objects (kubectl cluster-info dump) offline")
@click.option("--record", type=click.Path(path_type=Path, dir_okay=False),
              help="save the observations as a drill scenario")
@click.option("--no-ledger", is_flag=True, help="do not record the incident and proposals")
@click.option("--policy", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="evaluate proposals against this policy instead")
@server_options("let the daemon at URL run the diagnosis, with your kubeconfig credentials")
@pass_ctx
def diagnose(obj: Ctx, targets: tuple[str, ...], as_json: bool, snapshot: Path | None, record: Path | None,
             no_ledger: bool, policy: Path | None, server: str | None, kubeconfig: str | None,
             kube_context: str | None) -> None:
    """Run every probe of TARGET at once, triage, and propose gated mitigations.

    With --server, the daemon runs them (from inside the cluster, where the databases and
    Prometheus are reachable) once the cluster vouches for your token and RBAC grants you
    create on diagnoses.hemostat.io named TARGET; the incident is recorded as asked by you.

    With --snapshot DIR, the workloads in a `kubectl cluster-info dump --output-directory` (or
    files of `kubectl get -o json` lists) are diagnosed offline, no cluster and no ledger: the
    named ones, or every one, ranked.
    """
    if snapshot is not None:
        if server or record is not None:
            raise click.UsageError("--snapshot diagnoses offline: it takes neither --server nor --record")
        from agent.diagnosis.snapshot import diagnose_snapshot, report

        doc = report(diagnose_snapshot(obj.app(policy, config_optional=True), snapshot, targets))
        click.echo(json.dumps(doc, indent=2, default=str) if as_json else _snapshot_text(doc))
        return
    if len(targets) != 1:
        raise click.UsageError("name one TARGET (several, or none, only with --snapshot)")
    target = targets[0]
    if server:
        if record is not None or policy is not None:
            raise click.UsageError("--record and --policy work on a local diagnosis, not with --server")
        from agent.cli.approval_client import diagnose_remote

        doc = diagnose_remote(server, target, not no_ledger, kubeconfig, kube_context)
        _print_diagnosis(doc, as_json)
        return
    import asyncio

    from agent.diagnosis import service
    from agent.model.lean_imports import warm_tls

    warm_tls()  # on the other core, while the config and plugins load
    app = obj.app(policy)
    spec = app.config.target(target)
    ledger = None if no_ledger else obj.ledger()
    history = service.history_from(ledger, app) if ledger else []
    past = service.past_findings(ledger, spec.name) if ledger else []
    # Worker threads import heavy clients (psycopg) while the probes wait on the network; a
    # short switch interval hands the GIL back to the event loop within 1 ms, not 5, each time
    # it returns from a socket or process call.
    sys.setswitchinterval(0.001)
    result = asyncio.run(_checked_diagnosis(obj, app, spec, history, past))
    doc = {**result.to_json(), "incident": None}
    if ledger is not None:
        from agent.incidents.lifecycle import record_asked

        doc, _ = record_asked(app, ledger, result, obj.user)
    if record is not None:
        _write_scenario(record, result, spec)
    _print_diagnosis(doc, as_json)


def _snapshot_text(doc: dict[str, Any]) -> str:
    lines = [f"{len(doc['workloads'])} workload(s) diagnosed from the snapshot; "
             f"{sum(1 for w in doc['workloads'] if w['severity'])} in trouble"]
    for f in doc["ranked"]:
        lines.append(f"{f['severity']}  {f['workload']}: {f['root_cause']} ({f['class']}) at {f['object']}")
        lines.append(f"    {f['summary']}")
        lines += [f"    - {e}" for e in f["evidence"][:4]]
    for w in doc["workloads"]:
        lines += [f"  proposal for {w['workload']}: {p['action']} {p['subject']} — {p['reason']}"
                  for p in w["proposals"][:2]]
    return "\n".join(lines)


def _print_diagnosis(doc: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(doc, indent=2, default=str))
    else:
        from agent.cli import render

        click.echo(render.diagnosis(doc))


async def _checked_diagnosis(obj: Ctx, app: App, spec: Any, history: Any, past: Any) -> Any:
    """Probes' live config checks (PromQL syntax) alongside the diagnosis, in one event loop:
    a bad query still stops the command (its ConfigError is raised first) without costing a
    round trip before the probes; the diagnosis is let finish so it closes its connections."""
    import asyncio

    from agent.diagnosis import service
    from agent.diagnosis.wiring import validate_live

    # the diagnosis first: its probes' requests go out before the check's
    result, checked = await asyncio.gather(
        service.diagnose(app, spec, history=history, past=past),
        validate_live(app, str(obj.config_path), only=spec.name), return_exceptions=True)
    for outcome in (checked, result):
        if isinstance(outcome, BaseException):
            raise outcome
    return result


def _write_scenario(path: Path, result: Any, spec: Any) -> None:
    import yaml

    from agent.diagnosis.drill import scenario_from

    doc = scenario_from(result, spec, f"{spec.name} at {result.started_at:%Y-%m-%d %H:%M}Z")
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    click.echo(f"recorded scenario to {path}", err=True)
