"""advisor's spans and requests as OpenTelemetry spans, with their time breakdown as attributes.

Live: ``install()`` adds a listener to advisor's span recorder (``advisor.span_stats``), so
every ``advisor.span`` / ``@advisor.trace`` call and every request of the server middlewares
becomes an OpenTelemetry span, started in the OpenTelemetry context of the code that opened
it (so it nests under the program's own spans, and spans opened inside nest under it) and
ended with ``advisor.compute_s``, ``advisor.io_s``, ``advisor.waiting_s``,
``advisor.scheduling_s``, ``advisor.blocking_s`` and the unit that ran it. After a run:
``export_report()`` sends one span for the run with one child per route and per span name,
their totals and percentiles as attributes. Both go through the standard SDK, so any OTLP
collector (or any other SDK exporter) receives them. The SDK is the optional ``otel`` extra,
imported only here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from advisor.profile import Breakdown, Report

from ..span_stats import FinishedSpan, OpenSpan, add_listener

TRACER_NAME = "advisor"


def _require_sdk() -> Any:
    try:
        from opentelemetry import context, trace
    except ImportError:
        raise RuntimeError("the OpenTelemetry export needs the SDK: pip install 'advisor[otel]'") from None
    return context, trace


def breakdown_attributes(breakdown: Breakdown | None, blocking_s: float) -> dict[str, float]:
    """The time split as span attributes (none when it could not be measured)."""
    if breakdown is None:
        return {}
    return {"advisor.compute_s": round(breakdown.compute_s, 6), "advisor.io_s": round(breakdown.io_s, 6),
            "advisor.waiting_s": round(breakdown.waiting_s, 6),
            "advisor.scheduling_s": round(breakdown.scheduling_s, 6), "advisor.blocking_s": round(blocking_s, 6)}


class OtelSpanListener:
    """Turns each advisor span and request into an OpenTelemetry span as it ends."""

    def __init__(self, tracer: Any) -> None:
        self.tracer = tracer
        self._context, self._trace = _require_sdk()

    def started(self, opened: OpenSpan) -> Any:
        kind = self._trace.SpanKind.SERVER if opened.kind == "request" else self._trace.SpanKind.INTERNAL
        span = self.tracer.start_span(opened.name, kind=kind, start_time=opened.start_ns)
        # spans opened inside this one (advisor's or the program's own) become its children
        token = self._context.attach(self._trace.set_span_in_context(span))
        return span, token

    def ended(self, finished: FinishedSpan, handle: Any) -> None:
        span, token = handle
        try:
            self._context.detach(token)
        except Exception:  # ended in another context than it began: nothing to restore there
            pass
        attributes: dict[str, Any] = {"advisor.kind": finished.kind, "advisor.wall_s": round(finished.wall_s, 6)}
        attributes.update(breakdown_attributes(finished.breakdown, finished.blocking_s))
        if finished.unit:
            attributes["advisor.unit"] = finished.unit
            attributes["advisor.unit_kind"] = finished.unit_kind
        for key, value in finished.labels.items():
            attributes["advisor.route" if finished.kind == "request" and key == "route" else key] = value
        span.set_attributes(attributes)
        if finished.error:
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR))
        span.end(end_time=finished.end_ns)


def install(tracer_provider: Any = None) -> Callable[[], None]:
    """Send every advisor span and request to OpenTelemetry from now on (through
    `tracer_provider`, or the global one); returns a function that stops it."""
    _, trace = _require_sdk()
    provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
    return add_listener(OtelSpanListener(provider.get_tracer(TRACER_NAME)))


def _started_ns(report: Report) -> int:
    try:
        started = dt.datetime.strptime(report.run.started_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        return 0
    return int(started.timestamp() * 1_000_000_000)


def export_report(report: Report, tracer_provider: Any = None) -> int:
    """One span for the run (its duration the run's wall time), with a child per route and
    per span name carrying totals over their calls; returns how many spans were made."""
    _, trace = _require_sdk()
    provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
    tracer = provider.get_tracer(TRACER_NAME)
    start = _started_ns(report)
    end = start + round(report.run.wall_s * 1_000_000_000)
    run = report.run
    attributes: dict[str, Any] = {"advisor.kind": "run", "advisor.argv": " ".join(run.argv), "advisor.mode": run.mode,
                                  "advisor.wall_s": run.wall_s, "advisor.cpu_s": run.cpu_s,
                                  "advisor.exit_code": run.exit_code, "advisor.findings": len(report.findings)}
    version = run.code_version
    if version is not None:
        attributes.update({key: value for key, value in (("advisor.commit", version.commit),
                                                         ("advisor.dirty", version.dirty),
                                                         ("advisor.release", version.release)) if value is not None})
    root = tracer.start_span(f"advisor run {run.argv[0] if run.argv else ''}".strip(), start_time=start,
                             attributes=attributes)
    made = 1
    parent = trace.set_span_in_context(root)
    for kind, stats in (("route", report.routes), ("span", report.spans)):
        for stat in stats:
            name = stat.route if kind == "route" else stat.name  # type: ignore[union-attr]
            child_attributes: dict[str, Any] = {
                "advisor.kind": kind, "advisor.count": stat.count, "advisor.errors": stat.errors,
                "advisor.measured": stat.measured, "advisor.wall_s": stat.wall_s, "advisor.p50_s": stat.p50_s,
                "advisor.p95_s": stat.p95_s, "advisor.p99_s": stat.p99_s, "advisor.max_s": stat.max_s}
            child_attributes.update(breakdown_attributes(stat.breakdown, stat.blocking_s))
            if kind == "route":
                child_attributes["advisor.route"] = name
            child = tracer.start_span(name, context=parent, start_time=start, attributes=child_attributes)
            child.end(end_time=end)
            made += 1
    root.end(end_time=end)
    return made


def otlp_provider(endpoint: str, service_name: str = "advisor") -> Any:
    """A tracer provider that sends spans in batches to an OTLP/HTTP collector at `endpoint`
    (``http://host:4318/v1/traces``); call its ``shutdown()`` to flush at the end."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        raise RuntimeError("the OTLP export needs the SDK and exporter: pip install 'advisor[otel]'") from None
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return provider
