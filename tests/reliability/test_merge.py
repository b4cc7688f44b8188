"""``advisor merge``: the reports of several real runs (two "workers" of one program) merged
into one, with units, functions and samples summed by identity, run facts combined and
findings judged again on the whole; unusable or incompatible inputs are one line, exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from advisor.merge import MergeError, merge_reports
from advisor.profile import Report, load_report

from .conftest import advisor_env, assert_usage_error

WORKER = """
    import asyncio
    import sys
    import time

    NAMED, ANONYMOUS = int(sys.argv[1]), int(sys.argv[2])


    def audit():
        time.sleep(0.02)  # blocks the loop: a blocking-sleep finding in every worker


    async def fetch(number):
        await asyncio.sleep(0.03)
        audit()
        return number


    async def main():
        named = [asyncio.create_task(fetch(n), name=f"fetch-{n}") for n in range(NAMED)]
        anonymous = [asyncio.create_task(fetch(n)) for n in range(ANONYMOUS)]
        return sum(await asyncio.gather(*named, *anonymous))


    print(asyncio.run(main()))
    sys.exit(int(sys.argv[3]))
"""

# (named tasks, anonymous tasks, exit status) of each worker
WORKERS = {"a": (3, 4, 0), "b": (2, 6, 3)}


@dataclass
class Workers:
    work: Path
    paths: dict[str, Path]
    documents: dict[str, dict[str, Any]]


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "advisor", *args], cwd=cwd, env=advisor_env(), capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory, program: Callable[[Path, str], Path]) -> Workers:
    work = tmp_path_factory.mktemp("workers")
    program(work / "worker.py", WORKER)
    paths, documents = {}, {}
    for name, (named, anonymous, status) in WORKERS.items():
        path = work / f"{name}.json"
        done = run_cli(["run", "--json", str(path), "worker.py", str(named), str(anonymous), str(status)], work)
        assert done.returncode == status, done.stderr[-3000:]
        paths[name] = path
        documents[name] = json.loads(path.read_text(encoding="utf-8"))
    return Workers(work, paths, documents)


@pytest.fixture(scope="module")
def merged(workers: Workers) -> dict[str, Any]:
    done = run_cli(["merge", "a.json", "b.json", "-o", "all.json"], workers.work)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout == "" and done.stderr == ""
    document: dict[str, Any] = json.loads((workers.work / "all.json").read_text(encoding="utf-8"))
    Report.model_validate(document)
    return document


def units(document: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [task for task in document["tasks"] if task["name"] == name]


def fetch_fold(document: dict[str, Any]) -> dict[str, Any]:
    """The folded entry of the anonymous fetch tasks (a fold is named after its target)."""
    (entry,) = [task for task in document["tasks"] if task["name"] == task["target"] == "__main__.fetch"]
    return entry


def test_units_are_summed_by_identity(workers: Workers, merged: dict[str, Any]) -> None:
    a, b = workers.documents["a"], workers.documents["b"]
    # the anonymous fetches of both workers: one folded entry, 4 + 6 of them
    assert fetch_fold(merged)["count"] == 10
    assert fetch_fold(merged)["wall_s"] == pytest.approx(fetch_fold(a)["wall_s"] + fetch_fold(b)["wall_s"], abs=2e-6)
    # fetch-0 and fetch-1 ran in both workers, fetch-2 only in a
    for name, count in (("fetch-0", 2), ("fetch-1", 2), ("fetch-2", 1), ("MainThread", 2)):
        (entry,) = units(merged, name)
        assert entry["count"] == count, entry
        parts = [unit for document in (a, b) for unit in units(document, name)]
        assert len(parts) == count
        for field in ("wall_s", "cpu_s", "blocking_s"):
            assert entry[field] == pytest.approx(sum(unit[field] for unit in parts), abs=2e-6), field
        for part in ("compute_s", "io_s", "waiting_s", "scheduling_s"):
            assert entry["breakdown"][part] == pytest.approx(
                sum(unit["breakdown"][part] for unit in parts), abs=2e-6), part
    assert sum(task["count"] for task in merged["tasks"]) == sum(
        task["count"] for document in (a, b) for task in document["tasks"])


def test_unit_ids_stay_unique_and_samples_point_at_them(workers: Workers, merged: dict[str, Any]) -> None:
    ids = [task["id"] for task in merged["tasks"]]
    assert len(ids) == len(set(ids))
    frames = merged["samples"]["frames"]
    for stack in merged["samples"]["stacks"]:
        assert stack["unit"] in ids
        assert all(0 <= index < len(frames) for index in stack["frames"])
    for key in ("on_cpu_s", "off_cpu_s"):
        before = sum(stack[key] for document in workers.documents.values() for stack in document["samples"]["stacks"])
        assert sum(stack[key] for stack in merged["samples"]["stacks"]) == pytest.approx(before, abs=1e-4)


def test_functions_are_summed_by_place(workers: Workers, merged: dict[str, Any]) -> None:
    def by_place(document: dict[str, Any]) -> dict[tuple[str, str, int], dict[str, Any]]:
        return {(f["function"], f["file"], f["line"]): f for f in document["functions"]}

    merged_functions = by_place(merged)
    inputs = [by_place(document) for document in workers.documents.values()]
    assert set(merged_functions) == {place for table in inputs for place in table}
    for place, entry in merged_functions.items():
        assert entry["self_s"] == pytest.approx(sum(t[place]["self_s"] for t in inputs if place in t), abs=2e-6)


def test_run_facts_are_combined(workers: Workers, merged: dict[str, Any]) -> None:
    runs = [document["run"] for document in workers.documents.values()]
    run = merged["run"]
    assert run["merged_runs"] == 2
    assert run["cpu_s"] == pytest.approx(sum(r["cpu_s"] for r in runs), abs=2e-6)
    # the workers ran one after the other: the span is at least the longer, at most the sum
    assert max(r["wall_s"] for r in runs) <= run["wall_s"] <= sum(r["wall_s"] for r in runs) + 1e-6
    assert run["exit_code"] == 3  # b's failure is the merged run's
    assert run["partial"] is False
    assert run["started_at"] == min(r["started_at"] for r in runs)
    overhead = run["overhead"]
    assert overhead["hooked_steps"] == sum(r["overhead"]["hooked_steps"] for r in runs)
    assert overhead["sampler_ticks"] == sum(r["overhead"]["sampler_ticks"] for r in runs)
    factors = sorted(r["overhead"]["factor_estimate"] for r in runs)
    assert factors[0] - 1e-4 <= overhead["factor_estimate"] <= factors[-1] + 1e-4


def test_findings_are_judged_again_on_the_merged_report(workers: Workers, merged: dict[str, Any]) -> None:
    line = (workers.work / "worker.py").read_text().splitlines().index("    time.sleep(0.02)  # blocks the loop: "
                                                                      "a blocking-sleep finding in every worker") + 1
    found = {}
    for key, document in (*workers.documents.items(), ("merged", merged)):
        (finding,) = [f for f in document["findings"]
                      if f["rule"] == "blocking-sleep" and f["location"]["line"] == line]
        found[key] = finding["estimated_savings_s"]
    # the merged run blocked its loops in both workers: what the fix saves is more than in either
    assert found["merged"] > max(found["a"], found["b"])


def test_merge_to_stdout_is_the_same_report(workers: Workers, merged: dict[str, Any]) -> None:
    done = run_cli(["merge", "a.json", "b.json"], workers.work)
    assert done.returncode == 0, done.stderr[-3000:]
    again = json.loads(done.stdout)
    assert again["tasks"] == merged["tasks"]
    assert again["findings"] == merged["findings"]
    shown = run_cli(["report", "all.json"], workers.work)  # and a merged report renders like any other
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert "fetch-0" in shown.stdout


def test_merge_reports_is_pure_and_marks_partial(workers: Workers) -> None:
    a, b = load_report(workers.paths["a"]), load_report(workers.paths["b"])
    stopped = b.model_copy(update={"run": b.run.model_copy(update={"partial": True})}, deep=True)
    before = a.model_dump()
    result = merge_reports([a, stopped])
    assert result.run.partial is True
    assert result.findings == []  # the engine judges findings, not the merge
    assert a.model_dump() == before
    # merging a report with itself doubles every count and time
    doubled = merge_reports([a, a])
    assert [t.count for t in doubled.tasks] == [2 * t.count for t in a.tasks]
    assert doubled.run.cpu_s == pytest.approx(2 * a.run.cpu_s, abs=2e-6)


def test_merge_refuses_mixed_schema_versions_and_modes(workers: Workers) -> None:
    a = load_report(workers.paths["a"])
    with pytest.raises(MergeError, match=r"^reports of different schema versions \(1, 2\) cannot be merged$"):
        merge_reports([a, a.model_copy(update={"schema_version": 2})])
    light = a.model_copy(update={"run": a.run.model_copy(update={"mode": "light"})})
    with pytest.raises(MergeError, match=r"^reports of different modes \(standard, light\) cannot be merged"):
        merge_reports([a, light])
    with pytest.raises(MergeError, match="no reports"):
        merge_reports([])


def test_merge_cli_refuses_a_light_run_next_to_a_standard_one(workers: Workers) -> None:
    done = run_cli(["run", "--mode", "light", "--json", "light.json", "worker.py", "1", "1", "0"], workers.work)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_usage_error(run_cli(["merge", "a.json", "light.json", "-o", "mixed.json"], workers.work),
                       "different modes (standard, light)")
    assert not (workers.work / "mixed.json").exists()


def test_merge_cli_refuses_a_newer_schema_version(workers: Workers, tmp_path: Path) -> None:
    newer = dict(workers.documents["a"], schema_version=2)
    (tmp_path / "newer.json").write_text(json.dumps(newer), encoding="utf-8")
    assert_usage_error(run_cli(["merge", str(workers.paths["a"]), "newer.json"], tmp_path), "schema_version 2")


@pytest.mark.parametrize(("arguments", "says"), [
    ([], "REPORT.json"),
    (["a.json", "-o", "nodir/all.json"], "does not exist"),
    (["a.json", "-o", "."], "is a directory"),
])
def test_merge_usage_errors(arguments: list[str], says: str, workers: Workers,
                            run_advisor: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    assert_usage_error(run_advisor(["merge", *arguments], cwd=workers.work), says)


def test_hot_spots_and_their_lines_are_summed_by_place(workers: Workers, merged: dict[str, Any]) -> None:
    def spots(document: dict[str, Any]) -> dict[tuple[str, ...], dict[str, Any]]:
        return {(task["kind"], task["name"], spot["function"], spot["file"], str(spot["line"])): spot
                for task in document["tasks"] for spot in task["hot"]}

    inputs = [spots(document) for document in workers.documents.values()]
    checked = 0
    for place, spot in spots(merged).items():
        parts = [table[place] for table in inputs if place in table]
        assert spot["self_s"] == pytest.approx(sum(part["self_s"] for part in parts), abs=2e-6), place
        for line in spot.get("lines", []):  # per-line figures, where the report has them
            same = [other for part in parts for other in part.get("lines", []) if other["line"] == line["line"]]
            assert line["self_s"] == pytest.approx(sum(other["self_s"] for other in same), abs=2e-6)
        checked += 1
    assert checked > 0
