"""Operational endpoints and HTTP behaviour every service shares: ``/healthz``, ``/readyz``,
``/metrics``, request-size limits and error bodies."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Mapping

import structlog
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, Histogram, generate_latest
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from hwcollab_common.web.security import BodySizeLimit

ReadinessCheck = Callable[[], Awaitable[None]]

REQUEST_SECONDS = Histogram(
    "hwcollab_http_request_seconds",
    "HTTP request latency",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


def ops_router(checks: Mapping[str, ReadinessCheck], *, timeout: float = 2.0) -> APIRouter:
    """``/healthz`` (alive), ``/readyz`` (every check passes) and ``/metrics`` (Prometheus)."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Kafka, MongoDB and the service's own state are ready")
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
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        REQUEST_SECONDS.labels(request.method, path, str(response.status_code)).observe(
            loop.time() - started
        )
        return response


def install_http_basics(app: FastAPI, *, max_body_bytes: int = 64 * 1024) -> None:
    """Size limit and request metrics for every service's app."""
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    app.add_middleware(RequestMetrics)


def configure_logging(*, level: str, json_logs: bool) -> None:
    """Structured logs to stdout (JSON in production, readable in development)."""
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json_logs else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(
        level=level.upper(), stream=sys.stdout, format="%(levelname)s %(name)s: %(message)s"
    )
