"""The command line: parse arguments, call the runner, capture, report and renderers.

``advisor run [OPTIONS] SCRIPT [ARGS...]`` and ``advisor run [OPTIONS] -m MODULE
[ARGS...]``: options stop at the script (or the module), everything after belongs to
the target untouched. ``advisor report FILE.json`` re-renders a saved report. Errors the
user can cause print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TextIO

from .capture import DEFAULT_SAMPLE_RATE, Capture, RawCapture
from .config import Settings, load_settings
from .diff import diff_json, diff_reports, diff_text
from .engine import analyze, select_rules
from .errors import UsageError
from .frames import hide_launcher
from .gate import check
from .live_status import live_status
from .profile import SEVERITIES, Report, ReportError, load_report, report_json, write_atomically
from .render import RENDERERS
from .render.flame import render_collapsed, render_speedscope
from .render.markdown import render_markdown
from .render.sarif import render_sarif
from .report import RunFacts, build_report
from .runner import Outcome, Target, check_target, end_like_python, execute, uses_gevent
from .version import code_version

USAGE_STATUS = 2
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


def _sample_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1.0 <= value <= 1000.0:
        raise argparse.ArgumentTypeError("must be between 1 and 1000 samples a second")
    return value


def run_options_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="advisor run", add_help=True,
        usage="advisor run [OPTIONS] SCRIPT [ARGS...] | advisor run [OPTIONS] -m MODULE [ARGS...]")
    parser.add_argument("--mode", choices=("standard", "light", "deep"), default="standard",
                        help="standard (default): light plus counted calls of the hottest functions, "
                             "for the full findings; light: task/thread attribution and a statistical "
                             "sampler only, made to be left on in production; deep: adds yappi's "
                             "deterministic profile per task, greenlet and thread")
    parser.add_argument("--pstats", metavar="PATH", help="deep mode: write the profile as pstats (snakeviz)")
    parser.add_argument("--callgrind", metavar="PATH", help="deep mode: write the profile for KCacheGrind")
    parser.add_argument("--json", metavar="PATH", help="write the report as JSON to PATH")
    parser.add_argument("--md", metavar="PATH", help="write the report as a Markdown checklist to PATH")
    add_document_options(parser)
    add_flame_options(parser)
    add_baseline_option(parser)
    parser.add_argument("--format", choices=FORMATS, default="text", help="what goes to stderr")
    parser.add_argument("--children", action="store_true",
                        help="also profile the processes the target forks (os.fork, multiprocessing's fork): "
                             "each writes its report beside --json PATH as STEM.PID.json, for advisor merge")
    parser.add_argument("--no-status", action="store_true",
                        help="no live status line on a terminal's stderr while the target runs")
    parser.add_argument("--fail-on", choices=SEVERITIES, metavar="SEVERITY",
                        help="exit 3 when a finding is at or above SEVERITY (after a target exit 0)")
    parser.add_argument("--sample-rate", type=_sample_rate, default=DEFAULT_SAMPLE_RATE, metavar="HZ",
                        help=f"stack samples a second (default {DEFAULT_SAMPLE_RATE:g})")
    add_rule_selection(parser)
    parser.add_argument("--release", metavar="NAME",
                        help="the name of the release being profiled, kept in the report next to the git commit")
    add_otlp_option(parser)
    return parser


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
        from .export.otel import otlp_provider as make_provider

        return make_provider(url, service_name=service)
    except RuntimeError as error:
        raise UsageError(str(error)) from None


def send_otlp(provider: Any, report: Report) -> None:
    """The run's summary spans to the collector, then flush (a collector that cannot be
    reached costs a warning, never the report)."""
    from .export.otel import export_report

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


def _render_html(report: Report) -> str:
    # imported when asked for: the HTML renderer is the largest and most runs do not need it
    from .render.html import render_html

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
        "json": report_json, "md": lambda r: render_markdown(r, baseline), "html": _render_html,
        "sarif": render_sarif, "collapsed": render_collapsed, "speedscope": render_speedscope}
    for name, render in writers.items():
        path = getattr(options, name, None)
        if path:
            write_atomically(path, render(report))
    if getattr(options, "pprof", None):
        from .export.pprof import write_pprof

        write_pprof(report, options.pprof)


def _rule_names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def add_rule_selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--select", type=_rule_names, default=[], metavar="RULES",
                        help="only these rules (slugs, codes or code prefixes, comma-separated)")
    parser.add_argument("--ignore", type=_rule_names, default=[], metavar="RULES",
                        help="skip these rules (comma-separated)")


# options of `advisor run` that take a value (the rest are flags)
_VALUE_OPTIONS = {"--mode", "--json", "--md", "--html", "--sarif", "--collapsed", "--speedscope", "--format",
                  "--fail-on", "--sample-rate", "--select", "--ignore", "--pstats", "--callgrind", "--baseline",
                  "--release", "--pprof", "--otlp"}


def split_run_arguments(tokens: Sequence[str]) -> tuple[list[str], Target]:
    """Advisor's options, and the target with its untouched arguments."""
    options: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token == "--":
            index += 1
            break
        if token == "-m":
            if index + 1 >= len(tokens):
                raise UsageError("-m needs a module name")
            return options, Target(None, tokens[index + 1], tuple(tokens[index + 2:]))
        if token.startswith("-m") and len(token) > 2 and not token.startswith("--"):
            return options, Target(None, token[2:], tuple(tokens[index + 1:]))
        if not token.startswith("-") or token == "-":
            break
        options.append(token)
        if token in _VALUE_OPTIONS:
            if index + 1 >= len(tokens):
                raise UsageError(f"option {token} needs a value")
            options.append(tokens[index + 1])
            index += 1
        index += 1
    if index >= len(tokens):
        if "-h" in options or "--help" in options:
            return options, Target(None, None)
        raise UsageError("no script given: advisor run [OPTIONS] SCRIPT [ARGS...]")
    return options, Target(tokens[index], None, tuple(tokens[index + 1:]))


def severity_reached(report: Report, threshold: str) -> bool:
    limit = SEVERITIES.index(threshold)
    return any(SEVERITIES.index(finding.severity) <= limit for finding in report.findings)


def emit(report: Report, stderr_format: str, options: argparse.Namespace, baseline: Report | None = None,
         stream: TextIO | None = None) -> None:
    """Write the report where it was asked for; `stream` (stderr as advisor found it, so a
    target that swapped sys.stderr for its own object does not swallow the report) gets the
    chosen format."""
    write_files(report, options, baseline)
    out = stream if stream is not None else sys.stderr
    if stderr_format == "text":
        from rich.console import Console

        from .render.text import text_renderables

        # a pipe or file gets a wide plain table; a terminal its own width and colours
        width = None if out.isatty() else 140
        console = Console(file=out, highlight=False, width=width)
        console.print(text_renderables(report, console.width))
    else:
        out.write(RENDERERS[stderr_format](report))
    out.flush()


def command_run(tokens: Sequence[str]) -> int:
    option_tokens, target = split_run_arguments(tokens)
    options = run_options_parser().parse_args(option_tokens)
    check_target(target)
    # output paths are the user's, relative to where advisor started: the target may chdir
    for name in ("json", "md", "html", "sarif", "collapsed", "speedscope", "pstats", "callgrind", "pprof"):
        path = getattr(options, name)
        if path:
            _check_writable(path)
            setattr(options, name, os.path.abspath(path))
    check_pprof(options)
    exports = {kind: path for kind, path in (("pstat", options.pstats), ("callgrind", options.callgrind)) if path}
    if options.children and not options.json:
        raise UsageError("--children needs --json PATH (each child's report is written beside it)")
    if exports and options.mode != "deep":
        raise UsageError("--pstats and --callgrind need --mode deep (the deterministic profile)")
    settings = load_settings()
    select_rules(settings, options.select, options.ignore)  # unknown rule names fail before the run
    baseline = load_baseline(options)
    # the code as it is when the run starts (git is asked before any probe runs)
    version = code_version(os.path.dirname(os.path.abspath(target.script)) if target.script else os.getcwd(),
                           options.release)
    service = os.path.splitext(os.path.basename(target.script))[0] if target.script else str(target.module)
    provider = otlp_provider(options, service)
    stop_otel = None
    if provider is not None:
        from .export.otel import install

        stop_otel = install(provider)  # every span and request as it ends
    capture = Capture(mode=options.mode, sample_rate=options.sample_rate, greenlets=uses_gevent(target),
                      exports=exports)
    started_at = dt.datetime.now(dt.timezone.utc)
    parent = os.getpid()
    # started before the probes, so that its thread is known as advisor's before any sample
    status = None if options.no_status else live_status(capture.status, sys.stderr, os.environ,
                                                        on_thread=capture.ignore_thread)

    def child_report(raw: RawCapture, exit_code: int, partial: bool, child_started: dt.datetime) -> Report:
        report = build_report(raw, RunFacts(argv=target.argv, mode=options.mode, started_at=child_started,
                                            exit_code=exit_code, partial=partial))
        report.run.code_version = version
        return analyze(report, settings, options.select, options.ignore)

    children = None
    if options.children:
        from .children import ForkedChildren

        greenlets = uses_gevent(target)
        children = ForkedChildren(capture, lambda: Capture(mode=options.mode, sample_rate=options.sample_rate,
                                                           greenlets=greenlets, calibrate=False),
                                  child_report, options.json)

    def finish(outcome: Outcome) -> Report | None:
        """Stop the probes and write the report (also from the SIGTERM handler)."""
        if os.getpid() != parent:
            # a child the target forked ends here: the run and its report are the parent's
            if children is not None:
                children.finish(outcome.exit_code, outcome.partial)
            return None
        if status is not None:
            status.stop()
        raw = capture.stop()
        try:
            report = build_report(raw, RunFacts(argv=target.argv, mode=options.mode, started_at=started_at,
                                                exit_code=outcome.exit_code, partial=outcome.partial))
            report.run.code_version = version
            report = analyze(report, settings, options.select, options.ignore)
            emit(report, options.format, options, baseline, own_stderr)
            if provider is not None:
                if stop_otel is not None:
                    stop_otel()
                send_otlp(provider, report)
            return report
        except Exception as error:  # a bug of ours must not change how the target ended
            try:
                sys.stderr.write(f"advisor: internal error, no report: {type(error).__name__}: {error}\n")
                if os.environ.get("ADVISOR_DEBUG"):
                    traceback.print_exc()
            except Exception:
                pass  # the target closed stderr (a daemon does): the files are written, nothing to say it on
            return None

    own_stderr = sys.stderr  # before the target runs: it may swap sys.stderr for an object of its own
    capture.start()
    if children is not None:
        children.install()
    # advisor's own long-lived objects need not be scanned by every collection the target's
    # garbage triggers: freeze them (what is frozen is never collected, and is not garbage)
    gc.freeze()
    try:
        outcome = execute(target, on_terminate=finish, before_output=status.stop if status is not None else None)
    except BaseException:
        if status is not None:
            status.stop()
        capture.stop()
        raise
    report = finish(outcome)
    end_like_python(outcome)
    if report is not None and outcome.exit_code == 0 and options.fail_on and severity_reached(report, options.fail_on):
        sys.stderr.write(f"advisor: findings at or above {options.fail_on}: exit {FAIL_ON_STATUS}\n")
        return FAIL_ON_STATUS
    return outcome.exit_code


def _check_writable(path: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise UsageError(f"{path}: is a directory")
    if not os.path.isdir(directory):
        raise UsageError(f"{path}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK):
        raise UsageError(f"{path}: directory {directory} is not writable")


def command_report(tokens: Sequence[str]) -> int:
    parser = ArgumentParser(prog="advisor report", description="render a saved JSON report")
    parser.add_argument("file", metavar="FILE.json")
    parser.add_argument("--format", choices=FORMATS, default="text")
    parser.add_argument("--json", metavar="PATH", help="write the (validated) report as JSON to PATH")
    parser.add_argument("--md", metavar="PATH", help="write the report as a Markdown checklist to PATH")
    add_document_options(parser)
    add_flame_options(parser)
    add_baseline_option(parser)
    add_otlp_option(parser)
    options = parser.parse_args(list(tokens))
    try:
        report = load_report(options.file)
    except ReportError as error:
        raise UsageError(str(error)) from None
    for path in (options.json, options.md, options.html, options.sarif, options.collapsed, options.speedscope,
                 options.pprof):
        if path:
            _check_writable(path)
    check_pprof(options)
    provider = otlp_provider(options, os.path.splitext(os.path.basename(report.run.argv[0]))[0]
                             if report.run.argv else "advisor")
    if options.format == "text" and sys.stdout.isatty():
        from rich.console import Console

        from .render.text import text_renderables

        console = Console(highlight=False)
        console.print(text_renderables(report, console.width))
    else:
        sys.stdout.write(RENDERERS[options.format](report))
    write_files(report, options, load_baseline(options))
    if provider is not None:
        send_otlp(provider, report)
    return 0


def command_check(tokens: Sequence[str]) -> int:
    parser = ArgumentParser(prog="advisor check", description="fail (exit 3) on findings, for CI")
    parser.add_argument("file", metavar="REPORT.json")
    parser.add_argument("--fail-on", choices=SEVERITIES, required=True, metavar="SEVERITY")
    parser.add_argument("--baseline", metavar="OLD.json", help="only findings new since this report count")
    parser.add_argument("--max-regression", type=float, metavar="PCT",
                        help="with --baseline: also fail when wall time grew by more than PCT percent")
    options = parser.parse_args(list(tokens))
    if options.max_regression is not None and options.baseline is None:
        raise UsageError("--max-regression needs --baseline")
    try:
        report = load_report(options.file)
        baseline = load_report(options.baseline) if options.baseline else None
    except ReportError as error:
        raise UsageError(str(error)) from None
    verdict = check(report, options.fail_on, baseline, options.max_regression)
    sys.stderr.write(f"advisor: {verdict.reason}\n")
    return FAIL_ON_STATUS if verdict.failed else 0


def command_diff(tokens: Sequence[str]) -> int:
    parser = ArgumentParser(prog="advisor diff", description="compare two saved reports")
    parser.add_argument("old", metavar="OLD.json")
    parser.add_argument("new", metavar="NEW.json")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    options = parser.parse_args(list(tokens))
    try:
        old, new = load_report(options.old), load_report(options.new)
    except ReportError as error:
        raise UsageError(str(error)) from None
    difference = diff_reports(old, new)
    sys.stdout.write(diff_json(difference) if options.format == "json" else diff_text(difference))
    return 0


def command_merge(tokens: Sequence[str]) -> int:
    from .merge import MergeError, merge_reports

    parser = ArgumentParser(prog="advisor merge", description="merge the reports of several runs or workers")
    parser.add_argument("files", nargs="+", metavar="REPORT.json")
    parser.add_argument("-o", "--output", metavar="PATH", help="write the merged report there (default: stdout)")
    options = parser.parse_args(list(tokens))
    if options.output:
        _check_writable(options.output)
    try:
        reports = [load_report(path) for path in options.files]
        merged = merge_reports(reports)
    except (ReportError, MergeError) as error:
        raise UsageError(str(error)) from None
    # findings are judged again on the merged whole
    text = report_json(analyze(merged, load_settings()))
    if options.output:
        write_atomically(options.output, text)
    else:
        sys.stdout.write(text)
    return 0


def command_rules(tokens: Sequence[str]) -> int:
    parser = ArgumentParser(prog="advisor rules", description="list the rules, or explain one")
    parser.add_argument("rule", nargs="?", metavar="RULE", help="a rule's slug or code")
    options = parser.parse_args(list(tokens))
    from .rule_docs import rule_listing, rule_page

    if options.rule is None:
        sys.stdout.write(rule_listing())
        return 0
    page = rule_page(options.rule)
    if page is None:
        raise UsageError(f"unknown rule {options.rule!r} (see `advisor rules`)")
    sys.stdout.write(page)
    return 0


def command_fix(tokens: Sequence[str]) -> int:
    from .fix.files import FixError, fix_report

    parser = ArgumentParser(prog="advisor fix", description="the findings' mechanical fixes, as a unified diff")
    parser.add_argument("file", metavar="REPORT.json")
    parser.add_argument("--apply", action="store_true", help="write the changes (refused for a file that "
                        "changed since the run)")
    parser.add_argument("--select", type=_rule_names, default=[], metavar="RULES",
                        help="only the findings of these rules (slugs, codes or code prefixes, comma-separated)")
    options = parser.parse_args(list(tokens))
    # the names are checked against the rule table only: --select is the whole choice here
    rules = {rule.slug for rule in select_rules(Settings(), options.select)} if options.select else None
    try:
        report = load_report(options.file)
        result = fix_report(report, rules, apply=options.apply)
    except (ReportError, FixError) as error:
        raise UsageError(str(error)) from None
    sys.stdout.write("".join(result.diffs.values()))
    for refusal in result.refusals:
        where = refusal.finding.location
        sys.stderr.write(f"advisor: {where.file}:{where.line} {refusal.finding.rule}: not fixed: {refusal.reason}\n")
    for edit in result.edits:
        if edit.note:
            where = edit.finding.location
            sys.stderr.write(f"advisor: {where.file}:{where.line} {edit.finding.rule}: note: {edit.note}\n")
    for file in result.unverified:
        sys.stderr.write(f"advisor: the report has no digest of {file}: check the diff is against the code that ran\n")
    count, files = len(result.edits), len(result.diffs)
    plural = "" if files == 1 else "s"
    if not result.edits:
        sys.stderr.write(f"advisor: nothing to fix: no finding in {options.file} has an automatic fix\n")
    elif options.apply:
        sys.stderr.write(f"advisor: applied {count} fix{'es' if count != 1 else ''} to {files} file{plural}\n")
    else:
        sys.stderr.write(f"advisor: {count} fix{'es' if count != 1 else ''} in {files} file{plural}; write them with "
                         f"`advisor fix {options.file} --apply`\n")
    return 0


def command_whatif(tokens: Sequence[str]) -> int:
    from .whatif.command import WhatIfError, render_json, render_text, what_if

    parser = ArgumentParser(prog="advisor whatif",
                            description="predict the run's wall time with findings' fixes applied (replayed together)")
    parser.add_argument("file", metavar="REPORT.json")
    parser.add_argument("--fix", action="append", required=True, metavar="RULE@FILE:LINE",
                        help="a finding's fix to apply, by its rule (slug or code) and place; repeat for several")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    options = parser.parse_args(list(tokens))
    try:
        report = load_report(options.file)
        result = what_if(report, options.fix)
    except (ReportError, WhatIfError) as error:
        raise UsageError(str(error)) from None
    sys.stdout.write(render_json(result) if options.format == "json" else render_text(result))
    return 0


COMMANDS = {"run": command_run, "report": command_report, "rules": command_rules, "check": command_check,
            "diff": command_diff, "merge": command_merge, "fix": command_fix, "whatif": command_whatif}

HELP = """usage: advisor COMMAND ...

advisor profiles a Python program (asyncio tasks, threads) and reports where each unit's
time went: compute, I/O, waiting and scheduling.

commands:
  run [OPTIONS] SCRIPT [ARGS...]      profile a script as __main__ (report to stderr)
  run [OPTIONS] -m MODULE [ARGS...]   profile a module, like python -m
  report FILE.json [--format F]       render a saved report
  rules [RULE]                        list the rules, or explain one with examples
  check FILE.json --fail-on SEVERITY  exit 3 on findings (--baseline OLD.json: new ones only)
  diff OLD.json NEW.json              what changed between two runs (--format text|json)
  merge A.json B.json... [-o OUT]     one report of several runs or workers (findings judged again)
  fix REPORT.json [--apply]           the mechanical fixes of findings as a unified diff ([*] in reports)
  whatif REPORT.json --fix RULE@FILE:LINE [--fix ...]
                                      predict the run's wall time with those fixes applied together

advisor COMMAND --help shows a command's options.
"""


def main(argv: Sequence[str] | None = None) -> int:
    tokens = list(sys.argv[1:] if argv is None else argv)
    try:
        if not tokens or tokens[0] in ("-h", "--help", "help"):
            sys.stdout.write(HELP)
            return 0 if tokens else USAGE_STATUS
        if tokens[0] == "--version":
            from .profile import TOOL_VERSION

            sys.stdout.write(f"advisor {TOOL_VERSION}\n")
            return 0
        command = COMMANDS.get(tokens[0])
        if command is None:
            raise UsageError(f"unknown command {tokens[0]!r} (commands: {', '.join(COMMANDS)})")
        return command(tokens[1:])
    except UsageError as error:
        sys.stderr.write(f"advisor: error: {error}\n")
        return USAGE_STATUS
    except SystemExit as done:  # argparse's --help
        return done.code if isinstance(done.code, int) else 0


def entry() -> None:
    """The ``advisor`` console script."""
    if sys.argv and sys.argv[0]:
        hide_launcher(sys.argv[0])
    sys.exit(main())
