"""Plain records the probes produce: one mutable record per unit of concurrency.

A ``UnitRecord`` is written by the probe that owns the unit (task ledger, thread
registry) and by the sampler, which adds stack samples to whatever unit was running.
The fields the sampler writes (``samples``) are never written by the owner's hot path,
so the two threads do not race on the same counters. Times are ``perf_counter`` seconds.
"""

from __future__ import annotations

from types import CodeType
from typing import Any

# A stack as the sampler saw it: leaf first, (code object, line number) per frame.
Frame = tuple[CodeType, int]
Stack = tuple[Frame, ...]

# An await site: the program's own frames in the await chain, outermost first.
Site = tuple[Frame, ...]

MAX_CONTEXTS = 10_000
# advisor.tag labels are low-cardinality: at most this many keys, and values per key
MAX_TAG_KEYS = 16
MAX_TAG_VALUES = 20
OTHER_TAG_VALUE = "other"

# Per stack: [on-CPU seconds, off-CPU seconds (blocked), the part of those while other threads
# ran, seconds ready but not running: in the kernel's run queue, or kept off by the sampler
# holding the GIL (not in the blocked seconds)]
ON_CPU, OFF_CPU, OFF_CPU_CONTENDED, HELD_BY_SAMPLER = 0, 1, 2, 3


class UnitRecord:
    """What is known of one unit (or of a fold of many units with the same target)."""

    __slots__ = (
        "contexts",
        "count",
        "cpu_s",
        "created",
        "due",
        "ended",
        "first_run",
        "ident",
        "io_s",
        "key",
        "kind",
        "lock_s",
        "longest_step_s",
        "name",
        "named",
        "running_s",
        "samples",
        "scheduling_s",
        "steps",
        "susp_at",
        "tag_samples",
        "tags",
        "target",
        "target_file",
        "target_line",
        "uid",
        "wait_kind",
        "wait_site",
        "waiting_s",
        "waits",
        "wall_s",
    )

    def __init__(self, uid: int, kind: str, target: str, target_file: str, target_line: int,
                 created: float) -> None:
        self.uid = uid
        self.kind = kind
        self.name = ""
        self.named = False
        self.key: tuple[object, ...] = ()
        self.target = target
        self.target_file = target_file
        self.target_line = target_line
        self.count = 1
        # deep mode's handles on this unit's yappi stats: the thread ident, and the asyncio
        # tags or greenlet context ids (at most MAX_CONTEXTS of them for a fold)
        self.ident = 0
        self.contexts: list[int] | None = None
        self.created = created
        self.first_run: float | None = None
        self.ended: float | None = None
        self.wall_s = 0.0
        self.running_s = 0.0
        self.cpu_s: float | None = None
        self.steps = 0
        self.longest_step_s = 0.0
        self.io_s = 0.0
        self.waiting_s = 0.0
        self.scheduling_s = 0.0
        self.lock_s = 0.0  # the part of waiting_s spent acquiring locks and semaphores
        # live suspension state (ledger only)
        self.susp_at: float | None = None
        self.wait_kind = 0
        self.due = 0.0
        # where in the program's code the unit is suspended: (site, callee token) or None
        self.wait_site: tuple[Site, Any] | None = None
        # per await site: [suspensions, io_s, waiting_s, episodes, longest episode, current
        # episode, last callee token, lock_s]; an episode is one awaited call (one callee)
        self.waits: dict[Site, list[Any]] | None = None
        # written by the sampler (and, under its lock, by the hook for the tail of a long step)
        self.samples: dict[Stack, list[float]] | None = None
        # while set (by an embedding middleware, for one request), the sampler also adds this
        # unit's step samples to this table: the request's route's own stacks
        self.tag_samples: dict[Stack, list[float]] | None = None
        # advisor.tag(key=value) labels: key -> value -> units of a fold that had it
        self.tags: dict[str, dict[str, int]] | None = None

    def copy(self) -> UnitRecord:
        """A detached copy, for a report taken while the probes keep writing to this record
        (its sample and wait tables are copied too; ``list()`` copies in C, under the GIL)."""
        other = UnitRecord(self.uid, self.kind, self.target, self.target_file, self.target_line, self.created)
        for name in UnitRecord.__slots__:
            if name not in ("samples", "waits", "contexts", "tag_samples", "tags"):
                setattr(other, name, getattr(self, name))
        samples = self.samples
        if samples is not None:
            other.samples = {stack: list(weights) for stack, weights in list(samples.items())}
        waits = self.waits
        if waits is not None:
            other.waits = {site: list(numbers) for site, numbers in list(waits.items())}
        if self.contexts is not None:
            other.contexts = list(self.contexts)
        tags = self.tags
        if tags is not None:
            other.tags = {key: dict(values) for key, values in list(tags.items())}
        return other

    def add_samples(self, other: UnitRecord) -> None:
        """Merge another record's stack samples and await sites into this one."""
        if other.samples:
            mine = self.samples if self.samples is not None else {}
            # list() copies in C, under the GIL: the sampler thread may add to the dict meanwhile
            for stack, weights in list(other.samples.items()):
                into = mine.get(stack)
                if into is None:
                    mine[stack] = list(weights)
                else:
                    for index, value in enumerate(weights):
                        into[index] += value
            self.samples = mine
        if other.contexts:
            contexts = self.contexts if self.contexts is not None else []
            contexts.extend(other.contexts[: max(0, MAX_CONTEXTS - len(contexts))])
            self.contexts = contexts
        if other.waits:
            waits = self.waits if self.waits is not None else {}
            for site, numbers in list(other.waits.items()):
                into_site = waits.get(site)
                if into_site is None:
                    waits[site] = list(numbers)
                else:
                    for index in range(4):
                        into_site[index] += numbers[index]
                    into_site[4] = max(into_site[4], numbers[4])
                    into_site[7] += numbers[7]
            self.waits = waits
        if other.tags:
            self.add_tags(other.tags)

    def add_tags(self, tags: dict[str, dict[str, int]]) -> None:
        """Count another record's tag values in this one, a few values per key (the rest
        count as ``other``, so a fold of a million units stays small)."""
        mine = self.tags if self.tags is not None else {}
        for key, values in list(tags.items()):
            if key not in mine and len(mine) >= MAX_TAG_KEYS:
                continue
            counts = mine.setdefault(key, {})
            for value, count in list(values.items()):
                if value not in counts and len(counts) >= MAX_TAG_VALUES:
                    value = OTHER_TAG_VALUE
                counts[value] = counts.get(value, 0) + count
        self.tags = mine


def add_weights_in_python(samples: dict[Stack, list[float]], stack: Stack, on: float, off: float,
                          contended: float, held: float = 0.0) -> None:
    """Add one sample's weights to a stack table."""
    weights = samples.get(stack)
    if weights is None:
        samples[stack] = [on, off, contended, held]
    else:
        weights[0] += on
        weights[1] += off
        weights[2] += contended
        weights[3] += held


add_weights = add_weights_in_python
try:  # the same, with each code object hashed once (optional: built where a compiler was found)
    from ._stacks import add_weights  # type: ignore[import-not-found,no-redef,unused-ignore]  # noqa: F401
except ImportError:  # pragma: no cover - depends on the build
    pass
