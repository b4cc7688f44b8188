"""excess-logging fixes: f-string messages become lazy %-style arguments (guarded when they call)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest


def test_fields_become_arguments_with_the_same_text(fixed: Callable[..., str], code: Callable[[str], str]) -> None:
    before = """
        import logging

        log = logging.getLogger("orders")


        def done(order_id, elapsed, name):
            log.info(f"order {order_id} ({name!r}) took {elapsed:.2f} s, 100% {{ok}}", exc_info=False)  # <-
    """
    assert fixed(before, "excess-logging") == code("""
        import logging

        log = logging.getLogger("orders")


        def done(order_id, elapsed, name):
            log.info("order %s (%r) took %.2f s, 100%% {ok}", order_id, name, elapsed, exc_info=False)  # <-
    """)


def test_the_lazy_message_logs_exactly_what_the_f_string_did() -> None:
    # ground truth: logging's own formatting of the rewritten call against the f-string's text
    order_id, name, elapsed = 42, "ann's", 1.23456
    eager = f"order {order_id} ({name!r}) took {elapsed:.2f} s, 100% {{ok}} {order_id:05d} {order_id:x}"
    record = logging.LogRecord("orders", logging.INFO, "app.py", 1,
                               "order %s (%r) took %.2f s, 100%% {ok} %05d %x",
                               (order_id, name, elapsed, order_id, order_id), None)
    assert record.getMessage() == eager


def test_a_call_in_the_message_is_guarded_by_the_level(fixed: Callable[..., str], code: Callable[[str], str]) -> None:
    before = """
        import logging

        log = logging.getLogger("stock")


        def reconcile(bins):
            for bin_id, moves in bins:
                # details only when debugging
                log.debug(f"movements of bin {describe(bin_id, moves)}")  # <-
    """
    assert fixed(before, "excess-logging") == code("""
        import logging

        log = logging.getLogger("stock")


        def reconcile(bins):
            for bin_id, moves in bins:
                # details only when debugging
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("movements of bin %s", describe(bin_id, moves))  # <-
    """)


def test_log_with_a_level_keeps_the_level_and_guards_with_it(fixed: Callable[..., str]) -> None:
    result = fixed("""
        import logging
        def f(self, level, items):
            self.log.log(level, f"{len(items)} items: {summarize(items)}")  # <-
    """, "excess-logging")
    assert "    if self.log.isEnabledFor(level):\n" in result
    assert '        self.log.log(level, "%s items: %s", len(items), summarize(items))  # <-\n' in result


def test_the_logging_import_is_added_for_the_guard(fixed: Callable[..., str]) -> None:
    result = fixed("""
        def f(log, rows):
            log.warning(f"skipped {render(rows)}")  # <-
    """, "excess-logging")
    assert result.startswith("import logging\n")
    assert "    if log.isEnabledFor(logging.WARNING):\n" in result


def test_module_level_logging_functions_are_made_lazy_but_not_guarded(fix: Callable[..., object]) -> None:
    # logging.debug() configures the root logger when it has no handler: a guard would skip that
    result = fix("""
        import logging
        def f(rows):
            logging.debug(f"rows: {render(rows)}")  # <-
    """, "excess-logging")
    assert 'logging.debug("rows: %s", render(rows))' in result.after  # type: ignore[attr-defined]
    assert "isEnabledFor" not in result.after  # type: ignore[attr-defined]
    assert "not guarded" in result.edits[0].note  # type: ignore[attr-defined]


@pytest.mark.parametrize(("call", "reason"), [
    ('log.info(f"{x=}")', "format %-style cannot say"),
    ('log.info(f"{x:>10}")', "format %-style cannot say"),
    ('log.info(f"{x:{width}}")', "format %-style cannot say"),
    ('log.info(f"{x!r:>4}")', "format %-style cannot say"),
    ('log.info(f"{x} and %s", y)', "arguments besides its message"),
    ('log.info(f"plain")', "no fields"),
    ('log.info(rf"\\d {x}")', "raw f-string"),
    ('log.info("a" f"{x}")', "not a plain f-string"),
    ('print(f"{x}")', "no single logging call"),
])
def test_messages_percent_style_cannot_say_are_refused(refused: Callable[..., str], call: str, reason: str) -> None:
    assert reason in refused(f"def f(log, x, y, width):\n    {call}  # <-\n", "excess-logging")
