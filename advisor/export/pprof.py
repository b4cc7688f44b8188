"""The sampled profile as gzipped pprof (profile.proto), for continuous-profiling services.

Pyroscope, Google Cloud Profiler, Datadog and ``go tool pprof`` read this format. Each sample
is one distinct sampled stack of one thread with two values, ``wall`` (on- and off-CPU) and
``cpu`` (on-CPU), in nanoseconds, and labels naming the thread and what the stack was doing
(``state``: running, io, waiting, idle, scheduling). Only the threads' stacks are written:
a task's or greenlet's samples are the same time again, seen from the unit, and a profiling
service adds up every sample it gets. Locations are the report's frames (function, file,
line); functions carry their file and first line. Made from the report alone, so
``advisor report saved.json --pprof out.pb.gz`` works too.
"""

from __future__ import annotations

import datetime as dt
import gzip
from typing import Any

from advisor.profile import Report

from .pprof_schema import message_class

NANOS = 1_000_000_000


class StringTable:
    """pprof's string table: index 0 is the empty string, every other string once."""

    def __init__(self, profile: Any) -> None:
        self.profile = profile
        self.index: dict[str, int] = {}
        self.get("")

    def get(self, text: str) -> int:
        found = self.index.get(text)
        if found is None:
            found = self.index[text] = len(self.profile.string_table)
            self.profile.string_table.append(text)
        return found


def _started_ns(report: Report) -> int:
    try:
        started = dt.datetime.strptime(report.run.started_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        return 0
    return int(started.timestamp()) * NANOS


def build_profile(report: Report) -> Any:
    """The report's sampled thread stacks as a ``perftools.profiles.Profile`` message."""
    profile = message_class("Profile")()
    strings = StringTable(profile)
    for kind in ("wall", "cpu"):
        profile.sample_type.add(type=strings.get(kind), unit=strings.get("nanoseconds"))
    profile.default_sample_type = strings.get("wall")
    profile.period_type.type = strings.get("wall")
    profile.period_type.unit = strings.get("nanoseconds")
    profile.period = round(report.samples.interval_s * NANOS)
    profile.time_nanos = _started_ns(report)
    profile.duration_nanos = round(report.run.wall_s * NANOS)
    profile.mapping.add(id=1, filename=strings.get("python"), has_functions=True, has_filenames=True,
                        has_line_numbers=True)
    if report.run.code_version is not None and report.run.code_version.commit:
        profile.comment.append(strings.get(f"commit {report.run.code_version.commit}"))
    first_lines = {(function.function, function.file): function.line for function in report.functions}
    functions: dict[tuple[str, str], int] = {}
    locations: dict[int, int] = {}
    threads = {task.id: task for task in report.tasks if task.kind == "thread"}
    unit_key, kind_key, state_key = strings.get("unit"), strings.get("unit_kind"), strings.get("state")
    for stack in report.samples.stacks:
        unit = threads.get(stack.unit)
        if unit is None or not stack.frames:
            continue
        wall = round((stack.on_cpu_s + stack.off_cpu_s) * NANOS)
        cpu = round(stack.on_cpu_s * NANOS)
        if wall <= 0:
            continue
        ids = []
        for frame_index in stack.frames:  # leaf first, as pprof wants them
            location_id = locations.get(frame_index)
            if location_id is None:
                frame = report.samples.frames[frame_index]
                key = (frame.function, frame.file)
                function_id = functions.get(key)
                if function_id is None:
                    function_id = functions[key] = len(functions) + 1
                    profile.function.add(id=function_id, name=strings.get(frame.function),
                                         system_name=strings.get(frame.function), filename=strings.get(frame.file),
                                         start_line=first_lines.get(key, 0))
                location_id = locations[frame_index] = len(locations) + 1
                location = profile.location.add(id=location_id, mapping_id=1)
                location.line.add(function_id=function_id, line=frame.line)
            ids.append(location_id)
        sample = profile.sample.add(location_id=ids, value=[wall, cpu])
        sample.label.add(key=unit_key, str=strings.get(unit.name))
        sample.label.add(key=kind_key, str=strings.get(unit.kind))
        sample.label.add(key=state_key, str=strings.get(stack.state))
    return profile


def pprof_bytes(report: Report) -> bytes:
    """gzip(Profile), as pprof files are."""
    return gzip.compress(build_profile(report).SerializeToString(), mtime=0)
