"""The subcommands that read saved reports: ``report`` (render), ``check`` (CI gate), ``diff``,
``merge``, ``rules`` (the catalogue), ``fix`` (mechanical fixes as diffs) and ``whatif``
(the replay of fixes)."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence

from ..config import Settings, load_settings
from ..diff import diff_json, diff_reports, diff_text
from ..engine import analyze, select_rules
from ..errors import UsageError
from ..gate import check
from ..profile import SEVERITIES, ReportError, load_report, report_json
from ..render import RENDERERS
from .options import (
    FAIL_ON_STATUS,
    FORMATS,
    ArgumentParser,
    add_baseline_option,
    add_document_options,
    add_flame_options,
    add_otlp_option,
    check_pprof,
    check_writable,
    load_baseline,
    otlp_provider,
    parse_number,
    rule_names,
    send_otlp,
    write_files,
    write_output,
)


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
            check_writable(path)
    check_pprof(options)
    provider = otlp_provider(options, os.path.splitext(os.path.basename(report.run.argv[0]))[0]
                             if report.run.argv else "advisor")
    if options.format == "text" and sys.stdout.isatty():
        from rich.console import Console

        from ..render.text import text_renderables

        console = Console(highlight=False)
        console.print(text_renderables(report, console.width))
    else:
        sys.stdout.write(RENDERERS[options.format](report))
    write_files(report, options, load_baseline(options))
    if provider is not None:
        send_otlp(provider, report)
    return 0


def _percent(text: str) -> float:
    """A regression allowance: a finite percentage, zero or more (NaN would pass every run)."""
    value = parse_number(text)
    if not math.isfinite(value) or value < 0.0:
        raise argparse.ArgumentTypeError(f"must be a percentage of 0 or more, not {text!r}")
    return value


def command_check(tokens: Sequence[str]) -> int:
    parser = ArgumentParser(prog="advisor check", description="fail (exit 3) on findings, for CI")
    parser.add_argument("file", metavar="REPORT.json")
    parser.add_argument("--fail-on", choices=SEVERITIES, required=True, metavar="SEVERITY")
    parser.add_argument("--baseline", metavar="OLD.json", help="only findings new since this report count")
    parser.add_argument("--max-regression", type=_percent, metavar="PCT",
                        help="with --baseline: also fail when wall time grew by more than PCT percent")
    options = parser.parse_args(list(tokens))
    if options.max_regression is not None and options.baseline is None:
        raise UsageError("--max-regression needs --baseline")
    try:
        report = load_report(options.file)
        baseline = load_report(options.baseline) if options.baseline else None
    except ReportError as error:
        raise UsageError(str(error)) from None
    if options.max_regression is not None and baseline is not None and not baseline.run.wall_s > 0.0:
        raise UsageError(f"{options.baseline}: its run.wall_s is {baseline.run.wall_s:g}: "
                         "no wall time to measure a regression against")
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
    from ..merge import MergeError, merge_reports

    parser = ArgumentParser(prog="advisor merge", description="merge the reports of several runs or workers")
    parser.add_argument("files", nargs="+", metavar="REPORT.json")
    parser.add_argument("-o", "--output", metavar="PATH", help="write the merged report there (default: stdout)")
    options = parser.parse_args(list(tokens))
    if options.output:
        check_writable(options.output)
    try:
        reports = [load_report(path) for path in options.files]
        merged = merge_reports(reports)
    except (ReportError, MergeError) as error:
        raise UsageError(str(error)) from None
    # findings are judged again on the merged whole
    text = report_json(analyze(merged, load_settings()))
    if options.output:
        write_output(options.output, text)
    else:
        sys.stdout.write(text)
    return 0


def command_rules(tokens: Sequence[str]) -> int:
    parser = ArgumentParser(prog="advisor rules", description="list the rules, or explain one")
    parser.add_argument("rule", nargs="?", metavar="RULE", help="a rule's slug or code")
    options = parser.parse_args(list(tokens))
    from ..rule_docs import rule_listing, rule_page

    if options.rule is None:
        sys.stdout.write(rule_listing())
        return 0
    page = rule_page(options.rule)
    if page is None:
        raise UsageError(f"unknown rule {options.rule!r} (see `advisor rules`)")
    sys.stdout.write(page)
    return 0


def command_fix(tokens: Sequence[str]) -> int:
    from ..fix.files import FixError, fix_report

    parser = ArgumentParser(prog="advisor fix", description="the findings' mechanical fixes, as a unified diff")
    parser.add_argument("file", metavar="REPORT.json")
    parser.add_argument("--apply", action="store_true", help="write the changes (refused for a file that "
                        "changed since the run)")
    parser.add_argument("--select", type=rule_names, default=[], metavar="RULES",
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
    from ..whatif.command import WhatIfError, render_json, render_text, what_if

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
