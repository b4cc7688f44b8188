"""The self-contained HTML report: one file that opens offline in any browser.

``render_html`` turns a report (fresh or loaded from JSON) into a single page with its
styles, script and data inlined: a header with the run's facts and the probes' overhead,
the findings by severity with the source lines around each one, a timeline with one lane
per unit, a flame graph of the sampled stacks filterable by unit, and the units' and hot
functions' tables. Tables and findings are rendered here with autoescaped jinja2; the
timeline and the flame graph are drawn in the browser by a small hand-written script from
the report's data, embedded as JSON in a script block. A strict content-security policy
forbids the page to load anything from anywhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from advisor.profile import SEVERITIES, Finding, Report, Task
from advisor.source import source_lines
from advisor.version import describe

from .flame import weighted_stacks
from .lanes import unit_segments
from .text import KIND_LABELS, percent, replay_line, seconds

TEMPLATES = Path(__file__).with_name("templates")
SNIPPET_CONTEXT = 4  # lines shown each side of a finding's line
MAX_FUNCTIONS = 40
MAX_EVIDENCE_ITEMS = 8

OVERHEAD_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("factor_estimate", "slow-down factor", "advisor's estimate of wall time with probes / without"),
    ("overhead_s", "probe cost", "time the probes added to this run"),
    ("probe_cpu_s", "sampler CPU", "CPU time of the sampler thread"),
    ("hooked_steps", "hooked steps", "task steps and switches the hooks timed"),
    ("per_step_cost_s", "cost per step", "measured cost of timing one step"),
    ("sampler_ticks", "sampler ticks", "stack samples taken"),
    ("sample_interval_s", "sample interval", "time between two samples"),
    ("call_wrapper_s", "call counting", "what counting one call added (standard mode)"),
    ("profiler_call_s", "yappi per call", "what yappi added to one call (deep mode), subtracted"),
    ("bytecode_factor", "yappi bytecode slow-down", "how much slower bytecode ran under yappi (deep mode), taken out"),
    ("deep_paused_s", "deep profile paused", "time yappi was paused with too many live tasks"),
)


@dataclass(frozen=True)
class SnippetLine:
    number: int
    text: str
    target: bool


@dataclass(frozen=True)
class FindingView:
    finding: Finding
    anchor: str
    place: str
    savings: str
    savings_share: str
    evidence: list[tuple[str, str]]
    source_path: str
    snippet: list[SnippetLine]
    replay: str = ""  # the what-if replay of the fix: the run before and after, who gains


def source_path(file: str, cwd: str) -> Path:
    """Where a report's file is on this machine: relative paths are relative to the run's cwd."""
    path = Path(file)
    return path if path.is_absolute() or not cwd else Path(cwd) / path


def snippet(file: str, line: int, cwd: str, context: int = SNIPPET_CONTEXT) -> list[SnippetLine]:
    """The lines around `line` of the user's file, or [] when the file cannot be read now
    (the page is made from the report and whatever source is still where the run saw it)."""
    if not file or line <= 0:
        return []
    lines = source_lines(str(source_path(file, cwd)))
    if line > len(lines):
        return []
    first, last = max(1, line - context), min(len(lines), line + context)
    return [SnippetLine(number, lines[number - 1].rstrip("\r\n").expandtabs(4), number == line)
            for number in range(first, last + 1)]


def evidence_value(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and key.endswith("_s"):
        return seconds(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        shown = ", ".join(str(item) for item in value[:MAX_EVIDENCE_ITEMS])
        more = len(value) - MAX_EVIDENCE_ITEMS
        return shown + (f" … and {more} more" if more > 0 else "")
    if isinstance(value, dict):
        return ", ".join(f"{k}: {evidence_value(str(k), v)}" for k, v in value.items())
    return str(value)


def finding_views(report: Report) -> list[tuple[str, list[FindingView]]]:
    """The findings by severity (most severe first), each group by estimated savings."""
    groups: list[tuple[str, list[FindingView]]] = []
    number = 0
    for severity in SEVERITIES:
        group = sorted((f for f in report.findings if f.severity == severity), key=lambda f: -f.estimated_savings_s)
        views = []
        for finding in group:
            number += 1
            where = finding.location
            views.append(FindingView(
                finding=finding,
                anchor=f"finding-{number}",
                place=f"{where.file}:{where.line}",
                savings=seconds(finding.estimated_savings_s),
                savings_share=percent(finding.estimated_savings_s, report.run.wall_s),
                evidence=[(key, evidence_value(key, value)) for key, value in finding.evidence.items()],
                source_path=str(source_path(where.file, report.run.cwd)),
                snippet=snippet(where.file, where.line, report.run.cwd),
                replay=replay_line(finding.prediction) if finding.prediction is not None else "",
            ))
        if views:
            groups.append((severity, views))
    return groups


def blocking_io_share(task: Task) -> float:
    """Which part of a unit's blocking time was I/O (the rest was waiting), from its
    blocking sites, else in the proportion of its io and waiting."""
    io = sum(site.seconds for site in task.blocking if site.kind == "io")
    total = sum(site.seconds for site in task.blocking)
    if total > 0.0:
        return io / total
    both = task.breakdown.io_s + task.breakdown.waiting_s
    return task.breakdown.io_s / both if both > 0.0 else 0.0


def page_data(report: Report) -> dict[str, Any]:
    """What the page's script draws: units on the timeline, and the sampled stacks."""
    units = []
    segments = unit_segments(report)
    for task in report.tasks:
        split = task.breakdown
        units.append({
            "segments": segments.get(task.id),
            "id": task.id, "name": task.name, "kind": KIND_LABELS.get(task.kind, task.kind), "count": task.count,
            "target": task.target, "start": task.start_s, "end": task.end_s, "wall": task.wall_s,
            "compute": split.compute_s, "io": split.io_s, "waiting": split.waiting_s,
            "scheduling": split.scheduling_s, "blocking": task.blocking_s,
            "blocking_io_share": round(blocking_io_share(task), 4),
        })
    frames = [[frame.function, frame.file, frame.line] for frame in report.samples.frames]
    stacks = [[stack.unit, root_first, round(weight, 6), stack.on_cpu_s, stack.state]
              for stack, root_first, weight in weighted_stacks(report)]
    return {"wall": report.run.wall_s, "units": units, "frames": frames, "stacks": stacks}


def script_json(data: Any) -> Markup:
    """JSON safe inside a <script> block: no '<', '>' or '&' can end it or open a comment."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def overhead_rows(report: Report) -> list[tuple[str, str, str]]:
    """The overhead figures that are set, with what each means; fields newer than this
    renderer (the model keeps unknown fields) are shown under their own names."""
    overhead = report.run.overhead
    known = [(field, label, meaning, getattr(overhead, field)) for field, label, meaning in OVERHEAD_FIELDS]
    newer = [(field, field, "", value) for field, value in (overhead.model_extra or {}).items()
             if isinstance(value, (int, float)) and not isinstance(value, bool)]
    rows = []
    for field, label, meaning, value in known + newer:
        factor = field in ("factor_estimate", "bytecode_factor")
        if field != "factor_estimate" and value == (1.0 if factor else 0):  # not measured in this run
            continue
        if factor:
            shown = f"×{value:.3f}"
        elif isinstance(value, int):
            shown = f"{value:,}"
        elif not field.endswith("_s"):
            shown = f"{value:.4g}"
        elif value < 1e-6:  # per-call and per-step costs are nanoseconds
            shown = f"{value * 1e9:.0f} ns"
        else:
            shown = seconds(value)
        rows.append((label, shown, meaning))
    return rows


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["seconds"] = seconds
    return env


@lru_cache(maxsize=4)
def asset(name: str) -> Markup:
    """A stylesheet or script to inline: our own files, which must not close their element."""
    text = (TEMPLATES / name).read_text(encoding="utf-8")
    if "</" in text:
        raise ValueError(f"{name} contains '</', which would end its inline element")
    return Markup(text)


def render_html(report: Report) -> str:
    """The report as one self-contained HTML page."""
    run = report.run
    counts = {severity: sum(1 for f in report.findings if f.severity == severity) for severity in SEVERITIES}
    template = environment().get_template("report.html.j2")
    return template.render(
        report=report,
        run=run,
        title=" ".join(run.argv) or "(no argv)",
        kind_labels=KIND_LABELS,
        groups=finding_views(report),
        counts=counts,
        savings=seconds(sum(f.estimated_savings_s for f in report.findings)),
        units=report.tasks,
        functions=report.functions[:MAX_FUNCTIONS],
        more_functions=max(0, len(report.functions) - MAX_FUNCTIONS),
        overhead=overhead_rows(report),
        code_version=describe(run.code_version) if run.code_version else "",
        percent=percent,
        data=script_json(page_data(report)),
        css=asset("report.css"),
        js=asset("report.js"),
    )
