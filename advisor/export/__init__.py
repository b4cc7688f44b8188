"""Exports of a report to the systems teams already run: pprof for continuous profilers
(``advisor.export.pprof``) and OpenTelemetry spans for tracing back ends (``advisor.export.otel``)."""
