"""slow-construct (ADV305) on hand-built reports: each slow idiom in a hot loop is found at
its line with the pythonic fix; cold loops and the fast look-alikes stay silent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from advisor.engine import analyze
from advisor.profile import Report
from advisor.rules.compute.slow_construct import FRACTIONS


def findings(report: Report) -> list[Any]:
    return list(analyze(report, select=["slow-construct"]).findings)


@pytest.fixture
def profiled(build_task: Callable[..., Any], build_report: Callable[..., Report],
             write_source: Callable[[str, str], str]) -> Callable[..., Report]:
    """A one-thread run of `source` whose samples sit `seconds` at `line` of `function`
    (leaf), called from line 90 of the module."""

    def build(source: str, line: int, seconds: float = 0.5, wall: float = 1.0, function: str = "app.f") -> Report:
        file = write_source("app.py", source)
        thread = build_task("MainThread", kind="thread", id="thread:main", wall=wall, compute=wall * 0.9)
        stacks = [("thread:main", [(function, file, line), ("app.<module>", file, 90)], seconds, 0.0, "running")]
        return build_report([thread], wall=wall, stacks=stacks)

    return build


MEMBERSHIP = """\
def f(orders, catalogue):
    known = [row["sku"] for row in catalogue]
    missing = 0
    for order in orders:
        if order not in known:
            missing += 1
    return missing
"""


def test_list_membership_in_a_hot_loop(profiled: Callable[..., Report]) -> None:
    [finding] = findings(profiled(MEMBERSHIP, line=5))
    assert finding.code == "ADV305"
    assert (finding.location.file, finding.location.line, finding.location.function) == ("app.py", 5, "f")
    assert "known_set = set(known)" in finding.fix
    assert finding.evidence["idiom"] == "list-membership"
    assert finding.estimated_savings_s == pytest.approx(FRACTIONS["list-membership"] * 0.5)
    assert finding.severity == "high"


def test_samples_without_a_line_count_for_the_functions_for_loop(profiled: Callable[..., Report]) -> None:
    # CPython 3.11 samples a loop running C code at its backward jump, which has no line:
    # the sampler gives the function's first line
    [finding] = findings(profiled(MEMBERSHIP, line=1))
    assert finding.location.line == 5
    assert finding.estimated_savings_s == pytest.approx(FRACTIONS["list-membership"] * 0.5)


def test_silent_when_the_loop_is_cold(profiled: Callable[..., Report]) -> None:
    assert findings(profiled(MEMBERSHIP, line=5, seconds=0.05)) == []
    # the time is elsewhere in the function, not in the loop
    assert findings(profiled(MEMBERSHIP, line=2, seconds=0.8)) == []


@pytest.mark.parametrize("known", [
    "{row['sku'] for row in catalogue}",  # a set already
    "['a', 'b', 'c']",  # a short constant list: as fast as a set
])
def test_membership_in_a_set_or_a_short_literal_is_fine(profiled: Callable[..., Report], known: str) -> None:
    source = MEMBERSHIP.replace('[row["sku"] for row in catalogue]', known)
    assert findings(profiled(source, line=5)) == []


def test_membership_in_a_list_built_inside_the_loop_or_of_unknown_type(profiled: Callable[..., Report]) -> None:
    inside = MEMBERSHIP.replace('    known = [row["sku"] for row in catalogue]\n', "").replace(
        "        if order not in known:", "        known = list(order)\n        if order not in known:")
    assert findings(profiled(inside, line=5)) == []
    parameter = MEMBERSHIP.replace("def f(orders, catalogue):", "def f(orders, known):").replace(
        '    known = [row["sku"] for row in catalogue]\n', "    pass\n")
    assert findings(profiled(parameter, line=5)) == []
    annotated = parameter.replace("def f(orders, known):", "def f(orders, known: list[str]):")
    assert [f.location.line for f in findings(profiled(annotated, line=5))] == [5]


def test_a_list_that_grows_gets_the_set_add_fix(profiled: Callable[..., Report]) -> None:
    source = """\
def f(words):
    seen = []
    for word in words:
        if word not in seen:
            seen.append(word)
    return seen
"""
    [finding] = findings(profiled(source, line=4))
    assert "seen = set()" in finding.fix and "seen.add" in finding.fix


def test_module_level_list_read_in_a_function(profiled: Callable[..., Report]) -> None:
    source = "ALLOWED = list(range(100))\n\n\n" + MEMBERSHIP.replace(
        '    known = [row["sku"] for row in catalogue]\n', "").replace("known", "ALLOWED")
    [finding] = findings(profiled(source, line=7))
    assert (finding.location.line, finding.evidence["list"]) == (7, "ALLOWED")


STRINGS = """\
class Report:
    def __init__(self):
        self.text = ""


def f(rows, report):
    for row in rows:
        report.text += row
    return report
"""


def test_string_concat_on_an_attribute(profiled: Callable[..., Report]) -> None:
    [finding] = findings(profiled(STRINGS, line=8))
    assert finding.location.line == 8
    assert finding.evidence["idiom"] == "string-concat"
    assert "parts.append(row)" in finding.fix and "report.text += ''.join(parts)" in finding.fix
    assert finding.estimated_savings_s == pytest.approx(FRACTIONS["string-concat"] * 0.5)


def test_local_string_plus_equals_is_left_alone(profiled: Callable[..., Report]) -> None:
    # CPython appends in place to a local string: as fast as a join
    source = "def f(rows):\n    out = ''\n    for row in rows:\n        out += row + ','\n    return out\n"
    assert findings(profiled(source, line=4)) == []
    # not a string at all: a list extended in place
    listy = STRINGS.replace('self.text = ""', "self.text = []").replace("report.text += row", "report.text += [row]")
    assert findings(profiled(listy, line=8)) == []


@pytest.mark.parametrize(("statement", "fix"), [
    ("out = out + row + ','", "out += ''.join(parts)"),
    ("out = row + '\\n' + out", "''.join(reversed(parts)) + out"),
])
def test_string_rebuilt_with_plus(profiled: Callable[..., Report], statement: str, fix: str) -> None:
    source = f"def f(rows):\n    out = ''\n    for row in rows:\n        {statement}\n    return out\n"
    [finding] = findings(profiled(source, line=4))
    assert fix in finding.fix


def test_module_level_string_plus_equals(profiled: Callable[..., Report]) -> None:
    source = "import sys\nout = ''\nfor row in sys.argv * 1000:\n    out += row + ','\nprint(len(out))\n"
    [finding] = findings(profiled(source, line=4, function="app.<module>"))
    assert finding.location.function == "<module>"


QUEUE = """\
def f(start, edges):
    queue = [start]
    seen = {start}
    while queue:
        node = queue.pop(0)
        for nxt in edges[node]:
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen
"""


def test_pop_front_of_a_list(profiled: Callable[..., Report]) -> None:
    [finding] = findings(profiled(QUEUE, line=5))
    assert finding.location.line == 5
    assert "collections.deque" in finding.fix and "queue.popleft()" in finding.fix
    assert finding.estimated_savings_s == pytest.approx(FRACTIONS["list-front"] * 0.5)


def test_insert_front_of_a_list(profiled: Callable[..., Report]) -> None:
    source = "def f(rows):\n    recent = []\n    for row in rows:\n        recent.insert(0, row)\n    return recent\n"
    [finding] = findings(profiled(source, line=4))
    assert "recent.appendleft(row)" in finding.fix


def test_pop_of_a_dict_or_deque_is_fine(profiled: Callable[..., Report]) -> None:
    assert findings(profiled(QUEUE.replace("queue = [start]", "queue = {0: start}"), line=5)) == []
    deque = "import collections\n" + QUEUE.replace("queue = [start]", "queue = collections.deque([start])")
    assert findings(profiled(deque, line=6)) == []


RANGE_LEN = """\
def f(rows):
    total = 0
    for i in range(len(rows)):
        total += rows[i][1] * rows[i][2]
    return total
"""


def test_range_len_indexing(profiled: Callable[..., Report]) -> None:
    [finding] = findings(profiled(RANGE_LEN, line=4))
    assert finding.location.line == 3
    assert finding.fix.startswith("for item in rows:")
    assert finding.estimated_savings_s == pytest.approx(FRACTIONS["range-len"] * 0.5)


def test_range_len_with_the_index_needed_is_low_at_most(profiled: Callable[..., Report]) -> None:
    source = RANGE_LEN.replace("total += rows[i][1] * rows[i][2]", "total += rows[i][1] * i")
    [finding] = findings(profiled(source, line=4))
    assert "enumerate(rows)" in finding.fix
    assert finding.severity in ("low", "info")


def test_range_len_without_indexing_the_sequence(profiled: Callable[..., Report]) -> None:
    source = RANGE_LEN.replace("total += rows[i][1] * rows[i][2]", "total += i * i")
    assert findings(profiled(source, line=4)) == []


def test_idioms_in_one_loop_share_its_time(profiled: Callable[..., Report]) -> None:
    source = """\
class Report:
    text = ""


def f(orders, catalogue, report):
    known = [row["sku"] for row in catalogue]
    for order in orders:
        if order not in known:
            report.text += f"unknown {order}"
    return report
"""
    found = {f.location.line: f for f in findings(profiled(source, line=5, seconds=0.6))}
    assert set(found) == {8, 9}
    # the membership test runs every iteration, the += only under the if: 2/3 and 1/3
    assert found[8].estimated_savings_s == pytest.approx(0.8 * 0.6 * 2 / 3)
    assert found[9].estimated_savings_s == pytest.approx(0.8 * 0.6 * 1 / 3)


def test_comprehension_membership(profiled: Callable[..., Report]) -> None:
    source = """\
def f(orders, catalogue):
    known = [row["sku"] for row in catalogue]
    return [order for order in orders
            if order in known]
"""
    [finding] = findings(profiled(source, line=3, function="app.f.<locals>.<listcomp>"))
    assert finding.location.line == 4
