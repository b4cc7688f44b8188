"""redundant-conversion (ADV303) on hand-built reports: each back-and-forth conversion on a
costly line is found there with the fix and the documented share of the line's time; cold
lines, real conversions and look-alikes stay silent."""

from __future__ import annotations

import _strptime
import json
from collections.abc import Callable
from typing import Any

import pydantic.main as pydantic_main
import pytest

from advisor.engine import analyze
from advisor.profile import Report
from advisor.rules.compute.redundant_conversion import FRACTIONS

JSON = json.__file__
DUMPS = [("json.encoder.JSONEncoder.encode", JSON.replace("__init__", "encoder"), 200), ("json.dumps", JSON, 231)]
LOADS = [("json.decoder.JSONDecoder.decode", JSON.replace("__init__", "decoder"), 337), ("json.loads", JSON, 346)]


def findings(report: Report) -> list[Any]:
    return list(analyze(report, select=["redundant-conversion"]).findings)


@pytest.fixture
def profiled(build_task: Callable[..., Any], build_report: Callable[..., Report],
             write_source: Callable[[str, str], str]) -> Callable[..., Report]:
    """A one-thread run of `source` (app.py); each stack is (frames above the program line, line, seconds),
    the program line being in `function`, called from the module at line 90."""

    def build(source: str, stacks: list[tuple[list[tuple[str, str, int]], int, float]], wall: float = 1.0,
              function: str = "app.f") -> Report:
        file = write_source("app.py", source)
        thread = build_task("MainThread", kind="thread", id="thread:main", wall=wall, compute=wall * 0.9)
        built = [("thread:main", [*((name, file if where == "APP" else where, n) for name, where, n in above),
                                  (function, file, line), ("app.<module>", file, 90)], seconds, 0.0, "running")
                 for above, line, seconds in stacks]
        return build_report([thread], wall=wall, stacks=built)

    return build


COPY = """\
import json


def f(cart, adjustments):
    for index, delta in adjustments:
        draft = json.loads(json.dumps(cart))
        draft["items"][index]["qty"] += delta
        if valid(draft):
            cart = draft
    return cart
"""


def test_a_json_round_trip_used_as_a_copy(profiled: Callable[..., Report]) -> None:
    report = profiled(COPY, [(DUMPS, 6, 0.3), (LOADS, 6, 0.25), ([], 6, 0.05), ([], 7, 0.1)])
    [finding] = findings(report)
    assert finding.code == "ADV303"
    assert (finding.location.file, finding.location.line, finding.location.function) == ("app.py", 6, "f")
    assert finding.estimated_savings_s == pytest.approx(0.6 * FRACTIONS["round-trip-copy"])
    assert finding.evidence["pattern"] == "round-trip-copy"
    assert "pickle.loads(pickle.dumps(cart, pickle.HIGHEST_PROTOCOL))" in finding.fix
    assert finding.severity == "high"


def test_a_json_round_trip_whose_copy_is_never_modified(profiled: Callable[..., Report]) -> None:
    source = COPY.replace('        draft["items"][index]["qty"] += delta\n        if valid(draft):\n'
                          '            cart = draft\n', '        total += draft["items"][index]["qty"] * delta\n')
    [finding] = findings(profiled(source, [(DUMPS, 6, 0.3), (LOADS, 6, 0.3)]))
    assert finding.evidence["pattern"] == "round-trip-unused"
    assert finding.fix.startswith("draft = cart")
    assert finding.estimated_savings_s == pytest.approx(0.6 * FRACTIONS["round-trip-unused"])


def test_a_copy_taken_before_the_original_changes_is_a_real_copy(profiled: Callable[..., Report]) -> None:
    source = COPY.replace('        draft["items"][index]["qty"] += delta\n', '        cart["seen"] = index\n')
    [finding] = findings(profiled(source, [(DUMPS, 6, 0.3), (LOADS, 6, 0.3)]))
    assert finding.evidence["pattern"] == "round-trip-copy"


VARIABLE = """\
import json


def f(rows):
    out = []
    for row in rows:
        text = json.dumps(row)
        out.append(json.loads(text))
    return out
"""


def test_a_round_trip_through_a_variable_counts_both_lines(profiled: Callable[..., Report]) -> None:
    [finding] = findings(profiled(VARIABLE, [(DUMPS, 7, 0.3), (LOADS, 8, 0.2)]))
    assert finding.location.line == 8
    assert finding.estimated_savings_s == pytest.approx(0.5 * FRACTIONS["round-trip-copy"])


def test_a_dumps_whose_text_is_used_elsewhere_is_not_saved(profiled: Callable[..., Report]) -> None:
    source = VARIABLE.replace("        out.append(json.loads(text))\n",
                              "        out.append(json.loads(text))\n        print(text)\n")
    [finding] = findings(profiled(source, [(DUMPS, 7, 0.3), (LOADS, 8, 0.2)]))
    assert finding.estimated_savings_s == pytest.approx(0.2 * FRACTIONS["round-trip-copy"])


@pytest.mark.parametrize(("expression", "pattern", "fix"), [
    ("int(str(n))", "scalar-pair", "`n`"),
    ("str(int(n))", "scalar-pair", "`n`"),
    ("float(str(n))", "float-str", "float(n)"),
    ("list(list(n))", "same-type", "list(n)"),
])
def test_scalar_and_container_reconversions(profiled: Callable[..., Report], expression: str, pattern: str,
                                            fix: str) -> None:
    source = f"def f(values):\n    total = 0\n    for n in values:\n        total += len({expression})\n    return 0\n"
    [finding] = findings(profiled(source, [([], 4, 0.5)]))
    assert finding.location.line == 4
    assert finding.evidence["pattern"] == pattern
    assert fix in finding.fix
    assert finding.estimated_savings_s == pytest.approx(0.5 * FRACTIONS[pattern])


def test_list_of_sorted_saves_little_and_is_reported_only_when_hot(profiled: Callable[..., Report]) -> None:
    source = "def f(groups):\n    return [list(sorted(g)) for g in groups]\n"
    [finding] = findings(profiled(source, [([], 2, 0.6)], function="app.<listcomp>"))
    assert finding.fix == "sorted(g)"
    assert finding.estimated_savings_s == pytest.approx(0.6 * FRACTIONS["list-of-list"])
    assert findings(profiled(source, [([], 2, 0.1)], function="app.<listcomp>")) == []


MODELS = """\
from pydantic import BaseModel


class Order(BaseModel):
    id: str


def f(orders: list[Order], order: Order, other):
    a = Order.model_validate(order.model_dump())
    b = Order(**order.model_dump())
    c = Order.model_validate(other.model_dump())
    d = type(other)(**other.dict())
    return a, b, c, d
"""


def test_a_model_dumped_and_validated_back_into_its_own_class(profiled: Callable[..., Report]) -> None:
    pydantic = pydantic_main.__file__
    stacks = [([("pydantic.main.BaseModel.model_validate", pydantic, 500)], line, 0.2) for line in (9, 10, 11, 12)]
    found = {finding.location.line: finding for finding in findings(profiled(MODELS, stacks))}
    # 11: `other` may be another model: converting between models is not redundant
    assert set(found) == {9, 10, 12}
    assert found[9].fix.startswith("order.model_copy()")
    assert found[12].fix.startswith("other.model_copy()")
    assert found[9].estimated_savings_s == pytest.approx(0.2 * FRACTIONS["model-copy"])


DATES = """\
from datetime import datetime


def f(rows, cutoff):
    late = 0
    for row in rows:
        if datetime.strptime(row["day"], "%Y-%m-%d") > datetime.strptime(cutoff, "%Y-%m-%d"):
            late += 1
    return late


def g(rows, cutoff):
    return [row for row in rows if datetime.fromisoformat(cutoff) < row.when]


def h(rows):
    return [datetime.fromisoformat(row) for row in rows]
"""


def test_a_loop_invariant_date_parse(profiled: Callable[..., Report]) -> None:
    strptime = [("_strptime._strptime_datetime", _strptime.__file__, 565)]
    found = findings(profiled(DATES, [(strptime, 7, 0.5)]))
    [finding] = found
    assert finding.location.line == 7
    assert 'datetime.strptime(cutoff, "%Y-%m-%d")' in finding.fix or \
        "datetime.strptime(cutoff, '%Y-%m-%d')" in finding.fix
    assert finding.estimated_savings_s == pytest.approx(0.5 * FRACTIONS["date-invariant"])
    [in_comprehension] = findings(profiled(DATES, [([], 13, 0.4)], function="app.<listcomp>"))
    assert in_comprehension.location.line == 13
    assert findings(profiled(DATES, [([], 17, 0.4)], function="app.<listcomp>")) == []


def test_silent_when_the_line_is_cold(profiled: Callable[..., Report]) -> None:
    assert findings(profiled(COPY, [(DUMPS, 6, 0.01), ([], 7, 0.9)])) == []


def test_time_in_the_programs_own_callees_is_not_the_conversions(profiled: Callable[..., Report]) -> None:
    source = "import json\n\n\ndef f(ids):\n    return [json.loads(json.dumps(build(i))) for i in ids]\n"
    # the samples are in build(), a program function called on the line
    report = profiled(source, [([("app.build", "APP", 20)], 5, 0.6), (DUMPS, 5, 0.01)], function="app.<listcomp>")
    assert findings(report) == []


@pytest.mark.parametrize("expression", [
    "json.loads(json.dumps(x, default=str))",  # a conversion (datetimes to strings), not a copy
    "int(float(x))",  # parsing "3.0"
    "str(x)",
    "json.loads(x)",
    "tuple(sorted(x))",
])
def test_real_conversions_are_silent(profiled: Callable[..., Report], expression: str) -> None:
    source = f"import json\n\n\ndef f(xs):\n    return [{expression} for x in xs]\n"
    assert findings(profiled(source, [(DUMPS, 5, 0.6)], function="app.<listcomp>")) == []
