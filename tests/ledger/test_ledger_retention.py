"""Retention, on every backend: `prune` moves resolved incidents older than the cutoff into an
archive, stops at the first event still needed, and leaves both the ledger and the archive
verifiable."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.ledger import IncidentRecord, Ledger, LedgerError, retention
from agent.model import DecisionStep, Proposal, Verdict

T0 = datetime(2026, 9, 1, 3, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=100)


def _incident(ledger: Ledger, name: str, opened: datetime, resolved: datetime | None) -> str:
    record = ledger.open_incident(IncidentRecord(f"inc-{name}", name, f"{name} errors", "opened", 2,
                                                 opened, opened), "hemostat")
    ledger.append("triaged", "hemostat", opened + timedelta(minutes=1), incident_id=record.id,
                  data={"headline": f"{name} failing"})
    proposal = Proposal(id=f"p-{name}", target=name, action="rollback", subject=f"deployment/{name}",
                        params={}, path=(DecisionStep("recent-deploy", "deploy"),), reason="rollback",
                        created_at=opened, incident_id=record.id)
    ledger.add_proposal(proposal, Verdict("needs_approval", "propose", ("policy",), 1), opened, None)
    ledger.approve(proposal.id, "dana", opened + timedelta(minutes=2))
    if resolved is not None:
        ledger.transition(proposal.id, "rejected", "dana", resolved, {"reason": "fixed upstream"})
        ledger.set_incident_status(record.id, "resolved", "dana", resolved)
    return record.id


def _history(ledger: Ledger) -> dict[str, str]:
    """old (resolved), then open (still open), then late (resolved after open began)."""
    ids = {"old": _incident(ledger, "old", T0, T0 + timedelta(hours=1))}
    ledger.append("alert_unmatched", "alertmanager", T0 + timedelta(hours=1, minutes=30), data={"alerts": []})
    ids["open"] = _incident(ledger, "open", T0 + timedelta(hours=2), None)
    ids["late"] = _incident(ledger, "late", T0 + timedelta(hours=3), T0 + timedelta(hours=4))
    return ids


def test_prune_archives_resolved_incidents_and_stops_at_the_first_still_needed(ledger: Ledger,
                                                                                tmp_path: Path) -> None:
    ids = _history(ledger)
    first_open = ledger.events(incident_id=ids["open"])[0].seq
    report = retention.prune(ledger, T0 + timedelta(days=30), tmp_path / "a.jsonl", "ops", NOW)  # type: ignore[arg-type]
    assert report.through_seq == first_open - 1 and report.incidents == [ids["old"]]
    assert f"belongs to incident {ids['open']}" in str(report.stopped_by)
    assert [i.id for i in ledger.incidents()] == [ids["late"], ids["open"]]
    assert [p.id for p in ledger.proposals()] == ["p-open", "p-late"]
    assert ledger.events()[0].seq == first_open and ledger.events()[-1].type == "ledger_pruned"
    verified = ledger.verify_chain()
    assert verified.ok and verified.anchor is not None and verified.anchor.through_seq == first_open - 1
    archived = retention.verify_archive(tmp_path / "a.jsonl")
    assert archived.ok and archived.checked == report.events and archived.end == verified.anchor
    lines = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert {(r["record"]["table"], r["record"]["row"]["id"]) for r in lines if "record" in r and
            r["record"]["table"] != "approvals"} == {("incidents", ids["old"]), ("proposals", "p-old")}
    assert [r["record"]["row"]["actor"] for r in lines if r.get("record", {}).get("table") == "approvals"] == ["dana"]


def test_a_second_prune_archives_what_the_first_kept_and_both_archives_verify(ledger: Ledger,
                                                                             tmp_path: Path) -> None:
    ids = _history(ledger)
    retention.prune(ledger, T0 + timedelta(days=30), tmp_path / "1.jsonl", "ops", NOW)  # type: ignore[arg-type]
    ledger.set_incident_status(ids["open"], "resolved", "dana", T0 + timedelta(hours=5))
    ledger.transition("p-open", "rejected", "dana", T0 + timedelta(hours=5))
    report = retention.prune(ledger, NOW + timedelta(days=1), tmp_path / "2.jsonl", "ops",  # type: ignore[arg-type]
                             NOW + timedelta(days=2))
    assert report.stopped_by is None and sorted(report.incidents) == sorted([ids["open"], ids["late"]])
    assert ledger.incidents() == [] and [e.type for e in ledger.events()] == ["ledger_pruned"]
    assert ledger.verify_chain().ok
    assert retention.verify_archive(tmp_path / "1.jsonl").ok and retention.verify_archive(tmp_path / "2.jsonl").ok


def test_an_incident_resolved_after_the_cutoff_keeps_all_its_events(ledger: Ledger, tmp_path: Path) -> None:
    ids = _history(ledger)
    before = len(ledger.events())
    report = retention.prune(ledger, T0 + timedelta(minutes=30), tmp_path / "a.jsonl", "ops", NOW)  # type: ignore[arg-type]
    assert report.events == 0 and f"belongs to incident {ids['old']}" in str(report.stopped_by)
    assert len(ledger.events()) == before and not (tmp_path / "a.jsonl").exists()


def test_a_tampered_ledger_is_not_pruned_and_no_archive_is_written(ledger: Ledger, tmp_path: Path,
                                                                    as_owner: Callable[..., None]) -> None:
    _history(ledger)
    as_owner(f"UPDATE events SET actor = 'mallory' WHERE seq = {ledger.events()[1].seq}")
    with pytest.raises(LedgerError, match="does not verify"):
        retention.prune(ledger, T0 + timedelta(days=30), tmp_path / "a.jsonl", "ops", NOW)  # type: ignore[arg-type]
    assert not (tmp_path / "a.jsonl").exists() and ledger.incidents()


def test_a_changed_archive_does_not_verify(ledger: Ledger, tmp_path: Path) -> None:
    _history(ledger)
    path = tmp_path / "a.jsonl"
    retention.prune(ledger, T0 + timedelta(days=30), path, "ops", NOW)  # type: ignore[arg-type]
    lines = path.read_text().splitlines()
    doc = json.loads(lines[2])
    doc["event"]["actor"] = "mallory"
    path.write_text("\n".join([*lines[:2], json.dumps(doc), *lines[3:]]) + "\n")
    result = retention.verify_archive(path)
    assert not result.ok and result.broken_seq == doc["event"]["seq"] and "archive was changed" in str(result.reason)


def test_an_archive_is_private_its_records_are_checked_and_revert_approvals_move_with_it(
        ledger: Ledger, tmp_path: Path) -> None:
    """Issue 23, M5: the archive was 0644, renaming an archived approver passed verify-archive,
    and revert approvals stayed behind in the live ledger, orphaned."""
    from agent.model.identity import Identity

    ids = {"old": _incident(ledger, "old", T0, T0 + timedelta(hours=1))}
    ledger.approve_revert("p-old", Identity.asserted("erin"), T0 + timedelta(minutes=50))
    ids["open"] = _incident(ledger, "open", T0 + timedelta(hours=2), None)
    path = tmp_path / "a.jsonl"
    retention.prune(ledger, T0 + timedelta(days=30), path, "ops", NOW)  # type: ignore[arg-type]
    assert path.stat().st_mode & 0o777 == 0o600
    assert retention.verify_archive(path).ok
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["record"]["row"]["subject"] for r in lines
            if r.get("record", {}).get("table") == "revert_approvals"] == ["erin"]
    with ledger._tx() as cur:  # type: ignore[attr-defined]
        cur.execute("SELECT count(*) FROM revert_approvals WHERE proposal_id = 'p-old'")
        assert cur.fetchone()[0] == 0
    for line in lines:
        if line.get("record", {}).get("table") == "approvals":
            line["record"]["row"]["subject"] = "mallory"  # the approver, renamed
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = retention.verify_archive(path)
    assert not result.ok
    assert "approvals row (p-old, asserted:mallory): no approval event records it" in str(result.reason)
    assert ids["old"] not in [i.id for i in ledger.incidents()]


def test_a_re_chained_archive_fails_against_the_live_anchors(ledger: Ledger, tmp_path: Path) -> None:
    """M5: an archive edited and then re-chained from its first event to its last verified."""
    from agent.ledger import chain

    _history(ledger)
    path = tmp_path / "a.jsonl"
    retention.prune(ledger, T0 + timedelta(days=30), path, "ops", NOW)  # type: ignore[arg-type]
    assert retention.verify_archive(path, ledger.anchors()).ok
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    prev = chain.GENESIS
    for line in lines:
        event = line.get("event")
        if event is None:
            continue
        if event["type"] == "triaged":
            event["data_text"] = event["data_text"].replace("failing", "fine")
        at = datetime.fromisoformat(event["at"].replace("Z", "+00:00"))
        event["hash"] = prev = chain.link(prev, event["seq"], at, event["type"], event["actor"],
                                          event["incident_id"], event["proposal_id"], event["data_text"])
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert retention.verify_archive(path).ok  # on its own, a re-chained archive is consistent
    result = retention.verify_archive(path, ledger.anchors())
    assert not result.ok and "no anchor of the live ledger" in str(result.reason)
