"""excess-logging (ADV202) on hand-built reports: dropped records built eagerly are found at
the logging call with the lazy fix, per-record handler I/O at the handler's line; cheap,
lazy or small logging stays silent."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from advisor.engine import analyze
from advisor.profile import Report

LOGGING = logging.__file__
DEBUG = [("logging.Logger.isEnabledFor", LOGGING, 1734), ("logging.Logger.debug", LOGGING, 1465)]
INFO_RECORD = [("logging.LogRecord.__init__", LOGGING, 330), ("logging.Logger.makeRecord", LOGGING, 1591),
               ("logging.Logger._log", LOGGING, 1632), ("logging.Logger.info", LOGGING, 1489)]
INFO_FLUSH = [("logging.StreamHandler.flush", LOGGING, 1094), ("logging.StreamHandler.emit", LOGGING, 1114),
              ("logging.FileHandler.emit", LOGGING, 1230), ("logging.Handler.handle", LOGGING, 978),
              ("logging.Logger.callHandlers", LOGGING, 1706), ("logging.Logger.handle", LOGGING, 1644),
              ("logging.Logger._log", LOGGING, 1634), ("logging.Logger.info", LOGGING, 1489)]

APP = """\
import logging
import os


def describe(order_id, lines):
    return f"{order_id}: " + "; ".join(f"{q} x {sku}" for sku, q in sorted(lines))


def process(orders, log):
    for order_id, lines, total in orders:
        log.debug(f"order details: {describe(order_id, lines)}")
        log.info(f"order {order_id} priced: {len(lines)} lines, total {total:.2f}")


def main(orders, log_dir):
    log = logging.getLogger("orders")
    handler = logging.FileHandler(os.path.join(log_dir, "orders.log"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    process(orders, log)
"""
DEBUG_LINE, INFO_LINE, HANDLER_LINE = 11, 12, 17


def findings(report: Report) -> list[Any]:
    return list(analyze(report, select=["excess-logging"]).findings)


@pytest.fixture
def profiled(build_task: Callable[..., Any], build_report: Callable[..., Report],
             write_source: Callable[[str, str], str]) -> Callable[..., Report]:
    """A one-thread run of `source` (app.py); each stack is (frames above the program line, line, seconds),
    the program line being in process(), called from main() at line 20."""

    def build(stacks: list[tuple[list[tuple[str, str, int]], int, float]], source: str = APP,
              wall: float = 1.0, state: str = "running") -> Report:
        file = write_source("app.py", source)
        thread = build_task("MainThread", kind="thread", id="thread:main", wall=wall, compute=wall * 0.9)
        built = []
        for above, line, seconds in stacks:
            frames = [*(frame if frame[1] != "APP" else (frame[0], file, frame[2]) for frame in above),
                      ("app.process", file, line), ("app.main", file, 20), ("app.<module>", file, 30)]
            off = seconds if state != "running" else 0.0
            built.append(("thread:main", frames, 0.0 if off else seconds, off, state))
        return build_report([thread], wall=wall, stacks=built)

    return build


DESCRIBE = [("app.<genexpr>", "APP", 6), ("app.describe", "APP", 6)]


def test_a_dropped_debug_fstring_with_a_call_is_found_at_the_call(profiled: Callable[..., Report]) -> None:
    report = profiled([(DESCRIBE, DEBUG_LINE, 0.40), ([], DEBUG_LINE, 0.05), (DEBUG, DEBUG_LINE, 0.01),
                       ([], 10, 0.3)])
    [finding] = findings(report)
    assert finding.code == "ADV202"
    assert (finding.location.file, finding.location.line, finding.location.function) == \
        ("app.py", DEBUG_LINE, "process")
    assert finding.estimated_savings_s == pytest.approx(0.45)
    assert finding.severity == "high"
    assert finding.fix == ("if log.isEnabledFor(logging.DEBUG):\n"
                           "    log.debug('order details: %s', describe(order_id, lines))")
    assert finding.evidence["record_dropped"] is True
    assert finding.evidence["eager"] == "an f-string"
    assert "dropped" in finding.message


def test_a_dropped_record_is_inferred_when_no_logging_frame_was_sampled(profiled: Callable[..., Report]) -> None:
    [finding] = findings(profiled([(DESCRIBE, DEBUG_LINE, 0.2)]))
    assert finding.location.line == DEBUG_LINE
    assert finding.estimated_savings_s == pytest.approx(0.2)
    assert finding.evidence["record_dropped"] is None


@pytest.mark.parametrize(("call", "fix"), [
    ('log.debug(f"order {order_id}: {total:.2f} [{lines!r}]")',
     "log.debug('order %s: %.2f [%r]', order_id, total, lines)"),
    ('log.debug("order %s: %d%% of %s" % (order_id, total, lines))',
     "log.debug('order %s: %d%% of %s', order_id, total, lines)"),
    ('log.log(logging.DEBUG, f"order {order_id}: {describe(order_id, lines)}")',
     "if log.isEnabledFor(logging.DEBUG):\n    log.log(logging.DEBUG, 'order %s: %s', order_id, "
     "describe(order_id, lines))"),
    ('logging.debug(f"order {describe(order_id, lines)}")',
     "if logging.getLogger().isEnabledFor(logging.DEBUG):\n    logging.debug('order %s', describe(order_id, lines))"),
    ('log.debug("order %s: %s", order_id, describe(order_id, lines))',
     "if log.isEnabledFor(logging.DEBUG):\n    log.debug('order %s: %s', order_id, describe(order_id, lines))"),
    ('log.debug("order {}: {:.1f}%".format(order_id, total))', "log.debug('order %s: %.1f%%', order_id, total)"),
    ('log.debug("order {0.id}".format(order))',
     "if log.isEnabledFor(logging.DEBUG):\n    log.debug('order {0.id}'.format(order))"),
    ('log.debug("order " + order_id + " at " + str(total))', "log.debug('order %s at %s', order_id, str(total))"),
])
def test_the_fix_is_the_lazy_call(profiled: Callable[..., Report], call: str, fix: str) -> None:
    source = APP.replace('log.debug(f"order details: {describe(order_id, lines)}")', call)
    [finding] = findings(profiled([([], DEBUG_LINE, 0.3)], source=source))
    assert finding.fix == fix


def test_a_multi_line_call_is_reported_at_its_first_line(profiled: Callable[..., Report]) -> None:
    source = APP.replace('log.debug(f"order details: {describe(order_id, lines)}")',
                         'log.debug(\n            f"order details: {describe(order_id, lines)}"\n        )')
    [finding] = findings(profiled([(DESCRIBE, DEBUG_LINE + 1, 0.3), ([], DEBUG_LINE, 0.02)], source=source))
    assert finding.location.line == DEBUG_LINE
    assert finding.estimated_savings_s == pytest.approx(0.32)


def test_per_record_handler_io_is_found_at_the_handler(profiled: Callable[..., Report]) -> None:
    report = profiled([(INFO_FLUSH, INFO_LINE, 0.5), (INFO_RECORD, INFO_LINE, 0.1), ([], INFO_LINE, 0.05)])
    [finding] = findings(report)
    assert (finding.location.line, finding.location.function) == (HANDLER_LINE, "main")
    assert finding.estimated_savings_s == pytest.approx(0.5)
    assert finding.evidence["handler"] == "FileHandler"
    assert finding.evidence["calls"] == [f"app.py:{INFO_LINE}"]
    assert "QueueHandler" in finding.fix and "DEBUG" in finding.fix


def test_handler_io_that_does_not_dominate_is_reported_at_the_call(profiled: Callable[..., Report]) -> None:
    report = profiled([(INFO_FLUSH, INFO_LINE, 0.15), (INFO_RECORD, INFO_LINE, 0.3)])
    [finding] = findings(report)
    assert finding.location.line == INFO_LINE
    assert finding.estimated_savings_s == pytest.approx(0.15)


def test_off_cpu_time_in_a_handler_is_io(profiled: Callable[..., Report]) -> None:
    # a slow stream: the record's write waits off the CPU inside the handler (leaf: the stream's write)
    above = [("_io.write", "/usr/lib/python3.11/socket.py", 1), *INFO_FLUSH[1:]]
    [finding] = findings(profiled([(above, INFO_LINE, 0.4)], state="io"))
    assert finding.location.line == HANDLER_LINE
    assert finding.estimated_savings_s == pytest.approx(0.4)


def test_both_costs_of_the_workload_shape(profiled: Callable[..., Report]) -> None:
    report = profiled([(DESCRIBE, DEBUG_LINE, 0.33), (INFO_RECORD, INFO_LINE, 0.2), (INFO_FLUSH, INFO_LINE, 0.1)])
    found = {finding.location.line: finding for finding in findings(report)}
    assert set(found) == {DEBUG_LINE, INFO_LINE}  # the handler I/O does not dominate the INFO call's cost
    assert found[DEBUG_LINE].estimated_savings_s == pytest.approx(0.33)
    assert found[INFO_LINE].estimated_savings_s == pytest.approx(0.1)


def test_silent_when_logging_is_a_small_share(profiled: Callable[..., Report]) -> None:
    assert findings(profiled([(DESCRIBE, DEBUG_LINE, 0.03), (INFO_FLUSH, INFO_LINE, 0.03), ([], 10, 0.9)])) == []


def test_silent_when_the_message_is_lazy_and_cheap(profiled: Callable[..., Report]) -> None:
    source = APP.replace('log.debug(f"order details: {describe(order_id, lines)}")',
                         'log.debug("order %s: %d lines", order_id, len(lines))')
    assert findings(profiled([([], DEBUG_LINE, 0.2), (DEBUG, DEBUG_LINE, 0.1)], source=source)) == []


def test_silent_for_enabled_records_without_handler_io(profiled: Callable[..., Report]) -> None:
    # formatting an enabled record is the output the program asked for; lazy arguments would not save it
    report = profiled([([], INFO_LINE, 0.3), (INFO_RECORD, INFO_LINE, 0.4)])
    assert findings(report) == []


def test_silent_for_a_guarded_debug_call(profiled: Callable[..., Report]) -> None:
    source = APP.replace('        log.debug(f"order details: {describe(order_id, lines)}")',
                         '        if log.isEnabledFor(logging.DEBUG):\n'
                         '            log.debug("order details: %s", describe(order_id, lines))')
    # the guard's line costs nothing worth reporting; the describe() line is never reached
    assert findings(profiled([(DEBUG, DEBUG_LINE, 0.05), ([], 10, 0.5)], source=source)) == []


def test_silent_for_an_info_method_that_is_not_a_logger(profiled: Callable[..., Report]) -> None:
    source = APP.replace('log.debug(f"order details: {describe(order_id, lines)}")',
                         'frame.info(f"order details: {describe(order_id, lines)}")')
    assert findings(profiled([(DESCRIBE, DEBUG_LINE, 0.4)], source=source)) == []


def test_other_units_samples_are_not_counted_twice(build_task: Callable[..., Any],
                                                   build_report: Callable[..., Report],
                                                   write_source: Callable[[str, str], str]) -> None:
    file = write_source("app.py", APP)
    thread = build_task("MainThread", kind="thread", id="thread:main", wall=1.0, compute=0.9)
    task = build_task("worker", kind="asyncio-task", id="asyncio:1", wall=1.0, compute=0.9)
    frames = [("app.describe", file, 6), ("app.process", file, DEBUG_LINE), ("app.main", file, 20)]
    stacks = [("thread:main", frames, 0.2, 0.0, "running"), ("asyncio:1", frames, 0.2, 0.0, "running")]
    [finding] = findings(build_report([thread, task], wall=1.0, stacks=stacks))
    assert finding.estimated_savings_s == pytest.approx(0.2)
