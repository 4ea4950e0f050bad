"""The chart refuses unknown keys in `targets` at install time (the schema is derived from the
config model and kept in step with it), and migrates a PostgreSQL ledger with a hook Job before the
daemon starts; `hemostat ledger migrate` runs there with no config file, only the owner's DSN."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from scripts.chart_schema import SCHEMA, targets_schema
from tests.helm.conftest import Render
from tests.services.postgres import PgServer

HA = "ha-values.yaml"


def test_the_chart_schema_is_the_config_models_targets() -> None:
    assert json.loads(SCHEMA.read_text())["properties"]["targets"] == targets_schema(), \
        "helm/hemostat/values.schema.json is stale: run python scripts/chart_schema.py"


@pytest.mark.parametrize(("sets", "where"), [
    (["targets[0].name=checkout", "targets[0].deploy_rep.path=/x"], "at '/targets/0': additional properties 'deploy_rep'"),
    (["targets[0].name=checkout", "targets[0].dependencies[0].name=pay",
      "targets[0].dependencies[0].url=http://pay/health", "targets[0].dependencies[0].timout_s=3"],
     "at '/targets/0/dependencies/0': additional properties 'timout_s'"),
    (["targets[0].name=checkout", "targets[0].thresholds.error_rates=0.1"],
     "at '/targets/0/thresholds': additional properties 'error_rates'"),
])
def test_a_typo_in_a_target_fails_the_install_naming_it(render_error: Callable[..., str], sets: list[str],
                                                        where: str) -> None:
    assert where in render_error(sets=sets)


def test_a_target_the_readme_documents_installs(render: Render) -> None:
    sets = ["targets[0].name=checkout", "targets[0].deployment=checkout", "targets[0].gitops=git-revert",
            "targets[0].deploy_repo.path=/repo", "targets[0].metrics.url=http://checkout:8080/metrics",
            "targets[0].dependencies[0].name=stripe", "targets[0].dependencies[0].url=https://api.stripe.com/health",
            "targets[0].dependencies[0].statuspage_url.env=STATUS_URL", "targets[0].probes={git-deploys,app-metrics}"]
    config = next(m for m in render(sets=sets) if m["kind"] == "ConfigMap" and m["metadata"]["name"].endswith("-config"))
    assert "gitops: git-revert" in config["data"]["hemostat.yaml"]


def test_a_postgres_ledger_is_migrated_by_a_hook_before_the_daemon(render: Render) -> None:
    manifests = render(HA)
    [job] = [m for m in manifests if m["kind"] == "Job"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["args"] == ["ledger", "migrate"]
    [env] = container["env"]
    assert env["name"] == "HEMOSTAT_LEDGER_OWNER_DSN" and env["valueFrom"]["secretKeyRef"]["key"] == "dsn"
    assert pod["automountServiceAccountToken"] is False
    deployment = next(m for m in manifests if m["kind"] == "Deployment")
    selector = deployment["spec"]["selector"]["matchLabels"]
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert not all(labels.get(k) == v for k, v in selector.items())  # the Service never routes to it


def test_the_owner_secret_and_daemon_role_reach_the_job(render: Render) -> None:
    sets = ["store.postgres.migrate.ownerSecret=ledger-owner", "store.postgres.migrate.ownerKey=owner-dsn",
            "store.postgres.migrate.daemonRole=hemostat_daemon"]
    [job] = [m for m in render(HA, sets=sets) if m["kind"] == "Job"]
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["ledger", "migrate", "--daemon-role", "hemostat_daemon"]
    assert container["env"][0]["valueFrom"]["secretKeyRef"] == {"name": "ledger-owner", "key": "owner-dsn"}


def test_no_job_for_sqlite_or_when_switched_off(render: Render) -> None:
    assert not [m for m in render() if m["kind"] == "Job"]
    assert not [m for m in render(HA, sets=["store.postgres.migrate.enabled=false"]) if m["kind"] == "Job"]


def test_ledger_migrate_needs_no_config_with_an_owner_dsn(pg_server: PgServer, tmp_path: Path) -> None:
    import secrets

    from psycopg import sql

    db = f"t_hook_{secrets.token_hex(4)}"
    with pg_server.connect() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    try:
        env = {k: v for k, v in os.environ.items() if k != "HEMOSTAT_CONFIG"}
        done = subprocess.run([str(Path(sys.executable).parent / "hemostat"), "ledger", "migrate"], cwd=tmp_path,
                              env={**env, "HEMOSTAT_LEDGER_OWNER_DSN": pg_server.dsn(dbname=db)},
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "schema version" in done.stdout and list(tmp_path.iterdir()) == []
    finally:
        with pg_server.connect() as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
