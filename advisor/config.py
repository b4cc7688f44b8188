"""The user's settings for advisor: ``[tool.advisor]`` in the project's pyproject.toml.

```toml
[tool.advisor]
select = ["blocking-sleep", "ADV2"]     # rules (slugs, codes or code prefixes) to run
ignore = ["call-overhead"]              # rules to skip
[tool.advisor.cacheable-function]       # per-rule thresholds
min_calls = 500
```

The file is looked up from the working directory upwards. A malformed file is the user's
error: a one-line message, exit status 2.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


@dataclass
class Settings:
    select: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    options: dict[str, dict[str, float]] = field(default_factory=dict)
    source: str = ""


def find_pyproject(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def _names(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise UsageError(f"{where} must be a list of rule names")
    return list(value)


def load_settings(start: Path | None = None) -> Settings:
    path = find_pyproject(start or Path.cwd())
    if path is None:
        return Settings()
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise UsageError(f"{path}: cannot read [tool.advisor]: {error}") from None
    tool = document.get("tool", {})
    if not isinstance(tool, dict):
        raise UsageError(f"{path}: [tool] must be a table")
    table = tool.get("advisor")
    if table is None:
        return Settings(source=str(path))
    if not isinstance(table, dict):
        raise UsageError(f"{path}: [tool.advisor] must be a table")
    settings = Settings(source=str(path))
    for key, value in table.items():
        if key == "select":
            settings.select = _names(value, f"{path}: tool.advisor.select")
        elif key == "ignore":
            settings.ignore = _names(value, f"{path}: tool.advisor.ignore")
        elif isinstance(value, dict):
            options: dict[str, float] = {}
            for name, number in value.items():
                if isinstance(number, bool) or not isinstance(number, (int, float)):
                    raise UsageError(f"{path}: tool.advisor.{key}.{name} must be a number")
                options[name] = float(number)
            settings.options[key] = options
        else:
            raise UsageError(f"{path}: unknown setting tool.advisor.{key}")
    return settings
