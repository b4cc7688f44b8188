"""``advisor run [OPTIONS] SCRIPT [ARGS...]`` and ``advisor run [OPTIONS] -m MODULE [ARGS...]``:
options stop at the script (or the module), everything after belongs to the target
untouched; the probes start, the target runs as ``__main__``, and the report is written
however the target ends (also from the SIGTERM handler)."""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import sys
import traceback
from collections.abc import Sequence
from typing import TextIO

from ..capture import DEFAULT_SAMPLE_RATE, Capture, RawCapture
from ..config import load_settings
from ..engine import analyze, select_rules
from ..errors import USAGE_STATUS, UsageError
from ..live_status import live_status
from ..profile import SEVERITIES, Report
from ..recursion import unseen_levels
from ..report import RunFacts, build_report
from ..runner import Outcome, Target, check_target, end_like_python, execute, hand_back, signals_held, uses_gevent
from ..version import code_version
from .options import (
    FAIL_ON_STATUS,
    FORMATS,
    ArgumentParser,
    add_baseline_option,
    add_document_options,
    add_flame_options,
    add_otlp_option,
    add_rule_selection,
    check_pprof,
    check_writable,
    emit,
    load_baseline,
    otlp_provider,
    parse_number,
    send_otlp,
)


def _sample_rate(text: str) -> float:
    value = parse_number(text)
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


def command_run(tokens: Sequence[str]) -> int:
    option_tokens, target = split_run_arguments(tokens)
    options = run_options_parser().parse_args(option_tokens)
    check_target(target)
    # output paths are the user's, relative to where advisor started: the target may chdir
    for name in ("json", "md", "html", "sarif", "collapsed", "speedscope", "pstats", "callgrind", "pprof"):
        path = getattr(options, name)
        if path:
            check_writable(path)
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
        from ..export.otel import install

        stop_otel = install(provider)  # every span and request as it ends
    capture = Capture(mode=options.mode, sample_rate=options.sample_rate, greenlets=uses_gevent(target),
                      exports=exports)
    started_at = dt.datetime.now(dt.timezone.utc)
    parent = os.getpid()
    start_directory = os.getcwd()
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
        from ..children import ForkedChildren

        greenlets = uses_gevent(target)
        children = ForkedChildren(capture, lambda: Capture(mode=options.mode, sample_rate=options.sample_rate,
                                                           greenlets=greenlets, calibrate=False),
                                  child_report, options.json)

    unwritten: list[str] = []  # report files that could not be written

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
            try:
                emit(report, options.format, options, baseline, own_stderr)
            except UsageError as error:  # a file that could not be written: said, and the status says so
                unwritten.append(str(error))
                _say(own_stderr, f"advisor: error: {error}\n")
            if provider is not None:
                if stop_otel is not None:
                    stop_otel()
                send_otlp(provider, report)
            return report
        except Exception as error:  # a bug of ours must not change how the target ended
            _say(sys.stderr, f"advisor: internal error, no report: {type(error).__name__}: {error}\n")
            if os.environ.get("ADVISOR_DEBUG"):
                try:
                    traceback.print_exc()
                except Exception:
                    pass
            return None

    own_stderr = sys.stderr  # before the target runs: it may swap sys.stderr for an object of its own
    unseen = unseen_levels()  # before the probes start (see recursion.py)
    capture.start()
    if children is not None:
        children.install()
    elif hasattr(os, "register_at_fork"):
        # a child the target forks is not profiled: its inherited hooks would slow it (2x on
        # an asyncio loop) for records no one reads
        os.register_at_fork(after_in_child=capture.abandon_after_fork)
    # advisor's own long-lived objects need not be scanned by every collection the target's
    # garbage triggers: freeze them (what is frozen is never collected, and is not garbage)
    gc.freeze()
    try:
        outcome = execute(target, on_terminate=finish, before_output=status.stop if status is not None else None,
                          terminate_in_children=children is not None, unseen=unseen)
    except BaseException:
        if status is not None:
            status.stop()
        capture.stop()
        raise
    _out_of_a_removed_directory(start_directory)
    with signals_held():
        report = finish(outcome)
    hand_back(outcome)
    end_like_python(outcome)
    if unwritten and outcome.exit_code == 0:
        return USAGE_STATUS  # the report asked for is not there: no pipeline may read that as a pass
    if report is not None and outcome.exit_code == 0 and options.fail_on and severity_reached(report, options.fail_on):
        sys.stderr.write(f"advisor: findings at or above {options.fail_on}: exit {FAIL_ON_STATUS}\n")
        return FAIL_ON_STATUS
    return outcome.exit_code


def _say(stream: TextIO, line: str) -> None:
    """One line for the user, where the target may have closed the stream (a daemon does): the
    files are written, there is then nothing to say it on."""
    try:
        stream.write(line)
        stream.flush()
    except Exception:
        pass


def _out_of_a_removed_directory(start_directory: str) -> None:
    """A program that removed its working directory (a temporary one it had changed into)
    leaves no directory to make the report's paths relative to: back to where advisor was
    started (it was an internal error, and no report)."""
    try:
        os.getcwd()
    except FileNotFoundError:
        try:
            os.chdir(start_directory)
        except OSError:
            pass
