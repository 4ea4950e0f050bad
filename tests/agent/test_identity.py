"""Identities: normalised subjects, asserted names, and the OS user without a passwd entry."""

from __future__ import annotations

import os

import pytest

from agent.model.identity import Identity, normalize_subject


@pytest.mark.parametrize("spelling", ["Alice", " alice", "ALICE\t", "\uff21lice"])  # fullwidth A
def test_spellings_of_one_subject_are_one_person(spelling: str) -> None:
    assert Identity("kubernetes", spelling).same_person(Identity("slack", "alice"))
    assert normalize_subject(spelling) == "alice"


def test_an_identity_keeps_its_display_name_and_needs_a_subject() -> None:
    who = Identity("kubernetes", "  Alice@Example.com ", groups=("sre",))
    assert (who.subject, who.name, who.groups) == ("alice@example.com", "Alice@Example.com", ("sre",))
    assert Identity.from_json(who.to_json()) == who
    with pytest.raises(ValueError, match="non-empty subject"):
        Identity("asserted", "   ")


def test_a_uid_without_a_passwd_entry_still_gets_a_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenShift runs images under a random UID that /etc/passwd does not know; getpass.getuser()
    raised KeyError there and every command failed."""
    import pwd

    from agent.execution.identity import asserted, os_user

    uid = 54321
    with pytest.raises(KeyError):
        pwd.getpwuid(uid)  # really unknown on this machine
    for var in ("USER", "LOGNAME", "HEMOSTAT_USER"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(os, "getuid", lambda: uid)
    assert os_user() == f"uid:{uid}"
    assert asserted(None) == Identity("asserted", f"uid:{uid}")
