"""The HTML report in a real headless Chromium: a real program profiled with ``--html``.

The page must load without console errors or script exceptions, draw one timeline lane
per unit of the JSON report of the same run, show every finding with its source line,
narrow the flame graph to one unit when it is picked, zoom the timeline, and escape a
task name that tries to close the page's script. A screenshot of the page is kept in
``build/test-artifacts/report.png`` (next to the page itself) for people to look at.

Chromium comes from the system packages (``make test`` installs Debian's ``chromium``);
playwright only drives it. Without it the test fails on CI and is skipped elsewhere.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from advisor.profile import Breakdown, Report, RunInfo, Task
from advisor.render.html import render_html

ARTIFACTS = Path(__file__).resolve().parents[3] / "build" / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
HOSTILE = "</script><b>poller</b>"

PROGRAM = '''
import asyncio
import threading
import time


def crunch(rounds: int) -> int:
    return sum(value * value for value in range(rounds))


def background() -> None:
    time.sleep(0.05)
    crunch(300_000)


async def poller() -> None:
    for _ in range(4):
        time.sleep(0.04)  # blocks the event loop
        await asyncio.sleep(0.01)


async def worker(index: int) -> int:
    total = 0
    for _ in range(5):
        await asyncio.sleep(0.02)
        total += crunch(20_000)
    return total


async def main() -> None:
    thread = threading.Thread(target=background, name="background")
    thread.start()
    tasks = [asyncio.create_task(worker(index), name=f"worker-{index}") for index in range(4)]
    tasks.append(asyncio.create_task(poller(), name=POLLER_NAME))
    await asyncio.gather(*tasks)
    await asyncio.to_thread(thread.join)


asyncio.run(main())
'''.replace("POLLER_NAME", repr(HOSTILE))


def chromium_path() -> str:
    return os.environ.get("ADVISOR_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def missing(reason: str) -> None:
    """No browser here: a failure on CI (where `make test` installs it), a skip elsewhere."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason}: `make test` installs Debian's chromium (make browser)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright is not installed (pip install -e '.[dev]')")
    executable = chromium_path()
    if not os.access(executable, os.X_OK):
        missing(f"no chromium at {executable}")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def profiled(tmp_path: Path, run_advisor: Callable[..., subprocess.CompletedProcess[str]],
             read_report: Callable[[Path], dict[str, Any]]) -> tuple[Path, dict[str, Any]]:
    """The HTML page and the JSON report of one run of the program."""
    (tmp_path / "prog.py").write_text(textwrap.dedent(PROGRAM).lstrip(), encoding="utf-8")
    result = run_advisor(["run", "--html", "report.html", "--json", "report.json", "prog.py"])
    assert result.returncode == 0, result.stderr
    return tmp_path / "report.html", read_report(tmp_path / "report.json")


def open_page(browser: Any, path: Path, width: int = 1280) -> tuple[Any, list[str]]:
    """The file in a new page, and the list its console errors, script exceptions and
    requests for anything but the file itself go to."""
    problems: list[str] = []
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.on("console", lambda message: problems.append(f"console {message.type}: {message.text}")
            if message.type in ("error", "assert") else None)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("request", lambda request: problems.append(f"request: {request.url}")
            if request.url != path.as_uri() else None)
    page.goto(path.as_uri())
    return page, problems


def test_the_report_page_in_chromium(browser: Any, profiled: tuple[Path, dict[str, Any]]) -> None:
    page_file, report = profiled
    page, problems = open_page(browser, page_file)
    page.wait_for_selector("#timeline-svg g.lane")

    # one lane per unit of the run, in the report's order, named as the report names them
    lanes = page.locator("#timeline-svg g.lane")
    assert [lanes.nth(i).get_attribute("data-unit") for i in range(lanes.count())] == [
        task["id"] for task in report["tasks"]]
    poller = next(task for task in report["tasks"] if task["name"] == HOSTILE)
    assert page.locator(f'#timeline-svg g.lane[data-unit="{poller["id"]}"] text.lane-label').text_content() == HOSTILE
    assert page.locator(f'#units-table tr[data-unit="{poller["id"]}"] td.name').text_content() == HOSTILE
    # the poller held the loop for 4 x 40 ms: its lane, drawn from the recorded steps, has a
    # blocking segment for each sleep, in time order and of one width
    assert poller["blocking_s"] >= 0.12
    blocked = page.locator(f'#timeline-svg g.lane[data-unit="{poller["id"]}"] rect.blocking')
    assert blocked.count() == 4
    boxes = [(float(blocked.nth(i).get_attribute("x") or 0), float(blocked.nth(i).get_attribute("width") or 0))
             for i in range(4)]
    assert all(left + width <= right for (left, width), (right, _) in itertools.pairwise(boxes))
    assert max(width for _, width in boxes) <= 1.5 * min(width for _, width in boxes)
    blocked.first.hover()
    tip = page.locator("#tooltip")
    assert tip.is_visible() and (tip.text_content() or "").startswith(HOSTILE)
    assert "▸ blocking " in (tip.text_content() or "")
    # the workers never block; on a loaded machine a preempted step may still show a few
    # milliseconds of it, so their lanes draw a blocking segment exactly when the JSON has some
    for worker in (task for task in report["tasks"] if task["name"].startswith("worker-")):
        assert worker["blocking_s"] <= 0.1 * poller["blocking_s"], worker
        lane = page.locator(f'#timeline-svg g.lane[data-unit="{worker["id"]}"]')
        if worker["blocking_s"] == 0:
            assert lane.locator("rect.blocking").count() == 0
        # each ran after the poller let go of the loop: scheduling between its steps
        assert lane.locator("rect.scheduling").count() >= 1

    # every finding, and the blocking sleep shown on its own line of the program
    assert page.locator("article.finding").count() == len(report["findings"]) >= 1
    sleep = page.locator('article.finding[data-rule="blocking-sleep"]')
    assert sleep.count() == 1
    assert "time.sleep(0.04)" in (sleep.locator(".src-line.hit").text_content() or "")

    # the flame graph narrowed to one unit shows only frames that unit's samples hold
    def frames_shown() -> set[int]:
        cells = page.locator("#flame-svg g.frame")
        return {int(cells.nth(i).get_attribute("data-frame") or "-1") for i in range(cells.count())} - {-1}

    every = frames_shown()
    page.select_option("#flame-unit", poller["id"])
    names = [frame["function"] for frame in report["samples"]["frames"]]
    own = {index for stack in report["samples"]["stacks"] if stack["unit"] == poller["id"] for index in stack["frames"]}
    shown = frames_shown()
    assert shown and shown <= own and shown < every
    assert "prog.poller" in {names[index] for index in shown}
    assert "prog.background" not in {names[index] for index in shown}
    # clicking a frame zooms into it: what is above it is dimmed
    page.locator('#flame-svg g.frame:not([data-frame="-1"])').first.click()
    assert page.locator("#flame-svg g.frame.dim").count() >= 1

    # zoom the timeline: twice the pixels per second, then a dragged range, then back (on the
    # main thread's lane: a thread has no steps, its lane is one bar split in proportion)
    main = next(task for task in report["tasks"] if task["name"] == "MainThread")

    def lane_width() -> float:
        rects = page.locator(f'#timeline-svg g.lane[data-unit="{main["id"]}"] rect.seg')
        return sum(float(rects.nth(i).get_attribute("width") or 0) for i in range(rects.count()))

    full = lane_width()
    page.click("#zoom-in")
    assert lane_width() == pytest.approx(2 * full, rel=0.01)
    page.click("#zoom-reset")
    assert lane_width() == pytest.approx(full, rel=0.01)
    box = page.locator("#timeline-svg").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 400, box["y"] + 60)
    page.mouse.down()
    page.mouse.move(box["x"] + 500, box["y"] + 80, steps=4)
    page.mouse.up()
    assert lane_width() > 3 * full
    page.click("#zoom-reset")

    # a lane's name picks its unit in the flame graph
    page.locator(f'#timeline-svg g.lane[data-unit="{report["tasks"][0]["id"]}"] text.lane-label').click()
    assert page.locator("#flame-unit").input_value() == report["tasks"][0]["id"]
    page.select_option("#flame-unit", "")

    # searching highlights the frames of a function, and says what share of the time is under them
    page.fill("#flame-search", "poller")
    marked = page.locator("#flame-svg g.frame.match")
    assert marked.count() >= 1
    assert all("poller" in names[int(marked.nth(i).get_attribute("data-frame") or "0")] for i in range(marked.count()))
    weights = [(stack["on_cpu_s"] + (stack["off_cpu_s"] if stack["state"] != "idle" else 0.0),
                any("poller" in names[index] for index in stack["frames"])) for stack in report["samples"]["stacks"]]
    matched = sum(weight for weight, hit in weights if hit) / sum(weight for weight, _ in weights)
    assert page.locator("#flame-matches").text_content() == f"matches {100 * matched:.0f}% of the time"
    page.fill("#flame-search", "")
    assert page.locator("#flame-svg g.frame.match").count() == 0
    page.locator("#flame-search").blur()

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
    shutil.copyfile(page_file, ARTIFACTS / "report.html")
    page.close()
    assert problems == []
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000


def test_older_and_empty_reports_draw_without_errors(browser: Any, tmp_path: Path) -> None:
    """A report made before units had start and end times, and a report of nothing."""
    run = RunInfo(argv=["app.py"], python="3.11.7", cpu_count=2, started_at="2026-11-25T08:00:00Z", wall_s=1.0,
                  cpu_s=0.1, exit_code=1, cwd=str(tmp_path))
    units = [Task(id=f"thread:{n}", name=f"worker-{n}", target="app.work", kind="thread", wall_s=0.25 * n,
                  cpu_s=0.0, breakdown=Breakdown(waiting_s=0.25 * n)) for n in (1, 2, 4)]
    pages = {"older": render_html(Report(run=run, tasks=units)), "empty": render_html(Report(run=run))}
    for name, html in pages.items():
        (tmp_path / f"{name}.html").write_text(html, encoding="utf-8")
        page, problems = open_page(browser, tmp_path / f"{name}.html", width=1000)
        flame_text = page.locator("#flame-chart").text_content() or ""
        if name == "older":
            # without times each bar starts at 0 and is as long as the unit's wall time
            widths = [float(page.locator(f'g.lane[data-unit="thread:{n}"] rect.seg').get_attribute("width") or 0)
                      for n in (1, 2, 4)]
            assert widths[1] == pytest.approx(2 * widths[0], rel=0.01)
            assert widths[2] == pytest.approx(4 * widths[0], rel=0.01)
            assert "no start and end times" in (page.locator("#timeline-note").text_content() or "")
        else:
            assert page.locator("#timeline-chart").text_content() == "No units in this report."
            assert page.locator("#flame-unit option").count() == 1
        assert "No sampled stacks." in flame_text
        page.close()
        assert problems == [], name
