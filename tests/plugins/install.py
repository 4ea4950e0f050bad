"""Install a test plugin as a real distribution in a temp site dir (for PYTHONPATH)."""

from __future__ import annotations

import shutil
from pathlib import Path

HERE = Path(__file__).parent


def install_plugin(site: Path, module_source: str | None, entry_points: str, name: str = "testplugin") -> Path:
    """Write `<name>.dist-info` with the entry points, plus the plugin module if given."""
    site.mkdir(parents=True, exist_ok=True)
    info = site / f"hemostat_{name}-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: hemostat-{name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)
    if module_source is not None:
        shutil.copy(HERE / module_source, site / module_source)
    return site
