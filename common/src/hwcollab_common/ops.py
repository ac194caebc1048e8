"""Operational endpoints and HTTP behaviour every service shares: ``/healthz``, ``/readyz``,
``/metrics``, request-size limits, request ids, and the process's logs and traces."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import Literal
from uuid import uuid4

import structlog
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, Histogram, generate_latest
from pydantic import BaseModel, Field
from starlette.datastructures import MutableHeaders
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hwcollab_common.settings import ServiceSettings
from hwcollab_common.tracing import TracingMiddleware, configure_tracing, current_trace_id
from hwcollab_common.unavailable import install_unavailable_handler
from hwcollab_common.web.security import BodySizeLimit

ReadinessCheck = Callable[[], Awaitable[None]]

_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,127}")

REQUEST_SECONDS = Histogram(
    "hwcollab_http_request_seconds",
    "HTTP request latency",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    checks: dict[str, str] = Field(examples=[{"mongodb": "ok", "kafka": "ok"}])


def ops_router(checks: Mapping[str, ReadinessCheck], *, timeout: float = 2.0) -> APIRouter:
    """``/healthz`` (alive), ``/readyz`` (every check passes) and ``/metrics`` (Prometheus)."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Kafka, MongoDB and the service's own state are ready",
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "Not ready: see the failing checks."}},
    )
    async def readyz() -> JSONResponse:
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                await asyncio.wait_for(check(), timeout=timeout)
            except Exception as error:
                results[name] = f"failing: {type(error).__name__}: {error}"[:300]
            else:
                results[name] = "ok"
        ready = all(value == "ok" for value in results.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": results},
            status_code=200 if ready else 503,
        )

    @router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


class RequestMetrics(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        loop = asyncio.get_running_loop()
        started = loop.time()
        status = "500"  # an exception escaping the app becomes a 500 further out
        try:
            response = await call_next(request)
            status = str(response.status_code)
        finally:
            route = request.scope.get("route")
            path = getattr(route, "path", "unmatched")
            REQUEST_SECONDS.labels(request.method, path, status).observe(loop.time() - started)
        return response


class RequestId:
    """Binds a request id to every log line of a request and echoes it in ``X-Request-ID``.

    A well-formed incoming ``X-Request-ID`` (a proxy's) is kept; anything else is replaced by a new
    random id, so log lines never carry caller-chosen text of arbitrary size or shape."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next(
            (value for key, value in scope.get("headers", ()) if key == b"x-request-id"), b""
        ).decode("latin-1")
        request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid4().hex

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            await self.app(scope, receive, send_with_id)


def install_http_basics(app: FastAPI, *, max_body_bytes: int = 64 * 1024) -> None:
    """Size limit, request metrics, request ids and request spans for every service's app."""
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    app.add_middleware(RequestMetrics)
    app.add_middleware(TracingMiddleware)
    app.add_middleware(RequestId)  # outermost: every line of the request carries its id
    install_unavailable_handler(app)  # MongoDB unreachable: 503 with Retry-After, not 500
    app.add_exception_handler(RequestValidationError, invalid_request)


class AsciiJSONResponse(JSONResponse):
    """JSON with every non-ASCII character escaped: text that cannot be UTF-8 (a lone surrogate
    that a client sent as ``\\ud800``) is answered as it came instead of failing the answer."""

    def render(self, content: object) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


async def invalid_request(request: Request, error: Exception) -> Response:
    """FastAPI's 422 (``{"detail": [{loc, msg, type, input, …}]}``) for invalid input, whatever
    characters the input held."""
    if not isinstance(error, RequestValidationError):
        raise error
    return AsciiJSONResponse({"detail": jsonable_encoder(error.errors())}, status_code=422)


def configure_observability(settings: ServiceSettings, *, service: str) -> None:
    """Logs and traces of a service process, as its settings ask."""
    json_logs = (
        settings.log_json if settings.log_json is not None else settings.hwcollab_env == "prod"
    )
    configure_logging(service=service, level=settings.log_level, json_logs=json_logs)
    configure_tracing(
        service=service,
        exporter=settings.tracing_exporter,
        otlp_endpoint=settings.otel_exporter_otlp_endpoint,
    )


def configure_logging(*, service: str, level: str, json_logs: bool) -> None:
    """Every log line to stdout through one structlog chain: a JSON object per line in production
    (timestamp, level, logger, message, service, request/event/trace ids bound at the time),
    readable lines in development. Standard-library loggers (ours, uvicorn's, FastStream's and the
    drivers') are routed through the same chain."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        _ServiceName(service),
        _add_trace_id,
        _access_log_fields,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    rendering: list[structlog.types.Processor] = [
        structlog.stdlib.ProcessorFormatter.remove_processors_meta
    ]
    if json_logs:
        rendering += [
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("message"),
            structlog.processors.JSONRenderer(),
        ]
    else:
        rendering.append(structlog.dev.ConsoleRenderer())
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared, processors=rendering, pass_foreign_args=True
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # uvicorn installs its own handlers before it calls the app factory, FastStream at import:
    # hand their records to ours.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "faststream"):
        uvicorn_logger = logging.getLogger(name)
        for old in list(uvicorn_logger.handlers):
            uvicorn_logger.removeHandler(old)
        uvicorn_logger.propagate = True


class _ServiceName:
    def __init__(self, service: str) -> None:
        self._service = service

    def __call__(
        self, logger: object, method: str, event_dict: structlog.types.EventDict
    ) -> structlog.types.EventDict:
        event_dict.setdefault("service", self._service)
        return event_dict


def _add_trace_id(
    logger: object, method: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    trace_id = current_trace_id()
    if trace_id is not None:
        event_dict.setdefault("trace_id", trace_id)
    return event_dict


def _access_log_fields(
    logger: object, method: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    """uvicorn's access lines as fields; the query string is left out (it can carry link tokens)."""
    args = event_dict.pop("positional_args", None)  # a standard-library record's arguments
    event_dict.pop("color_message", None)  # uvicorn's copy of the message with colour codes
    record = event_dict.get("_record")
    if not isinstance(record, logging.LogRecord) or record.name != "uvicorn.access":
        return event_dict
    if isinstance(args, tuple) and len(args) == 5:
        client, http_method, full_path, _, status = args
        path = str(full_path).split("?", 1)[0]
        event_dict.update(
            event=f"{http_method} {path} {status}",
            client=str(client),
            http_method=str(http_method),
            path=path,
            status=status,
        )
    return event_dict
