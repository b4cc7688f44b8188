"""advisor's probes: the code that runs inside the observed program and only measures.

Every probe follows one small protocol (``start()``, ``stop()``, ``drain()``) and imports
nothing from the rest of advisor, so it can be embedded in a production server without
pulling in pydantic or the renderers. A probe that fails disables itself rather than
raising into the user's code, and every hook it installs chains the previous one and is
restored on stop.
"""

from __future__ import annotations

from typing import Protocol


class Probe(Protocol):
    """What the capture layer needs of a probe."""

    name: str

    def start(self) -> None:
        """Install the probe's hooks; must not raise into the caller's program."""

    def stop(self) -> None:
        """Remove the hooks, restoring whatever was there before."""

    def drain(self) -> object:
        """Hand over what was measured (plain records, no pydantic)."""
