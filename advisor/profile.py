"""The report model (schema version 1): what a run measured and what advisor advises.

These pydantic models are the contract of ``CONTRACT.md`` made executable: the JSON that
``--json`` writes, that ``advisor report`` reads back and that pipelines rely on. Fields
may be added, never renamed or removed. ``load_report`` turns every way a file can be
wrong into a ``ReportError`` with a one-line message.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

SCHEMA_VERSION = 1
TOOL_NAME = "advisor"
TOOL_VERSION = "0.1.0"

UnitKind = Literal["asyncio-task", "greenlet", "thread"]
Severity = Literal["high", "medium", "low", "info"]
SEVERITIES: tuple[Severity, ...] = ("high", "medium", "low", "info")


class Model(BaseModel):
    """Base of every report model: unknown fields are kept, so newer minor additions load."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)


class Tool(Model):
    name: str = TOOL_NAME
    version: str = TOOL_VERSION


class Overhead(Model):
    """How much the probes slowed the run, and whether the figures were corrected for it."""

    factor_estimate: float = 1.0
    corrected: bool = False
    overhead_s: float = 0.0
    probe_cpu_s: float = 0.0
    hooked_steps: int = 0
    per_step_cost_s: float = 0.0
    sampler_ticks: int = 0
    sample_interval_s: float = 0.0
    python_call_s: float = 0.0  # what one call of a one-line method costs here
    profiler_call_s: float = 0.0  # deep mode: what yappi adds to one call (subtracted)
    bytecode_factor: float = 1.0  # deep mode: how much slower bytecode runs under yappi (taken out)
    deep_paused_s: float = 0.0  # deep mode: time the profile paused (too many live tasks)
    # deep mode: the main thread's speed samples while the program ran, and the scale they
    # gave the calibrated costs per call (1.0: too few, the calibrations' speed)
    speed_samples: int = 0
    speed_scale: float = 1.0
    call_wrapper_s: float = 0.0  # what standard mode's call counting adds to one call
    # a server's light mode under load: the share of the time greenlet switches were traced,
    # and the seconds tracing was paused to keep the probes' cost within budget (requests
    # then timed, not broken down: see RouteStat.measured)
    traced_share: float = 1.0
    trace_paused_s: float = 0.0


class ProbeStatus(Model):
    name: str
    active: bool
    note: str = ""


class CodeVersion(Model):
    """The version of the profiled code: its repository's commit and whether the working tree
    had changes (none when the target is not in a git repository), and the user's release name."""

    commit: str | None = None
    dirty: bool = False
    release: str | None = None


class RunInfo(Model):
    argv: list[str]
    mode: Literal["light", "standard", "deep"] = "standard"
    python: str
    cpu_count: int
    started_at: str
    wall_s: float
    cpu_s: float
    exit_code: int
    partial: bool = False
    overhead: Overhead = Field(default_factory=Overhead)
    cwd: str = ""
    probes: list[ProbeStatus] = Field(default_factory=list)
    code_version: CodeVersion | None = None


class Breakdown(Model):
    compute_s: float = 0.0
    io_s: float = 0.0
    waiting_s: float = 0.0
    scheduling_s: float = 0.0

    def total(self) -> float:
        return self.compute_s + self.io_s + self.waiting_s + self.scheduling_s


class LineUnit(Model):
    """A unit (by name) that spent sampled time on a line."""

    unit: str
    seconds: float


class LineStat(Model):
    """One line of a hot function: sampled self time there (on or off the CPU, idle excluded),
    its on-CPU part, and the units that spent most of it."""

    line: int
    self_s: float
    cpu_s: float = 0.0
    units: list[LineUnit] = Field(default_factory=list)


class HotSpot(Model):
    function: str
    file: str
    line: int
    self_s: float
    lines: list[LineStat] = Field(default_factory=list)  # the function's hottest lines in this unit


class BlockingSite(Model):
    """Where a unit was blocked while holding its thread or loop, and in what."""

    kind: Literal["io", "waiting"]
    call: str
    function: str
    file: str
    line: int
    seconds: float


class CodePlace(Model):
    function: str
    file: str
    line: int


class AwaitSite(Model):
    """Where a task awaited in the program's code, and what those awaits cost.

    ``chain`` holds the program's frames of the await chain, outermost first; ``calls``
    counts the distinct awaited calls made there (one per loop iteration for
    ``for x in xs: await fetch(x)``), ``longest_s`` the longest of them.
    """

    function: str
    file: str
    line: int
    chain: list[CodePlace] = Field(default_factory=list)
    suspensions: int
    calls: int
    io_s: float
    waiting_s: float
    longest_s: float
    lock_s: float = 0.0  # the part of waiting_s spent waiting for a lock or semaphore


class UnitFunction(Model):
    """A function's deterministic stats inside one unit (deep mode), times corrected."""

    function: str
    file: str
    line: int
    calls: int
    self_s: float
    total_s: float


class Task(Model):
    id: str
    name: str
    target: str
    kind: UnitKind
    count: int = 1
    wall_s: float
    cpu_s: float
    breakdown: Breakdown
    blocking_s: float = 0.0
    lock_wait_s: float = 0.0
    hot: list[HotSpot] = Field(default_factory=list)
    blocking: list[BlockingSite] = Field(default_factory=list)
    awaits: list[AwaitSite] = Field(default_factory=list)
    functions: list[UnitFunction] = Field(default_factory=list)
    steps: int = 0
    longest_step_s: float = 0.0
    file: str = ""
    line: int = 0
    # seconds from the run's start to the unit's creation and to its end (or the end of the
    # run); a fold spans its first creation to its last end. None in reports made before.
    start_s: float | None = None
    end_s: float | None = None
    # advisor.tag(key=value) labels: key -> value -> how many of the folded units had it
    labels: dict[str, dict[str, int]] = Field(default_factory=dict)
    # what advisor's own probes cost this unit (deep mode: yappi's per-call cost; standard
    # mode: call counting), measured on its thread and taken out of its wall_s and compute_s
    profiler_s: float = 0.0
    # an asyncio task's event loop or a greenlet's hub, as the id of the thread unit that ran it
    # (None: not recorded)
    loop: str | None = None


class CallWindow(Model):
    """What a bounded window of counted calls saw (standard mode, hot functions only).

    Only a hash of each argument tuple was kept, never the values: ``distinct_args`` counts
    the distinct hashes (capped at 4096), ``unhashable_calls`` the calls whose arguments
    could not be hashed (an ``lru_cache`` would refuse them).
    """

    calls: int
    distinct_args: int
    unhashable_calls: int
    per_call_s: float
    window_s: float


class CallEdge(Model):
    """A caller of a function (deep mode), with how many calls it made."""

    function: str
    file: str
    line: int
    calls: int


class FunctionStat(Model):
    function: str
    file: str
    line: int
    calls: int | None = None
    self_s: float
    total_s: float
    cpu_s: float
    window: CallWindow | None = None
    callers: list[CallEdge] = Field(default_factory=list)
    lines: list[LineStat] = Field(default_factory=list)  # its hottest lines, from the samples


class Location(Model):
    file: str
    line: int
    function: str = ""


class UnitPrediction(Model):
    """One unit's wall time in the run as measured and as replayed with a finding's fix."""

    unit: str
    before_s: float
    after_s: float


class Prediction(Model):
    """What replaying the run with a finding's fix predicts (see advisor/whatif/): the run's
    wall time before and after, the units whose wall time changes, and the rule's own
    rule-of-thumb estimate that the replay replaced."""

    wall_before_s: float
    wall_after_s: float
    units: list[UnitPrediction] = Field(default_factory=list)
    rule_estimate_s: float = 0.0
    # "timeline": a discrete-event simulation of the recorded task steps; "aggregates": the
    # per-unit model (threads, greenlets, light mode, a truncated timeline)
    replayed_from: Literal["timeline", "aggregates"] = "aggregates"


class Finding(Model):
    rule: str
    code: str
    severity: Severity
    message: str
    location: Location
    evidence: dict[str, Any] = Field(default_factory=dict)
    estimated_savings_s: float = 0.0
    fix: str | None = None
    # `advisor fix` can make this change itself (a mechanical, safe rewrite: see advisor/fix/)
    fixable: bool = False
    # embedded in a server: the routes whose requests spent sampled time at this finding
    routes: list[str] = Field(default_factory=list)
    # the user spans (advisor.span / advisor.trace) that spent sampled time at this finding
    spans: list[str] = Field(default_factory=list)
    # the replay of the run with this fix alone (its estimated_savings_s comes from it)
    prediction: Prediction | None = None


class SampleFrame(Model):
    function: str
    file: str
    line: int


class StackSample(Model):
    """One distinct sampled stack of one unit (frames are indices into ``frames``, leaf first)."""

    unit: str
    frames: list[int]
    on_cpu_s: float
    off_cpu_s: float
    state: Literal["running", "io", "waiting", "idle", "scheduling"]


class Samples(Model):
    interval_s: float = 0.0
    frames: list[SampleFrame] = Field(default_factory=list)
    stacks: list[StackSample] = Field(default_factory=list)

    @model_validator(mode="after")
    def _frames_exist(self) -> Samples:
        """A stack may only point into the frame table (renderers index it)."""
        count = len(self.frames)
        for number, stack in enumerate(self.stacks):
            if any(not 0 <= index < count for index in stack.frames):
                raise ValueError(f"stack {number} points outside the {count} frames")
        return self


class RouteStat(Model):
    """The requests of one route served under advisor's middleware (``advisor.embed``).

    Times are totals over the ``measured`` requests (the breakdown adds up to ``wall_s``);
    the percentiles are of one request's wall time over all ``count`` requests, from a fixed-size log histogram (within
    about 5%). ``route`` is ``METHOD path`` or the template the server names; ``other``
    gathers the routes past the cap on distinct routes.
    """

    route: str
    count: int
    errors: int = 0
    measured: int = 0  # requests whose unit was traced: the breakdown and wall_s sum these
    wall_s: float
    p50_s: float = 0.0
    p95_s: float = 0.0
    p99_s: float = 0.0
    max_s: float = 0.0
    breakdown: Breakdown = Field(default_factory=Breakdown)
    blocking_s: float = 0.0
    hot: list[HotSpot] = Field(default_factory=list)
    blocking: list[BlockingSite] = Field(default_factory=list)
    # the wall-time histogram itself (bucket -> requests; see advisor.embed.routes), so the
    # reports of several workers merge into exact percentiles
    histogram: dict[str, int] = Field(default_factory=dict)


class SpanStat(Model):
    """The calls of one user span (``advisor.span(name)`` or ``@advisor.trace``), aggregated.

    Times are totals over the ``measured`` calls (the breakdown adds up to ``wall_s``); the
    percentiles are of one call's wall time over all ``count`` calls (within about 5%).
    ``labels`` counts the calls per label value (``advisor.span(name, key=value)`` and
    ``advisor.tag``), at most a few values per key: the rest count under ``other``.
    """

    name: str
    count: int
    errors: int = 0
    measured: int = 0
    wall_s: float
    p50_s: float = 0.0
    p95_s: float = 0.0
    p99_s: float = 0.0
    max_s: float = 0.0
    breakdown: Breakdown = Field(default_factory=Breakdown)
    blocking_s: float = 0.0
    file: str = ""
    line: int = 0
    function: str = ""
    hot: list[HotSpot] = Field(default_factory=list)
    blocking: list[BlockingSite] = Field(default_factory=list)
    labels: dict[str, dict[str, int]] = Field(default_factory=dict)
    # the wall-time histogram (bucket -> calls, as a route's), so merged reports get percentiles
    histogram: dict[str, int] = Field(default_factory=dict)


WaitKind = Literal["new", "ready", "timer", "io", "waiting", "lock"]
# A recorded step at least this long may have held its loop in a blocking call or heavy CPU
# (the what-if replay cuts a fix's held time from such steps; the HTML lanes estimate their
# blocking part)
LONG_STEP_S = 0.002


class TimelineTrack(Model):
    """One task's steps in order (a fold's tasks each have their own track), times in
    seconds from the run's start. Before step *i* the task waited for ``waits[i]`` (``new``:
    its first step); a timer's due time is ``due_s[i]``; ``after[i]`` lists the tracks (by
    index in ``Timeline.tracks``) it waited to finish, where asyncio says (an awaited task,
    a ``gather``'s children). ``cpu_s[i]`` is the step's thread CPU, or null if not read."""

    unit: str  # the Task id of its report entry
    loop: str | None = None  # the thread unit running its loop
    created_s: float
    creator: int | None = None  # the track whose step created it
    start_s: list[float] = Field(default_factory=list)
    end_s: list[float] = Field(default_factory=list)
    cpu_s: list[float | None] = Field(default_factory=list)
    waits: list[WaitKind] = Field(default_factory=list)
    due_s: list[float | None] = Field(default_factory=list)
    after: dict[int, list[int]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _same_lengths(self) -> TimelineTrack:
        lengths = {len(self.start_s), len(self.end_s), len(self.cpu_s), len(self.waits), len(self.due_s)}
        if len(lengths) != 1:
            raise ValueError("a timeline track's step lists differ in length")
        return self


class Timeline(Model):
    """Every asyncio task step of the run, for the what-if replay (standard and deep mode;
    bounded: past ``steps`` kept, ``truncated`` is true and the replay falls back to the
    per-unit aggregates)."""

    steps: int = 0
    truncated: bool = False
    tracks: list[TimelineTrack] = Field(default_factory=list)


class Report(Model):
    schema_version: int = SCHEMA_VERSION
    tool: Tool = Field(default_factory=Tool)
    run: RunInfo
    tasks: list[Task] = Field(default_factory=list)
    functions: list[FunctionStat] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    samples: Samples = Field(default_factory=Samples)
    routes: list[RouteStat] = Field(default_factory=list)  # embedded in a server only
    # "sha256:<hex>" of each file the findings point into, as the rules read it: `advisor fix
    # --apply` refuses a file that changed since (empty in reports made before)
    sources: dict[str, str] = Field(default_factory=dict)
    spans: list[SpanStat] = Field(default_factory=list)  # user spans (advisor.span / advisor.trace)
    timeline: Timeline | None = None  # task steps in order (standard and deep mode), for the what-if replay


class ReportError(Exception):
    """A report file that cannot be used; the message is one line for the user."""


# A report of a real run is a few megabytes (units fold, samples are bounded); a file far
# larger is not one, and reading it whole would cost the machine gigabytes of memory.
MAX_REPORT_BYTES = 64 * 1024 * 1024


def _reject_constant(value: str) -> float:
    raise ValueError(f"{value} is not allowed in a report")


def load_report(path: str | os.PathLike[str]) -> Report:
    """Read and validate a saved report, or raise ReportError with a one-line reason."""
    where = Path(path)
    if where.is_dir():
        raise ReportError(f"{where}: is a directory, not a report file")
    try:
        size = where.stat().st_size
    except OSError:
        size = 0  # reading says why
    if size > MAX_REPORT_BYTES:
        raise ReportError(f"{where}: too large for a report ({size / 2**20:.0f} MiB; "
                          f"the limit is {MAX_REPORT_BYTES // 2**20} MiB)")
    try:
        # bounded: a pipe or a device (/dev/zero) has no size to check beforehand
        with where.open("rb") as source:
            data = source.read(MAX_REPORT_BYTES + 1)
        if len(data) > MAX_REPORT_BYTES:
            raise ReportError(f"{where}: too large for a report (the limit is {MAX_REPORT_BYTES // 2**20} MiB)")
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise ReportError(f"{where}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ReportError(f"{where}: cannot read: {getattr(error, 'strerror', None) or error}") from None
    return parse_report(text, str(where))


def parse_report(text: str, source: str = "<report>") -> Report:
    """Validate a report's JSON text (see ``load_report``)."""
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ReportError(f"{source}: not a report: JSON nested too deeply") from None
    except ValueError as error:
        raise ReportError(f"{source}: not valid JSON: {str(error).splitlines()[0]}") from None
    if not isinstance(document, dict):
        raise ReportError(f"{source}: not a report: the top level is not a JSON object")
    version = document.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ReportError(f"{source}: not an advisor report: no integer schema_version")
    if version > SCHEMA_VERSION:
        raise ReportError(f"{source}: schema_version {version} is newer than this advisor understands "
                          f"({SCHEMA_VERSION}); upgrade advisor")
    if version < 1:
        raise ReportError(f"{source}: schema_version {version} is not a known version")
    try:
        return Report.model_validate(document)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise ReportError(f"{source}: invalid report: {where}: {first['msg']}") from None
    except RecursionError:
        raise ReportError(f"{source}: not a report: nested too deeply") from None


def report_json(report: Report) -> str:
    """The report as indented JSON text."""
    return report.model_dump_json(indent=2, exclude_none=False) + "\n"


def write_atomically(path: str | os.PathLike[str], content: str | bytes) -> None:
    """Write a file (text as UTF-8, or bytes as they are) so that readers see the old or the
    new content, never half of it."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        # mkstemp makes a 0600 file: give it the mode a plain write would (or the old one's)
        try:
            mode = os.stat(target).st_mode & 0o7777
        except OSError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            out.write(content.encode("utf-8") if isinstance(content, str) else content)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise

