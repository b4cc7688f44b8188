"""The ``advisor`` command line: the table of subcommands, the help, and the one place where
a user's error becomes a one-line message and exit status 2 (never a traceback).

Each subcommand lives in ``advisor.commands``: ``run`` (profile a program), ``saved``
(report, check, diff, merge, rules, fix, whatif) and the options they share (``options``).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from .errors import USAGE_STATUS, UsageError
from .frames import hide_launcher


def commands() -> dict[str, Callable[[list[str]], int]]:
    """The subcommands, imported when one is asked for: the imports take most of a second
    on a slow machine, and a Ctrl-C among them is answered by main(), not by a traceback."""
    from .commands.run import command_run
    from .commands.saved import (
        command_check,
        command_diff,
        command_fix,
        command_merge,
        command_report,
        command_rules,
        command_whatif,
    )

    return {"run": command_run, "report": command_report, "rules": command_rules, "check": command_check,
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
        table = commands()
        if tokens[0] not in table:
            raise UsageError(f"unknown command {tokens[0]!r} (commands: {', '.join(table)})")
        return table[tokens[0]](tokens[1:])
    except UsageError as error:
        sys.stderr.write(f"advisor: error: {error}\n")
        return USAGE_STATUS
    except SystemExit as done:  # argparse's --help
        return done.code if isinstance(done.code, int) else 0
    except KeyboardInterrupt:  # in advisor's own start-up (a program's own is its run's end)
        interrupted()


def interrupted() -> NoReturn:
    """Ctrl-C in advisor's own work: one line, then the end a shell expects of an
    interrupted command (killed by SIGINT, as Python ends on an uncaught KeyboardInterrupt)."""
    try:
        sys.stderr.write("advisor: interrupted\n")
        sys.stderr.flush()
    except Exception:
        pass
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)
    raise SystemExit(128 + signal.SIGINT)  # where the signal does not end the process


def entry() -> None:
    """The ``advisor`` console script."""
    if sys.argv and sys.argv[0]:
        hide_launcher(sys.argv[0])
    sys.exit(main())
