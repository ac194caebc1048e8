"""OpenTelemetry traces: one trace from the HTTP request that changes state, through the outbox and
Kafka (W3C ``traceparent`` in message headers), to the work its events cause in other services.

Off by default (exporter ``none``): then no tracer provider exists and every helper here returns
at once, so tracing costs a boolean test per call site. The provider is this module's own rather
than OpenTelemetry's process-global one, because the global can be set only once per process and
tests build several apps in one process.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Literal

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "SpanKind",
    "TracingMiddleware",
    "configure_tracing",
    "context_from",
    "current_trace_id",
    "shutdown_tracing",
    "span",
    "trace_headers",
    "tracing_enabled",
]

TracingExporter = Literal["none", "console", "otlp"]
TRACE_HEADERS = ("traceparent", "tracestate")

_propagator = TraceContextTextMapPropagator()


class _Tracing:
    """The process's tracer while tracing is on (``None`` while off)."""

    provider: TracerProvider | None = None
    tracer: Tracer | None = None


def configure_tracing(
    *,
    service: str,
    exporter: TracingExporter,
    otlp_endpoint: str | None = None,
    span_exporter: SpanExporter | None = None,
) -> None:
    """Start exporting spans of ``service`` (or stop: exporter ``none``).

    ``otlp_endpoint`` is the collector's base URL (``/v1/traces`` is appended); without it the
    OTLP exporter reads ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_ENDPOINT``.
    Batching follows the standard ``OTEL_BSP_*`` variables. A given ``span_exporter`` (an
    in-memory one in tests) receives each span as it ends instead.
    """
    shutdown_tracing()
    if exporter == "none" and span_exporter is None:
        return
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: f"hwcollab-{service}"}))
    if span_exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    else:
        provider.add_span_processor(BatchSpanProcessor(_exporter(service, exporter, otlp_endpoint)))
    _Tracing.provider = provider
    _Tracing.tracer = provider.get_tracer("hwcollab")


def _exporter(service: str, exporter: TracingExporter, otlp_endpoint: str | None) -> SpanExporter:
    span_exporter: SpanExporter
    if exporter == "console":
        span_exporter = ConsoleSpanExporter(service_name=f"hwcollab-{service}")
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = f"{otlp_endpoint.rstrip('/')}/v1/traces" if otlp_endpoint else None
        span_exporter = OTLPSpanExporter(endpoint=endpoint)
    return span_exporter


def shutdown_tracing() -> None:
    """Export what is buffered and stop tracing (at process shutdown)."""
    provider = _Tracing.provider
    _Tracing.provider = None
    _Tracing.tracer = None
    if provider is not None:
        provider.shutdown()


def tracing_enabled() -> bool:
    return _Tracing.tracer is not None


@contextmanager
def span(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    parent: Context | None = None,
    attributes: Mapping[str, str | int | float | bool] | None = None,
    links: Sequence[Context] = (),
) -> Iterator[Span | None]:
    """A span around the block, child of ``parent`` or of the current span, linked to the spans
    of ``links`` (the messages of a batch); ``None`` when off.

    An exception leaving the block is recorded on the span and marks it as an error.
    """
    tracer = _Tracing.tracer
    if tracer is None:
        yield None
        return
    linked = [
        trace.Link(context)
        for context in (trace.get_current_span(link).get_span_context() for link in links)
        if context.is_valid
    ]
    with tracer.start_as_current_span(
        name, context=parent, kind=kind, attributes=dict(attributes or {}), links=linked
    ) as current:
        yield current


def trace_headers() -> dict[str, str]:
    """W3C trace-context headers of the current span (empty when off or outside any span)."""
    if _Tracing.tracer is None:
        return {}
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier


def context_from(headers: Mapping[str, str] | None) -> Context | None:
    """The remote parent named by ``traceparent`` in ``headers`` (``None`` when off or absent)."""
    if _Tracing.tracer is None or not headers or "traceparent" not in headers:
        return None
    return _propagator.extract({k: headers[k] for k in TRACE_HEADERS if k in headers})


def batch_parent(contexts: Sequence[Context | None]) -> tuple[Context | None, list[Context]]:
    """The parent and links of a span that handles a batch of messages: every message's context
    becomes a link, and when they all belong to one trace (one opening's fan-out), the first
    of them is the parent too, so that the batch shows in that trace."""
    known = [context for context in contexts if context is not None]
    traces = {trace.get_current_span(c).get_span_context().trace_id for c in known}
    parent = known[0] if len(traces) == 1 and len(known) == len(contexts) else None
    return parent, known


def current_trace_id() -> str | None:
    """The hex trace id of the active span, for log lines (``None`` when off or outside)."""
    if _Tracing.tracer is None:
        return None
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


class TracingMiddleware:
    """A server span per HTTP request, named ``METHOD /route/{template}``, continuing an incoming
    ``traceparent``. Passes requests straight through while tracing is off."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _Tracing.tracer is None:
            await self.app(scope, receive, send)
            return
        headers = {
            key.decode("latin-1"): value.decode("latin-1")
            for key, value in scope.get("headers", ())
            if key in (b"traceparent", b"tracestate")
        }
        method: str = scope.get("method", "GET")
        status_code = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = int(message["status"])
            await send(message)

        with span(
            method,
            kind=SpanKind.SERVER,
            parent=context_from(headers),
            attributes={"http.request.method": method, "url.path": scope.get("path", "")},
        ) as current:
            try:
                await self.app(scope, receive, send_with_status)
            finally:
                if current is not None:
                    route = getattr(scope.get("route"), "path", None)
                    if route:
                        current.update_name(f"{method} {route}")
                        current.set_attribute("http.route", route)
                    current.set_attribute("http.response.status_code", status_code)
                    if status_code >= 500:
                        current.set_status(Status(StatusCode.ERROR))
