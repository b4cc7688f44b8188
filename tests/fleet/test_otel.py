"""advisor's spans and requests as OpenTelemetry spans, through the standard SDK.

In process: the SDK's in-memory exporter receives one span per ``advisor.span`` call and per
request of the WSGI middleware, nested as they ran, with the time split as attributes. From
the command line: ``--otlp`` sends them, and the run's summary, to an OTLP/HTTP receiver the
test starts on 127.0.0.1 (port 0) and decodes with the OTLP protobuf messages.
"""

from __future__ import annotations

import asyncio
import http.server
import threading
import wsgiref.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import advisor
from advisor.export.otel import export_report, install

PROGRAMS = Path(__file__).parent / "programs"


@pytest.fixture
def exported() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    yield provider, memory
    provider.shutdown()


def named(spans: tuple[ReadableSpan, ...] | list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


def burn(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


def test_spans_become_nested_otel_spans_with_their_breakdown(exported: tuple[TracerProvider, Any]) -> None:
    provider, memory = exported
    tracer = provider.get_tracer("the-program")

    async def order(index: int) -> None:
        with advisor.span("checkout", order=index):
            with advisor.span("payment"):
                await asyncio.sleep(0.05)
            with advisor.span("pricing"):
                burn(200_000)

    async def main() -> None:
        with tracer.start_as_current_span("request"):  # the program's own instrumentation
            await asyncio.gather(*(asyncio.create_task(order(i), name=f"order-{i}") for i in range(2)))

    remove = install(provider)
    try:
        with advisor.Profiler("light", gevent=False, calibrate=False) as profiler:
            asyncio.run(main())
    finally:
        remove()
    spans = memory.get_finished_spans()
    (request,) = named(spans, "request")
    checkouts, payments, pricings = named(spans, "checkout"), named(spans, "payment"), named(spans, "pricing")
    assert len(checkouts) == len(payments) == len(pricings) == 2
    for checkout in checkouts:
        # under the program's span, in its trace
        assert checkout.parent is not None and checkout.parent.span_id == request.context.span_id
        assert checkout.context.trace_id == request.context.trace_id
        assert checkout.attributes["advisor.kind"] == "span"
        assert checkout.attributes["advisor.unit"] in ("order-0", "order-1")
        assert checkout.attributes["advisor.unit_kind"] == "asyncio-task"
    by_order = {checkout.attributes["order"]: checkout for checkout in checkouts}
    assert set(by_order) == {"0", "1"}
    for payment in payments:
        parent = next(checkout for checkout in checkouts if checkout.context.span_id == payment.parent.span_id)
        assert parent.attributes["advisor.unit"] == payment.attributes["advisor.unit"]
        assert payment.attributes["advisor.waiting_s"] == pytest.approx(0.05, rel=0.1)
        assert payment.attributes["advisor.compute_s"] < 0.005
        parts = sum(payment.attributes[f"advisor.{part}_s"] for part in ("compute", "io", "waiting", "scheduling"))
        assert parts == pytest.approx(payment.attributes["advisor.wall_s"], abs=1e-5)
        assert (payment.end_time - payment.start_time) / 1e9 == pytest.approx(payment.attributes["advisor.wall_s"],
                                                                                abs=0.002)
    for pricing in pricings:
        assert pricing.attributes["advisor.compute_s"] > 0.5 * pricing.attributes["advisor.wall_s"]  # busy machine
    # the report has the same spans, summed
    report = profiler.last_report
    assert report is not None
    assert {stat.name: stat.count for stat in report.spans} == {"checkout": 2, "payment": 2, "pricing": 2}


def test_wsgi_requests_become_server_spans_with_the_spans_inside(exported: tuple[TracerProvider, Any]) -> None:
    from advisor.embed import AdvisorWSGIMiddleware

    provider, memory = exported

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        advisor.tag(customer="acme")  # labels the request, and the spans opened after it
        with advisor.span("query"):
            burn(600_000)  # ~30 ms: the sampler sees it in the route's stacks
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    middleware = AdvisorWSGIMiddleware(app, deep_signal=None)
    remove = install(provider)
    try:
        middleware.agent.ensure_started()

        def serve() -> None:  # a thread started under the profiler, as a threaded server's
            for path in ("/orders", "/orders"):
                environ: dict[str, Any] = {"REQUEST_METHOD": "GET", "PATH_INFO": path}
                wsgiref.util.setup_testing_defaults(environ)
                assert middleware(environ, lambda status, headers, exc_info=None: None) == [b"ok"]

        worker = threading.Thread(target=serve, name="server-worker")
        worker.start()
        worker.join(timeout=30)
        assert not worker.is_alive()
    finally:
        remove()
        middleware.agent.close()
    spans = memory.get_finished_spans()
    requests, queries = named(spans, "GET /orders"), named(spans, "query")
    assert len(requests) == len(queries) == 2
    for request in requests:
        assert request.kind == trace.SpanKind.SERVER
        assert request.attributes["advisor.route"] == "GET /orders"
        assert request.attributes["advisor.kind"] == "request"
        assert request.attributes["advisor.unit"] == "server-worker"
        assert request.attributes["customer"] == "acme"
    for query in queries:
        parent = next(request for request in requests if request.context.span_id == query.parent.span_id)
        assert parent.context.trace_id == query.context.trace_id
        assert query.attributes["customer"] == "acme"
        assert query.attributes["advisor.compute_s"] > 0.5 * query.attributes["advisor.wall_s"] > 0.0
    # the route's own figures are intact: the request's span handed its samples back to the route
    report = middleware.agent.profiler.last_report
    assert report is not None
    (route,) = [stat for stat in report.routes if stat.route == "GET /orders"]
    assert route.count == route.measured == 2
    assert route.breakdown.compute_s > 0.5 * route.wall_s > 0.0
    assert any(spot.function.endswith("burn") for spot in route.hot)
    assert [(stat.name, stat.count, stat.labels) for stat in report.spans] == [("query", 2, {"customer": {"acme": 2}})]


def test_a_saved_report_becomes_a_run_span_with_one_child_per_span_name(
        exported: tuple[TracerProvider, Any], run_advisor: Any, tmp_path: Path) -> None:
    from advisor.profile import load_report

    provider, memory = exported
    done = run_advisor(["run", "--json", "r.json", "--release", "r1", str(PROGRAMS / "otel_app.py")])
    assert done.returncode == 0, done.stderr
    report = load_report(tmp_path / "r.json")
    assert export_report(report, provider) == 1 + len(report.spans) == 4
    spans = memory.get_finished_spans()
    (run,) = [span for span in spans if span.parent is None]
    assert run.attributes["advisor.kind"] == "run" and run.attributes["advisor.release"] == "r1"
    assert (run.end_time - run.start_time) / 1e9 == pytest.approx(report.run.wall_s, abs=1e-6)
    payment = next(span for span in spans if span.name == "payment")
    assert payment.parent.span_id == run.context.span_id
    assert payment.attributes["advisor.count"] == 2
    assert payment.attributes["advisor.waiting_s"] == pytest.approx(2 * 0.04, rel=0.15)


class Receiver(http.server.BaseHTTPRequestHandler):
    """An OTLP/HTTP trace receiver: keeps each request body, answers 200."""

    bodies: list[bytes] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.bodies.append(self.rfile.read(length))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_otlp_option_sends_live_spans_and_the_run_to_a_collector(run_advisor: Any, tmp_path: Path) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    Receiver.bodies = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
        done = run_advisor(["run", "--otlp", url, "--json", "r.json", str(PROGRAMS / "otel_app.py")], timeout=60)
        assert done.returncode == 0, done.stderr
    finally:
        server.shutdown()
        server.server_close()
    received = []
    for body in Receiver.bodies:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            service = {item.key: item.value.string_value for item in resource_spans.resource.attributes}
            assert service["service.name"] == "otel_app"
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    attributes = {item.key: item.value for item in span.attributes}
                    received.append((span.name, attributes, span))
    kinds: dict[str, list[str]] = {}
    for name, attributes, _ in received:
        kinds.setdefault(attributes["advisor.kind"].string_value, []).append(name)
    # live: one span per call; summary: the run and one child per span name
    assert sorted(kinds["span"]) == sorted(["checkout", "checkout", "payment", "payment", "hash-cart", "hash-cart",
                                            "checkout", "payment", "hash-cart"])
    assert kinds["run"] == [f"advisor run {PROGRAMS / 'otel_app.py'}"]
    payments = [attributes for name, attributes, _ in received if name == "payment"
                and attributes["advisor.kind"].string_value == "span" and "advisor.unit" in attributes]
    assert len(payments) == 2
    for attributes in payments:
        assert attributes["advisor.waiting_s"].double_value == pytest.approx(0.04, rel=0.15)
        assert attributes["advisor.unit"].string_value in ("order-0", "order-1")


def test_otlp_needs_an_http_url(run_advisor: Any) -> None:
    done = run_advisor(["run", "--otlp", "127.0.0.1:4318", str(PROGRAMS / "otel_app.py")])
    assert done.returncode == 2
    assert done.stderr == "advisor: error: --otlp 127.0.0.1:4318: not an http:// or https:// URL\n"
