"""The house of docs/architecture.md: layers and no cycles (import-linter), small modules, few
loose ones, and a map whose module names match the tree."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("agent", "probes", "actions", "policies")


def test_import_contracts_hold() -> None:
    exe = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(exe), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    kept = re.search(r"Contracts: (\d+) kept, 0 broken\.", result.stdout)
    assert kept and int(kept.group(1)) >= 6, result.stdout
    assert "no import cycles" in result.stdout  # the acyclic contract is among them


def test_no_product_module_is_over_400_lines() -> None:
    long = {str(p.relative_to(ROOT)): n for pkg in PRODUCT for p in (ROOT / pkg).rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


def test_at_most_eight_modules_stay_loose_in_agent() -> None:
    loose = sorted(p.name for p in (ROOT / "agent").glob("*.py"))
    assert len(loose) <= 8, loose


def test_every_subpackage_says_what_it_owns_and_may_import() -> None:
    for init in (ROOT / "agent").glob("*/__init__.py"):
        doc = init.read_text().split('"""')[1] if '"""' in init.read_text() else ""
        assert len(doc.split()) >= 20, f"{init.relative_to(ROOT)} has no docstring worth the name"


def _module_file(dotted: str) -> Path | None:
    base = ROOT / Path(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _resolves(name: str) -> bool:
    """`agent.x.y` is a module, or `agent.x.y.thing` names a def/class/name in module agent.x.y."""
    parts = name.split(".")
    for cut in range(len(parts), 1, -1):
        module = _module_file(".".join(parts[:cut]))
        if module is None:
            continue
        if cut == len(parts):
            return True
        attr = parts[cut]
        return re.search(rf"^\s*(async def|def|class) {attr}\b|^{attr}\b", module.read_text(), re.M) is not None
    return False


def test_architecture_map_names_only_modules_that_exist() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    named = set(re.findall(r"`((?:agent|probes|actions|policies)(?:\.\w+)+)", text))
    assert len(named) > 30
    assert sorted(n for n in named if not _resolves(n)) == []
    for sub in (p.parent.name for p in (ROOT / "agent").glob("*/__init__.py")):
        assert f"`agent.{sub}`" in text, f"docs/architecture.md does not mention agent.{sub}"
