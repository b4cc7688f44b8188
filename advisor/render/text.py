"""The terminal report: run summary, the units' time breakdown, hot functions, findings.

Built with rich tables. ``text_renderables`` gives the rich objects (the CLI prints them
in colour on a terminal); ``render_text`` gives plain text of a fixed width, for files
and snapshot tests.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from advisor.profile import FunctionStat, Prediction, Report, Task
from advisor.version import describe

TOP_FUNCTIONS = 10
KIND_LABELS = {"asyncio-task": "task", "greenlet": "greenlet", "thread": "thread"}
MAX_UNITS_SHOWN = 40
SEVERITY_STYLE = {"high": "bold red", "medium": "yellow", "low": "cyan", "info": "dim"}


def seconds(value: float) -> str:
    """A duration for people: 1.23 s, 45.6 ms, 789 µs."""
    if value >= 1.0:
        return f"{value:.2f} s"
    if value >= 0.001:
        return f"{value * 1000:.1f} ms"
    if value > 0.0:
        return f"{value * 1_000_000:.0f} µs"
    return "0"


def percent(part: float, whole: float) -> str:
    return f"{100.0 * part / whole:.0f}%" if whole > 0 else "-"


# Past this slow-down deep mode's times are mostly what was taken out for yappi: a few %
# of error in its calibrated cost per call is tens of % of what is left
DEEP_CAUTION_FACTOR = 3.0


def deep_caution(report: Report) -> str | None:
    """A word on how far a deep run's times can be trusted, when the profile was most of the run."""
    factor = report.run.overhead.factor_estimate
    if report.run.mode != "deep" or factor < DEEP_CAUTION_FACTOR:
        return None
    return (f"deep mode ran this program ~×{factor:.1f} slower: its times are mostly yappi's cost taken out "
            "and can move by 20% or more from run to run; read call counts and edges here, time in standard mode")


def summary_line(report: Report) -> Text:
    run = report.run
    text = Text()
    text.append("advisor ", style="bold")
    text.append(" ".join(run.argv) or "?")
    text.append(f"  ·  {run.mode} mode  ·  wall {seconds(run.wall_s)}  ·  cpu {seconds(run.cpu_s)}"
                f"  ·  exit {run.exit_code}")
    if run.partial:
        text.append("  ·  PARTIAL (interrupted)", style="bold red")
    if run.code_version is not None:
        text.append(f"  ·  {describe(run.code_version)}")
    overhead = run.overhead
    text.append(f"\nprobe overhead ≈ ×{overhead.factor_estimate:.2f} "
                f"({overhead.hooked_steps} hooked steps, {overhead.sampler_ticks} samples"
                f"{', figures corrected' if overhead.corrected else ''})", style="dim")
    caution = deep_caution(report)
    if caution is not None:
        text.append(f"\n{caution}", style="yellow")
    for probe in run.probes:
        if not probe.active:
            text.append(f"\nprobe {probe.name} inactive: {probe.note}", style="yellow")
    return text


def short_place(file: str, line: int) -> str:
    """file:line with the file shortened to its last two path parts."""
    parts = file.replace("\\", "/").split("/")
    return f"{'/'.join(parts[-2:]) if len(parts) > 2 else file}:{line}"


def _hottest(task: Task) -> str:
    if task.blocking:
        site = task.blocking[0]
        where = short_place(site.file, site.line) if site.file else site.function
        return f"{site.call} @ {where}"
    if task.hot:
        spot = task.hot[0]
        return f"{spot.function} @ {short_place(spot.file, spot.line)}"
    return ""


# below these terminal widths a column gives way, so that the figures never get cut
NARROW_WITHOUT_WHERE = 130
NARROW_WITHOUT_KIND = 110
NARROW_WITHOUT_EMPTY = 100  # and the figures that are zero for every unit, and light borders
FIGURE_FIELDS = {"io": "io_s", "waiting": "waiting_s", "sched": "scheduling_s"}


def units_table(report: Report, width: int | None = None) -> Table:
    table = Table(title=f"Units ({len(report.tasks)})", title_justify="left", expand=False)
    columns = [("unit", "left"), ("kind", "left"), ("n", "right"), ("wall", "right"), ("compute", "right"),
               ("io", "right"), ("waiting", "right"), ("sched", "right"), ("blocking", "right"), ("where", "left")]
    if width is not None and width < NARROW_WITHOUT_WHERE:
        columns = [column for column in columns if column[0] != "where"]
    if width is not None and width < NARROW_WITHOUT_KIND:
        columns = [column for column in columns if column[0] != "kind"]
    if width is not None and width < NARROW_WITHOUT_EMPTY:
        table.box = box.SIMPLE_HEAD
        empty = {name for name, field in FIGURE_FIELDS.items()
                 if not any(getattr(task.breakdown, field) for task in report.tasks)}
        if not any(task.blocking_s for task in report.tasks):
            empty.add("blocking")
        if all(task.count == 1 for task in report.tasks):
            empty.add("n")
        columns = [column for column in columns if column[0] not in empty]
    shown = {name for name, _ in columns}
    longest_count = max((len(str(task.count)) for task in report.tasks), default=1)
    for column, justify in columns:
        # one line per unit reads better: names and places are cut short, figures never wrap
        figure = justify == "right" and column != "n"
        table.add_column(column, justify=justify, overflow="ellipsis", no_wrap=True,  # type: ignore[arg-type]
                         min_width=8 if figure else longest_count if column == "n" else 6,
                         max_width=40 if column == "where" else 24 if column == "unit" else None)
    for task in report.tasks[:MAX_UNITS_SHOWN]:
        split = task.breakdown
        cells: dict[str, str | Text] = {
            "unit": task.name, "kind": KIND_LABELS.get(task.kind, task.kind), "n": str(task.count),
            "wall": seconds(task.wall_s), "compute": seconds(split.compute_s), "io": seconds(split.io_s),
            "waiting": seconds(split.waiting_s), "sched": seconds(split.scheduling_s),
            "blocking": Text(seconds(task.blocking_s), style="bold red" if task.blocking_s > 0.01 else ""),
            "where": _hottest(task),
        }
        table.add_row(*(cells[name] for name, _ in columns if name in shown))
    if len(report.tasks) > MAX_UNITS_SHOWN:
        table.caption = f"{len(report.tasks) - MAX_UNITS_SHOWN} more units in the JSON report"
    return table


def functions_table(report: Report) -> Table:
    table = Table(title="Hot functions (sampled, by self time)", title_justify="left")
    for column, justify in (("function", "left"), ("where", "left"), ("self", "right"),
                            ("total", "right"), ("cpu", "right"), ("calls", "right"), ("hottest lines", "left")):
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for function in report.functions[:TOP_FUNCTIONS]:
        table.add_row(local_name(function.function, function.file), short_place(function.file, function.line),
                      seconds(function.self_s),
                      seconds(function.total_s), seconds(function.cpu_s),
                      "-" if function.calls is None else str(function.calls), hottest_lines(function))
    return table


def local_name(function: str, file: str) -> str:
    """A function's name within its file (``Point.scaled`` for ``shop.geometry.Point.scaled`` in
    geometry.py): the place column says which file, so the module path only makes the table wrap."""
    stem = file.replace("\\", "/").rsplit("/", 1)[-1].removesuffix(".py")
    if not stem or stem == "__init__":
        return function
    if function.startswith(stem + "."):
        return function[len(stem) + 1:]
    marker = f".{stem}."
    index = function.find(marker)
    return function[index + len(marker):] if index >= 0 else function


def hottest_lines(function: FunctionStat, limit: int = 3) -> str:
    """``:42 12.0 ms (order-1), :45 3.1 ms``: a function's hottest lines and who ran them."""
    parts = []
    for line in function.lines[:limit]:
        who = f" ({line.units[0].unit})" if line.units else ""
        parts.append(f":{line.line} {seconds(line.self_s)}{who}")
    return ", ".join(parts)


def spans_table(report: Report) -> Table:
    table = Table(title=f"Spans ({len(report.spans)})", title_justify="left")
    for column, justify in (("span", "left"), ("n", "right"), ("wall", "right"), ("p50", "right"),
                            ("p95", "right"), ("compute", "right"), ("io", "right"), ("waiting", "right"),
                            ("sched", "right"), ("blocking", "right"), ("labels", "left")):
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for stat in report.spans:
        split = stat.breakdown
        labels = ", ".join(f"{key}={'|'.join(sorted(values, key=lambda value: (-values[value], value))[:3])}"
                           for key, values in stat.labels.items())
        table.add_row(stat.name, str(stat.count), seconds(stat.wall_s), seconds(stat.p50_s), seconds(stat.p95_s),
                      seconds(split.compute_s), seconds(split.io_s), seconds(split.waiting_s),
                      seconds(split.scheduling_s), seconds(stat.blocking_s), labels)
    return table


def replay_line(prediction: Prediction) -> str:
    """The what-if replay of a finding's fix: the run before and after, and who gains most."""
    gains = sorted((item for item in prediction.units if item.after_s < item.before_s - 0.0005),
                   key=lambda item: item.after_s - item.before_s)
    text = f"replay: run {seconds(prediction.wall_before_s)} -> {seconds(prediction.wall_after_s)}"
    if gains:
        text += "; gains: " + ", ".join(f"{item.unit} -{seconds(item.before_s - item.after_s)}" for item in gains[:3])
        if len(gains) > 3:
            text += f" (+{len(gains) - 3} more)"
    return text


def findings_block(report: Report) -> Iterator[RenderableType]:
    if not report.findings:
        yield Text("No findings.", style="green")
        return
    yield Text(f"Findings ({len(report.findings)}), by estimated savings", style="bold")
    for number, finding in enumerate(report.findings, 1):
        line = Text(f"{number}. ")
        line.append(f"[{finding.severity}]", style=SEVERITY_STYLE.get(finding.severity, ""))
        line.append(f" {finding.code}")
        if finding.fixable:  # like ruff's [*]: `advisor fix` can make this change itself
            line.append(" [*]", style="bold cyan")
        line.append(f" {finding.rule}  {finding.location.file}:{finding.location.line}")
        if finding.estimated_savings_s > 0:
            line.append(f"  saves ~{seconds(finding.estimated_savings_s)}", style="bold")
        line.append(f"\n   {finding.message}")
        if finding.fix:
            line.append(f"\n   fix: {finding.fix}", style="green")
        hot = finding.evidence.get("hot_line")
        if isinstance(hot, dict):
            who = ", ".join(str(unit) for unit in hot.get("units", []))
            line.append(f"\n   hottest line: {hot.get('file')}:{hot.get('line')} "
                        f"{seconds(float(hot.get('self_s', 0.0)))}" + (f" in {who}" if who else ""), style="dim")
        if finding.prediction is not None:
            line.append(f"\n   {replay_line(finding.prediction)}", style="dim")
        if finding.spans:
            line.append(f"\n   spans: {', '.join(finding.spans)}", style="dim")
        yield line
    fixable = sum(finding.fixable for finding in report.findings)
    if fixable:
        yield Text(f"[*] {fixable} fixable with `advisor fix REPORT.json` (the report saved with --json)",
                   style="cyan")


def text_renderables(report: Report, width: int | None = None) -> Group:
    """The report's parts; `width`, the terminal's columns, lets narrow ones drop columns."""
    parts: list[RenderableType] = [summary_line(report), units_table(report, width)]
    if report.spans:
        parts.append(spans_table(report))
    if report.functions:
        parts.append(functions_table(report))
    parts.extend(findings_block(report))
    return Group(*parts)


def render_text(report: Report, width: int = 140) -> str:
    """The text report without colours, `width` columns wide."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, force_terminal=False,
                      no_color=True, highlight=False, emoji=False)
    console.print(text_renderables(report, width))
    return buffer.getvalue()
