"""The CLI, driven through click's runner and as a real subprocess, against a real local
incident: a git deploy repo, a failing app's metrics, a healthy dependency."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from agent.cli.main import cli
from policies.model import bundled_policy_path
from tests.conftest import git_commit
from tests.loopback import LoopbackServer

HEAVY = ("kubernetes", "psycopg", "git", "httpx", "redis")


def _metrics(loopback: LoopbackServer) -> str:
    counts = iter([(1000, 10), (1200, 90)] + [(1200, 90)] * 100)

    def body() -> str:
        requests, errors = next(counts)
        return f"http_requests_total {requests}\nhttp_requests_errors_total {errors}\n"

    return loopback.route("/metrics", body=body)


@pytest.fixture
def incident(tmp_path: Path, deploy_repo: Path, loopback: LoopbackServer) -> Path:
    now = datetime.now(UTC)
    git_commit(deploy_repo, "checkout v1.7", now - timedelta(hours=3))
    git_commit(deploy_repo, "checkout v1.8 new payment flow", now - timedelta(minutes=4))
    config = {
        "policy": str(bundled_policy_path("demo")),  # --user names count here (asserted)
        "targets": [{
            "name": "checkout", "deployment": "checkout",
            "namespace": "shop",
            "probes": ["git-deploys", "app-metrics", "http-health"],  # no cluster in these tests
            "deploy_repo": {"path": str(deploy_repo)},
            "metrics": {"url": _metrics(loopback), "scrape_interval_s": 0.05},
            "dependencies": [{"name": "payments", "url": loopback.route("/health")}],
        }],
    }
    path = tmp_path / "hemostat.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run(config: Path, *args: str, user: str = "alice") -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), "--user", user, *args])
    return result.exit_code, result.output


def test_diagnose_json_has_severity_findings_and_gated_proposals(incident: Path) -> None:
    code, out = run(incident, "diagnose", "checkout", "--json")
    assert code == 3, out  # an incident
    doc = json.loads(out)
    assert doc["severity"] == "SEV-2"
    assert {f["kind"] for f in doc["findings"]} == {"recent_deploy", "error_spike"}
    [proposal] = doc["proposals"]
    assert proposal["action"] == "rollback"
    assert proposal["path"][0]["branch"] == "recent deployment"
    assert proposal["verdict"]["decision"] == "needs_approval"
    assert doc["incident"].startswith("inc-")
    _, out = run(incident, "incidents", "--json")
    [recorded] = json.loads(out)
    assert (recorded["id"], recorded["status"], recorded["severity"]) == (doc["incident"], "identified", "SEV-2")


def test_diagnose_for_people_shows_headline_path_and_verdict(incident: Path) -> None:
    code, out = run(incident, "diagnose", "checkout")
    assert code == 3, out
    assert out.startswith("SEV-2 checkout: 40% of requests failing")
    assert "rollback checkout  -> needs_approval" in out
    assert "recent deployment: deploy" in out and "4 min before the incident" in out


def test_approve_then_the_ledger_says_who_and_state(incident: Path) -> None:
    _, out = run(incident, "diagnose", "checkout", "--json", user="dana")
    pid = json.loads(out)["proposals"][0]["id"]
    code, out = run(incident, "approve", pid[:6], user="alice")
    assert code == 0 and f"{pid} rollback checkout: approved by alice (1/1); now approved" in out
    code, out = run(incident, "show", pid, "--json")
    shown = json.loads(out)
    assert shown["state"] == "approved" and shown["approvers"] == ["alice"]
    assert shown["approvals"][0] | {"at": None} == {
        "source": "asserted", "subject": "alice", "name": "alice", "groups": [], "uid": "",
        "at": None, "kind": "proposal"}
    assert [e["type"] for e in shown["events"]] == ["proposal", "approval", "proposal_approved"]


@pytest.mark.parametrize("user", ["hemostat", "HEMOSTAT", "hemostat ", " Hemostat\t"])
def test_the_proposer_cannot_approve_under_any_spelling(incident: Path, user: str) -> None:
    _, out = run(incident, "diagnose", "checkout", "--json", user="dana")
    pid = json.loads(out)["proposals"][0]["id"]
    code, out = run(incident, "approve", pid, user=user)
    assert code == 1 and "separation of duties" in out


def test_whoever_ran_diagnose_counts_as_a_proposer(incident: Path) -> None:
    _, out = run(incident, "diagnose", "checkout", "--json", user="alice")
    pid = json.loads(out)["proposals"][0]["id"]
    code, out = run(incident, "approve", pid, user="Alice ")
    assert code == 1 and "Alice proposed" in out and "separation of duties" in out


def test_one_person_under_two_spellings_approves_once(incident: Path, tmp_path: Path) -> None:
    policy = tmp_path / "two.yaml"
    policy.write_text("approvers: {sources: [asserted]}\nactions: {rollback: {approvals: 2}}\n")
    config = yaml.safe_load(incident.read_text()) | {"policy": str(policy)}
    incident.write_text(yaml.safe_dump(config))
    _, out = run(incident, "diagnose", "checkout", "--json", user="dana")
    pid = json.loads(out)["proposals"][0]["id"]
    assert run(incident, "approve", pid, user="bob")[0] == 0
    code, out = run(incident, "approve", pid, user=" BOB")
    assert code == 1 and "has already approved" in out
    _, out = run(incident, "show", pid, "--json")
    assert json.loads(out)["state"] == "proposed"


def test_the_default_policy_does_not_take_a_typed_name_as_an_approver(incident: Path) -> None:
    config = yaml.safe_load(incident.read_text())
    del config["policy"]
    incident.write_text(yaml.safe_dump(config))
    _, out = run(incident, "diagnose", "checkout", "--json", user="dana")
    pid = json.loads(out)["proposals"][0]["id"]
    code, out = run(incident, "approve", pid, user="alice")
    assert code == 1
    assert "default.yaml: approvers.sources does not include 'asserted'" in out
    assert "hemostat approve --server URL" in out


def test_reject_needs_a_reason_and_records_it(incident: Path) -> None:
    _, out = run(incident, "diagnose", "checkout", "--json")
    pid = json.loads(out)["proposals"][0]["id"]
    code, out = run(incident, "reject", pid)
    assert code == 2 and "Missing option '--reason'" in out
    code, _ = run(incident, "reject", pid, "--reason", "deploy is unrelated")
    assert code == 0
    _, out = run(incident, "proposals", "--all", "--json")
    assert json.loads(out)[0]["state"] == "rejected"
    _, out = run(incident, "proposals")
    assert out.strip() == "no proposals"


def test_unknown_proposal_and_unknown_target_are_clear(incident: Path) -> None:
    code, out = run(incident, "approve", "p-nothere")
    assert code == 2 and "no proposal matches 'p-nothere'" in out
    code, out = run(incident, "diagnose", "cart")
    assert code == 2 and "no target named 'cart' (known: checkout)" in out


def test_record_then_drill_replays_the_same_incident(incident: Path, tmp_path: Path) -> None:
    scenario = tmp_path / "incident.yaml"
    code, _ = run(incident, "diagnose", "checkout", "--record", str(scenario), "--no-ledger")
    assert code == 3
    code, out = run(incident, "drill", str(scenario))
    assert code == 0, out
    assert out.strip().endswith("1 passed, 0 failed")
    doc = yaml.safe_load(scenario.read_text())
    doc["expect"]["actions"] = ["scale-up"]
    scenario.write_text(yaml.safe_dump(doc))
    code, out = run(incident, "drill", str(scenario))
    assert code == 1
    assert "actions: expected ['scale-up'], got ['rollback']" in out
    assert out.strip().endswith("0 passed, 1 failed")


def test_policy_check_exit_codes_and_message(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("mode: auto\nactions:\n  scale-up: {auto: true}\n")
    result = CliRunner().invoke(cli, ["policy", "check", str(good)])
    assert result.exit_code == 0 and "ok (mode auto, 1 actions)" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("actions:\n  nuke-prod: {}\n")
    result = CliRunner().invoke(cli, ["policy", "check", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}: actions.nuke-prod: unknown action" in result.output


def test_plugins_lists_probes_and_actions_with_their_origin() -> None:
    result = CliRunner().invoke(cli, ["plugins", "--json"])
    rows = {(r["kind"], r["name"]): r for r in json.loads(result.output)}
    assert rows[("probe", "git-deploys")]["origin"].startswith("probes.git_deploys:GitDeploysProbe (hemostat ")
    assert ("action", "rollback") in rows


def _fresh(calls: list[list[str]], watch: tuple[str, ...], prelude: str = "", also: str = "") -> str:
    """stdout of a new interpreter that runs `hemostat` once per argument list, then prints
    `HEAVY [...]`: which of `watch` it imported (and `also`, an expression, after them)."""
    code = (f"import sys\n{prelude}from agent.cli.main import cli\n"
            f"for args in {calls!r}:\n    try:\n        cli(args)\n    except SystemExit:\n        pass\n"
            f"print('HEAVY', sorted(m for m in {watch!r} if m in sys.modules){also})\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def test_proposals_and_approve_do_not_import_heavy_clients(incident: Path) -> None:
    """`proposals`/`approve` must answer like kubectl: no kubernetes, psycopg, git or httpx."""
    out = _fresh([["--config", str(incident), "proposals"], ["--config", str(incident), "approve", "p-none"]],
                 HEAVY)
    assert "HEAVY []" in out


def test_a_diagnosis_imports_only_the_clients_its_probes_use(incident: Path) -> None:
    """git-deploys, app-metrics and http-health need httpx; not the Kubernetes or PostgreSQL
    client, not GitPython (git-deploys runs git), and in the `hemostat` process not redis
    (pybreaker's Redis storage is switched off there)."""
    out = _fresh([["--config", str(incident), "diagnose", "checkout", "--no-ledger", "--json"]], HEAVY,
                 prelude="from agent.model.lean_imports import pybreaker_without_redis\npybreaker_without_redis()\n",
                 also=", __import__('pybreaker').HAS_REDIS_SUPPORT")
    assert '"target": "checkout"' in out and "HEAVY ['httpx'] False" in out


def test_pybreaker_keeps_its_redis_storage_outside_the_hemostat_process() -> None:
    code = "from agent.model.lean_imports import load_pybreaker\nprint(load_pybreaker().HAS_REDIS_SUPPORT)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "True"


def test_diagnose_through_the_daemon_imports_no_client_or_config_model(
        loopback: LoopbackServer, tmp_path: Path) -> None:
    """The thin client: the answer is printed as it came; nothing of the local diagnosis loads."""
    answer = {"target": "checkout", "headline": "SEV-2: payments down", "probes": [], "findings": [],
              "proposals": [], "incident": None}
    server = loopback.route("/v1/diagnose", body=json.dumps(answer), content_type="application/json")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "https://k:6443"}}],
        "users": [{"name": "u", "user": {"token": "t0k3n"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    out = _fresh([["diagnose", "checkout", "--json", "--server", server.removesuffix("/v1/diagnose"),
                   "--kubeconfig", str(kubeconfig)]], (*HEAVY, "pydantic", "pybreaker"))
    assert '"headline": "SEV-2: payments down"' in out and "HEAVY []" in out
    assert json.loads(loopback.posts["/v1/diagnose"][0]) == {"target": "checkout", "record": True}


def test_the_installed_command_runs_as_a_subprocess(incident: Path) -> None:
    exe = Path(sys.executable).parent / "hemostat"
    result = subprocess.run([str(exe), "--config", str(incident), "diagnose", "checkout", "--json"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 3, result.stderr  # an incident
    assert json.loads(result.stdout)["proposals"][0]["action"] == "rollback"
    assert subprocess.run([str(exe), "--version"], capture_output=True, text=True).stdout.strip() \
        == "hemostat, version 0.1.0"


def test_unknown_or_ambiguous_ids_exit_2(incident: Path) -> None:
    assert run(incident, "show", "p-nothing")[0] == 2
    assert run(incident, "approve", "p-nothing")[0] == 2
    assert run(incident, "status", "inc-nothing")[0] == 2


def test_approve_says_no_daemon_runs_it_and_execute_runs_it_once(incident: Path) -> None:
    _, out = run(incident, "diagnose", "checkout", "--json")
    [proposal] = json.loads(out)["proposals"]
    code, out = run(incident, "approve", proposal["id"], user="bob")
    assert code == 0 and "no daemon is running" in out and f"hemostat execute {proposal['id']}" in out
    code, out = run(incident, "execute", proposal["id"], user="bob")
    assert code == 1 and f"{proposal['id']} rollback checkout: failed" in out  # no cluster here
    assert "Kubernetes" in out
    code, out = run(incident, "execute", proposal["id"], user="bob")  # exactly once
    assert code == 2 and "is failed; only an approved proposal can be executed" in out
    _, out = run(incident, "show", json.loads(run(incident, "incidents", "--json")[1])[0]["id"])
    assert proposal["id"] in out and "failed" in out


def _denied_for_cooldown(config: Path) -> str:
    from agent.ledger.sqlite import SqliteLedger
    from agent.model import DecisionStep, Proposal, Verdict

    ledger = SqliteLedger(config.parent / "hemostat-ledger.db")
    now = datetime.now(UTC)
    proposal = Proposal("p-cool0001", "checkout", "rollback", "checkout", {}, (DecisionStep("d", "x"),), "r", now)
    ledger.add_proposal(proposal, Verdict("deny", "propose", ("cooldown: rollback on checkout ran at 03:00Z",),
                                          blocked_by="cooldown"), now, now + timedelta(minutes=30))
    ledger.close()
    return proposal.id


def test_approve_past_a_cooldown_needs_a_reason_and_the_policy(incident: Path, tmp_path: Path) -> None:
    pid = _denied_for_cooldown(incident)
    assert run(incident, "approve", pid, "--override-cooldown", user="bob")[0] == 2  # no --reason
    policy = tmp_path / "policy.yaml"
    asserted = {"sources": ["asserted"]}  # --user names count under this policy
    policy.write_text(yaml.safe_dump({"approvers": asserted,
                                      "actions": {"rollback": {"cooldown_override": False}}}))
    doc = yaml.safe_load(incident.read_text())
    incident.write_text(yaml.safe_dump({**doc, "policy": str(policy)}))
    code, out = run(incident, "approve", pid, "--override-cooldown", "--reason", "SEV-1, retry", user="bob")
    assert code == 2 and "cooldown_override" in out  # this policy does not allow it
    policy.write_text(yaml.safe_dump({"approvers": asserted,
                                      "actions": {"rollback": {"cooldown_override": True}}}))
    code, out = run(incident, "approve", pid, "--override-cooldown", "--reason", "SEV-1, retry", user="bob")
    assert code == 0 and "now approved" in out, out
    _, shown = run(incident, "show", pid, "--json")
    [approved] = [e for e in json.loads(shown)["events"] if e["type"] == "proposal_approved"]
    assert approved["data"]["override"] == "cooldown" and approved["data"]["reason"] == "SEV-1, retry"
