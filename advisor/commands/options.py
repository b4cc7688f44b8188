"""What the subcommands share: the argument parser with one-line errors, the output options
(--json, --md, --html, --sarif, --collapsed, --speedscope, --pprof, --otlp, --baseline, rule
selection), writing every file asked for, and printing the report on stderr."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from functools import partial
from typing import Any, NoReturn, TextIO

from ..errors import UsageError
from ..profile import Report, ReportError, load_report, report_json, write_atomically
from ..render import RENDERERS
from ..render.flame import render_collapsed, render_speedscope
from ..render.markdown import render_markdown
from ..render.sarif import render_sarif

FAIL_ON_STATUS = 3


FORMATS = tuple(RENDERERS)


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but its errors are ours: one line, exit status 2; and no abbreviated
    options, since `advisor run` must know exactly which of its options take a value."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def add_otlp_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--otlp", metavar="URL",
                        help="send spans to an OpenTelemetry collector over OTLP/HTTP (http://HOST:4318/v1/traces): "
                             "the run with its routes and span names, and with `run` each span as it ends "
                             "(needs the otel extra)")


def check_pprof(options: argparse.Namespace) -> None:
    """--pprof needs the protobuf runtime (the pprof extra): say so before anything runs."""
    if getattr(options, "pprof", None):
        try:
            import google.protobuf  # noqa: F401
        except ImportError:
            raise UsageError("--pprof needs protobuf: pip install 'advisor[pprof]'") from None


def otlp_provider(options: argparse.Namespace, service: str) -> Any:
    """The tracer provider of --otlp, or None; a missing SDK or a bad URL is the user's error."""
    url = getattr(options, "otlp", None)
    if not url:
        return None
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"--otlp {url}: not an http:// or https:// URL")
    try:
        from ..export.otel import otlp_provider as make_provider

        return make_provider(url, service_name=service)
    except RuntimeError as error:
        raise UsageError(str(error)) from None


def send_otlp(provider: Any, report: Report) -> None:
    """The run's summary spans to the collector, then flush (a collector that cannot be
    reached costs a warning, never the report)."""
    from ..export.otel import export_report

    try:
        export_report(report, provider)
    finally:
        provider.shutdown()


def add_baseline_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--baseline", metavar="OLD.json",
                        help="with --md: say what is new, fixed and regressed since this report")


def load_baseline(options: argparse.Namespace) -> Report | None:
    if not getattr(options, "baseline", None):
        return None
    try:
        return load_report(options.baseline)
    except ReportError as error:
        raise UsageError(str(error)) from None


def add_document_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--html", metavar="PATH", help="write the report as a self-contained HTML page to PATH")
    parser.add_argument("--sarif", metavar="PATH", help="write the findings as SARIF 2.1.0 to PATH "
                        "(code-scanning UIs)")


def render_html_lazily(report: Report) -> str:
    # imported when asked for: the HTML renderer is the largest and most runs do not need it
    from ..render.html import render_html

    return render_html(report)


def add_flame_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--collapsed", metavar="PATH", help="write the sampled stacks as collapsed stacks "
                        "(flamegraph.pl, inferno)")
    parser.add_argument("--speedscope", metavar="PATH", help="write the sampled stacks for speedscope")
    parser.add_argument("--pprof", metavar="PATH", help="write the sampled stacks as gzipped pprof (profile.proto: "
                        "go tool pprof, Pyroscope, Cloud Profiler, Datadog)")


def write_files(report: Report, options: argparse.Namespace, baseline: Report | None = None) -> None:
    """Every file format asked for with --json/--md/--html/--sarif/--collapsed/--speedscope."""
    writers: dict[str, Callable[[Report], str]] = {
        "json": report_json, "md": lambda r: render_markdown(r, baseline), "html": render_html_lazily,
        "sarif": render_sarif, "collapsed": render_collapsed, "speedscope": render_speedscope}
    failed: list[str] = []
    for name, render in writers.items():
        path = getattr(options, name, None)
        if path:
            failed += write_or_say_why(path, partial(render, report))
    if getattr(options, "pprof", None):
        from ..export.pprof import pprof_bytes

        failed += write_or_say_why(options.pprof, lambda: pprof_bytes(report))
    if failed:  # after trying every file: one that cannot be written does not stop the others
        raise UsageError("; ".join(failed))


def write_or_say_why(path: str, content: Callable[[], str | bytes]) -> list[str]:
    """Write a file atomically; [] when written, else why not in a few words. check_writable
    asks only whether the directory looks writable: a full disk, a read-only mount or a
    file system that refuses the name shows up here."""
    try:
        write_atomically(path, content())
    except OSError as error:
        return [f"{path}: cannot write: {error.strerror or error}"]
    return []


def write_output(path: str, content: str | bytes) -> None:
    """Write a command's output file, or fail with one line (exit 2)."""
    failed = write_or_say_why(path, lambda: content)
    if failed:
        raise UsageError(failed[0])


def parse_number(text: str) -> float:
    """An option's number, or argparse's one-line error."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def rule_names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def add_rule_selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--select", type=rule_names, default=[], metavar="RULES",
                        help="only these rules (slugs, codes or code prefixes, comma-separated)")
    parser.add_argument("--ignore", type=rule_names, default=[], metavar="RULES",
                        help="skip these rules (comma-separated)")


def emit(report: Report, stderr_format: str, options: argparse.Namespace, baseline: Report | None = None,
         stream: TextIO | None = None) -> None:
    """Write the report where it was asked for; `stream` (stderr as advisor found it, so a
    target that swapped sys.stderr for its own object does not swallow the report) gets the
    chosen format, also when a file could not be written (the UsageError comes after it)."""
    try:
        write_files(report, options, baseline)
    except UsageError as error:
        failed: UsageError | None = error
    else:
        failed = None
    out = stream if stream is not None else sys.stderr
    if stderr_format == "text":
        from rich.console import Console

        from ..render.text import text_renderables

        # a pipe or file gets a wide plain table; a terminal its own width and colours
        width = None if out.isatty() else 140
        console = Console(file=out, highlight=False, width=width)
        console.print(text_renderables(report, console.width))
    else:
        out.write(RENDERERS[stderr_format](report))
    out.flush()
    if failed is not None:
        raise failed


def check_writable(path: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise UsageError(f"{path}: is a directory")
    if not os.path.isdir(directory):
        raise UsageError(f"{path}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK):
        raise UsageError(f"{path}: directory {directory} is not writable")
