"""A distinct secret planted in every configurable place is found 0 times in every output.

The config carries a secret in each place one can live: tokens in health, status-page, flag,
fallback and notifier URLs (inline and by reference), userinfo passwords in URLs, the PostgreSQL
DSN, the Redis URL, the webhook token, a Slack webhook path. Then everything a user or an
operator can see is produced for real — `diagnose` (JSON, text, `--record`), the daemon handling
an authenticated alert (its logs, `/metrics`, the Slack, webhook and stdout notifications),
`proposals --json`, `show`, `incidents --json`, `approve` and `execute` of a failover through the
fallback URL, `postmortem` (and its `--record`), and the ledger files — and each secret is counted
in each.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from tests.agent.daemon_harness import (
    HEMOSTAT,
    alert_payload,
    failing_metrics,
    now_iso,
    start_daemon,
    wait_until,
)
from tests.conftest import git_commit
from tests.loopback import LoopbackServer

SECRETS = {  # where it is planted -> the secret
    "health URL query (inline)": "sEcHealthTok3n01",
    "health URL userinfo (inline)": "sEcHealthPw02",
    "health URL query (env)": "sEcEnvTok3n03",
    "status page URL query (inline)": "sEcStatusKey04",
    "metrics URL userinfo (file)": "sEcMetricsPw05",
    "flag webhook URL userinfo (inline)": "sEcFlagPw06",
    "flag token (env)": "sEcFlagTok3n07",
    "fallback URL userinfo and query (env)": "sEcFallbackPw08",
    "fallback URL query token (env)": "sEcFallbackQ09",
    "fallback token (env)": "sEcFallbackTok10",
    "PostgreSQL DSN password (env)": "sEcPgPw11",
    "Redis URL password (env)": "sEcRedisPw12",
    "webhook token (file)": "sEcWebhookTok13",
    "Slack webhook path (env)": "sEcSlackPath14",
    "notifier webhook URL query (file)": "sEcNotifyTok15",
    "Prometheus URL userinfo (env)": "sEcPromPw16",
    # issue 23, M6: a secret in a URL's *path*, the URL given by reference
    "health URL path (env)": "sEcHealthPath17",
    "fallback URL path (env)": "sEcFallbackPath18",
    "Prometheus URL path (env)": "sEcPromPath19",
}
S = SECRETS
ROOT = Path(__file__).resolve().parents[2]


def plant(tmp_path: Path, loopback: LoopbackServer, deploy_repo: Path) -> tuple[Path, dict[str, str]]:
    """A config with every secret in place; the environment its references read."""
    git_commit(deploy_repo, "checkout v1.8", datetime.now(UTC) - timedelta(minutes=4))
    port = loopback.url.rsplit(":", 1)[1]
    loopback.route("/health", status=503)
    loopback.route("/api/v2/status.json", content_type="application/json",
                   body='{"page": {"name": "Pay"}, "status": {"indicator": "major", "description": "Outage"}}')
    loopback.route("/api/v2/incidents/unresolved.json", content_type="application/json", body='{"incidents": []}')
    loopback.route("/flags/new-ui", content_type="application/json", body='{"enabled": true}')
    loopback.route("/fallback", content_type="application/json", body='{"payments_url": "https://a"}')
    loopback.route("/fallback/" + S["fallback URL path (env)"], content_type="application/json",
                   body='{"payments_url": "https://a"}')
    loopback.route("/health/" + S["health URL path (env)"], status=503)
    loopback.route("/services/T1/B2/" + S["Slack webhook path (env)"], body="ok")
    loopback.route("/notify", body="ok")
    (tmp_path / "metrics-url").write_text(
        failing_metrics(loopback).replace("http://", f"http://scraper:{S['metrics URL userinfo (file)']}@"))
    (tmp_path / "token").write_text(S["webhook token (file)"])
    (tmp_path / "notify-url").write_text(f"{loopback.url}/notify?token={S['notifier webhook URL query (file)']}")
    env = {
        "DEP_URL": f"{loopback.url}/health/{S['health URL path (env)']}?token={S['health URL query (env)']}",
        "FALLBACK_URL": (f"http://fb:{S['fallback URL userinfo and query (env)']}@127.0.0.1:{port}"
                         f"/fallback/{S['fallback URL path (env)']}?token={S['fallback URL query token (env)']}"),
        "PROM_URL": f"http://prom:{S['Prometheus URL userinfo (env)']}@127.0.0.1:1/{S['Prometheus URL path (env)']}/",
        "FLAG_TOKEN": S["flag token (env)"], "FALLBACK_TOKEN": S["fallback token (env)"],
        "PG_DSN": f"postgresql://app:{S['PostgreSQL DSN password (env)']}@127.0.0.1:1/app",
        "REDIS_URL": f"redis://:{S['Redis URL password (env)']}@127.0.0.1:1/0",
        "SLACK_URL": f"{loopback.url}/services/T1/B2/{S['Slack webhook path (env)']}",
    }
    target = {
        "name": "checkout", "deployment": "checkout",
        "probes": ["git-deploys", "app-metrics", "http-health", "provider-status", "pg-activity", "prometheus"],
        "deploy_repo": {"path": str(deploy_repo)},
        "metrics": {"url": {"file": str(tmp_path / "metrics-url")}, "scrape_interval_s": 0.05},
        "postgres": {"dsn": {"env": "PG_DSN"}, "connect_timeout_s": 1},
        "prometheus": {"url": {"env": "PROM_URL"}, "timeout_s": 1},
        "flags": [{"name": "new-ui", "backend": "webhook", "token": {"env": "FLAG_TOKEN"},
                   "url": f"http://flaguser:{S['flag webhook URL userinfo (inline)']}@127.0.0.1:{port}/flags/new-ui"}],
        "dependencies": [
            {"name": "payments", "url": f"{loopback.url}/health?access_token={S['health URL query (inline)']}",
             "statuspage_url": f"{loopback.url}/?api_key={S['status page URL query (inline)']}",
             "breaker": {"name": "payments", "redis_url": {"env": "REDIS_URL"}},
             "fallback": {"backend": "http-flag", "key": "payments_url", "primary": "https://a",
                          "secondary": "https://b", "token": {"env": "FALLBACK_TOKEN"},
                          "url": {"env": "FALLBACK_URL"}}},
            {"name": "search", "url": f"http://u:{S['health URL userinfo (inline)']}@127.0.0.1:{port}/health"},
            {"name": "geo", "url": {"env": "DEP_URL"}},
        ],
    }
    config = {"store": {"path": "ledger.db"}, "sweeps": False, "probe_timeout_s": 5,
              "policy": str(ROOT / "policies" / "demo.yaml"),  # a --user approval counts: one CLI runs it all
              "intake": {"token": {"file": str(tmp_path / "token")}},
              "notifiers": [{"type": "stdout"}, {"type": "slack", "url": {"env": "SLACK_URL"}},
                            {"type": "webhook", "url": {"file": str(tmp_path / "notify-url")}}],
              "targets": [target]}
    path = tmp_path / "hemostat.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, env


def cli(config: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run([HEMOSTAT, "--config", str(config), "--user", "alice", *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **env}, check=False)
    assert done.returncode in (0, 1, 3, 4), done.stdout + done.stderr
    return done.stdout + done.stderr


def daemon_outputs(config: Path, env: dict[str, str], loopback: LoopbackServer) -> dict[str, str]:
    daemon = start_daemon(config, env, stdout=True)
    try:
        status, answer = daemon.post(alert_payload(starts_at=now_iso()), S["webhook token (file)"])
        assert status == 202, answer
        wait_until(lambda: [i for i in daemon.ledger().incidents() if i.status == "identified"])
        slack = "/services/T1/B2/" + S["Slack webhook path (env)"]
        wait_until(lambda: len(loopback.posts.get(slack, [])) >= 2 and loopback.posts.get("/notify"))
        metrics = daemon.get("/metrics")[1]
    finally:
        daemon.stop(signal.SIGTERM)
    return {"daemon logs and stdout notifier": daemon.log.read_text(), "/metrics": metrics,
            "Slack payloads": b"".join(loopback.posts[slack]).decode(),
            "webhook notifier payloads": b"".join(loopback.posts["/notify"]).decode()}


def cli_outputs(config: Path, env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    out = {"diagnose --json": cli(config, env, "diagnose", "checkout", "--json", "--no-ledger"),
           "diagnose": cli(config, env, "diagnose", "checkout", "--no-ledger",
                           "--record", str(tmp_path / "diagnosis.yaml"))}
    out["diagnose --record file"] = (tmp_path / "diagnosis.yaml").read_text()
    proposals = cli(config, env, "proposals", "--json")
    out["proposals --json"] = proposals
    incidents = json.loads(cli(config, env, "incidents", "--json"))
    out["incidents --json"] = json.dumps(incidents)
    incident = incidents[0]["id"]
    out["show INCIDENT --json"] = cli(config, env, "show", incident, "--json")
    ids = [p["id"] for p in json.loads(proposals)]
    failover = next(p["id"] for p in json.loads(proposals) if p["action"] == "failover")
    out["approve"] = cli(config, env, "approve", failover)
    out["execute --json (failover through the fallback URL)"] = cli(config, env, "execute", failover, "--json")
    out["show PROPOSAL"] = "".join(cli(config, env, "show", pid) for pid in ids)
    out["postmortem"] = cli(config, env, "postmortem", incident, "--record", str(tmp_path / "drill.yaml"))
    out["postmortem --record file"] = (tmp_path / "drill.yaml").read_text()
    return out


def test_every_planted_secret_is_found_zero_times_in_every_output(
        tmp_path: Path, loopback: LoopbackServer, deploy_repo: Path) -> None:
    config, env = plant(tmp_path, loopback, deploy_repo)
    outputs = daemon_outputs(config, env, loopback)
    outputs |= cli_outputs(config, env, tmp_path)
    outputs["ledger files (db, wal)"] = "".join(path.read_bytes().decode(errors="replace")
                                                for path in sorted(tmp_path.glob("ledger.db*")))
    counts = {(where, output): text.count(secret)
              for where, secret in SECRETS.items() for output, text in outputs.items()}
    print(f"\n{len(SECRETS)} secrets x {len(outputs)} outputs "
          f"({', '.join(f'{name} {len(text)} B' for name, text in outputs.items())}); found:",
          {k: v for k, v in counts.items() if v} or "none")
    assert all(outputs.values())  # every output was produced
    assert {k: v for k, v in counts.items() if v} == {}
