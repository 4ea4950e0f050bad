"""Write drills/fault-*.yaml: one drill per root cause of docs/findings.md, from the planted
faults of tests/probes/cluster_cases.py (tests/probes/fault_drills.py builds each). Run from the
repo root: `.venv/bin/python scripts/record_fault_drills.py`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.probes.cluster_cases import CASES  # noqa: E402
from tests.probes.fault_drills import path_name, scenario  # noqa: E402


def main() -> None:
    for cause in sorted(CASES):
        doc = json.loads(json.dumps(scenario(cause)))
        (ROOT / "drills" / path_name(cause)).write_text(yaml.safe_dump(doc, sort_keys=False, width=110))
    print(f"wrote {len(CASES)} drills")


if __name__ == "__main__":
    main()
