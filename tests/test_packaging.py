"""The wheel ships every package of the source tree (an editable install would hide a miss)."""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def listed_packages() -> tuple[set[str], dict[str, str]]:
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    return set(settings["packages"]), settings["package-dir"]


def test_every_source_package_is_listed_for_the_wheel() -> None:
    listed, directories = listed_packages()
    found = set()
    for package, directory in directories.items():
        base = ROOT / directory
        for init in base.rglob("__init__.py"):
            relative = init.parent.relative_to(base)
            if "__pycache__" in relative.parts:
                continue
            found.add(".".join((package, *relative.parts)))
    missing = {name for name in found if name not in listed}
    assert not missing, f"pyproject.toml [tool.setuptools] packages lacks {sorted(missing)}"
    assert listed <= found | {"advisor.render.templates"}, sorted(listed - found)
