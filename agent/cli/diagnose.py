"""`hemostat diagnose TARGET`: every probe of the target at once, triage, and gated proposals,
here (one-shot, the config's credentials) or, with --server, by the daemon for the caller's
Kubernetes identity (agent.server.diagnose_api). Put on the `hemostat` group by agent.cli.main.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from agent.cli.base import Ctx, emit_json, pass_ctx, server_options
from agent.cli.output import output_options

if TYPE_CHECKING:
    from agent.diagnosis.wiring import App


@click.command()
@click.argument("targets", metavar="TARGET...", nargs=-1)
@output_options
@click.option("--snapshot", type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="diagnose a directory of API objects (kubectl cluster-info dump) offline")
@click.option("--record", type=click.Path(path_type=Path, dir_okay=False),
              help="save the observations as a drill scenario (JSON for .json, else YAML)")
@click.option("--no-ledger", is_flag=True, help="do not record the incident and proposals")
@click.option("--policy", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="evaluate proposals against this policy instead")
@server_options("let the daemon at URL run the diagnosis, with your kubeconfig credentials")
@pass_ctx
def diagnose(obj: Ctx, targets: tuple[str, ...], as_json: bool, snapshot: Path | None, record: Path | None,
             no_ledger: bool, policy: Path | None, server: str | None, kubeconfig: str | None,
             kube_context: str | None) -> None:
    """Run every probe of TARGET at once, triage, and propose gated mitigations.

    Exits 0 when nothing is wrong, 3 when there is an incident, 4 when the diagnosis is
    incomplete (a probe could not look), 1 or 2 on an error.

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
        if as_json:
            emit_json(doc)
        else:
            click.echo(_snapshot_text(doc))
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
        sys.exit(exit_code(doc))
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
    with waiting(spec.name):
        result = asyncio.run(_checked_diagnosis(obj, app, spec, history, past))
    doc = {**result.to_json(), "incident": None}
    if ledger is not None:
        from agent.incidents.lifecycle import record_asked

        doc, _ = record_asked(app, ledger, result, obj.user)
    if record is not None:
        _write_scenario(record, result, spec)
    _print_diagnosis(doc, as_json)
    sys.exit(exit_code(doc))


EXIT_CODES = {0: "nothing wrong in what every probe read", 3: "an incident: something is wrong",
              4: "incomplete: a probe could not look (whatever else was found)"}


def exit_code(doc: dict[str, Any]) -> int:
    """diagnose's exit code, so a script can tell (see EXIT_CODES): 4 when a probe could not
    look, else 3 when something is wrong, else 0."""
    if not doc.get("complete", True):
        return 4
    return 3 if doc.get("severity") else 0


@contextlib.contextmanager
def waiting(target: str, after_s: float = 1.0, every_s: float = 1.0) -> Iterator[None]:
    """On a terminal, a line on stderr every second once the probes take over `after_s`, naming
    the ones still running; nothing at all on a pipe or in a script."""
    if not sys.stderr.isatty():
        yield
        return
    import threading
    import time

    from agent.cli.output import progress
    from agent.diagnosis.runner import RUNNING

    done, started = threading.Event(), time.monotonic()

    def report() -> None:
        if done.wait(after_s):
            return
        while not done.is_set():
            names = sorted(p for t, p in set(RUNNING) if t == target)
            if names:
                progress(f"  … {time.monotonic() - started:.0f}s, waiting for {', '.join(names)}")
            done.wait(every_s)

    thread = threading.Thread(target=report, name="progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=1)


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
        emit_json(doc)
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
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    else:
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
    click.echo(f"recorded scenario to {path}", err=True)
