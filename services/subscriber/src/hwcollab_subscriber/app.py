"""The subscriber service: ``uvicorn --factory hwcollab_subscriber.app:create_app``."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from hwcollab_common import web
from hwcollab_common.clock import Clock
from hwcollab_common.composition import DependencyOverrides, apply_overrides
from hwcollab_common.geo import lookup_zip
from hwcollab_common.monitoring import OperationalGauges
from hwcollab_common.ops import configure_observability, install_http_basics, ops_router
from hwcollab_common.periodic import PeriodicTask
from hwcollab_common.ratelimit import RateLimiter
from hwcollab_common.runtime import ServiceRuntime
from hwcollab_common.tokens import TokenError, TokenExpiredError
from hwcollab_common.tracing import shutdown_tracing
from hwcollab_common.web.security import SecurityHeaders
from hwcollab_subscriber import api, pages, rendering
from hwcollab_subscriber.consumers import register_consumers
from hwcollab_subscriber.handlers import (
    Links,
    NotSubscribedError,
    SubscriberService,
    SubscriptionGoneError,
    SunsetPolicy,
)
from hwcollab_subscriber.repository import MongoSubscriberStore
from hwcollab_subscriber.settings import Settings

DESCRIPTION = """
Sign-up with double opt-in, preferences, pause and resume, one-click unsubscribe and erasure for
HWcollab job alerts. Links in emails carry signed, purpose-bound tokens (`confirm` 7 days,
`manage` 90 days, `keep` 90 days, `unsubscribe` never expires): a tampered or wrong-purpose token
answers 400, an expired one 401. Links to openings in alerts go through `GET /r?token=` (signed,
one year), which records the reader's last engagement and redirects. Events go to
`hwcollab.subscriber.v1` through a transactional outbox.
"""
log = logging.getLogger(__name__)
FIRST_SUNSET_SECONDS = 60.0


def sunset_policy(settings: Settings) -> SunsetPolicy:
    after = settings.sunset_after_days
    return SunsetPolicy(
        after=timedelta(days=after) if after else None,
        grace=timedelta(days=settings.sunset_grace_days),
        batch=settings.sunset_batch,
    )


def sunset_task(
    service: SubscriberService, store: MongoSubscriberStore, settings: Settings, clock: Clock
) -> PeriodicTask:
    """Every ``SUNSET_INTERVAL_SECONDS`` the replica holding the ``sunset`` lease runs the
    sunset (the others find the lease taken and wait for the next round); the first round a
    minute after starting, so that frequent deploys do not starve it."""
    owner = f"{socket.gethostname()}:{os.getpid()}"
    interval = settings.sunset_interval_seconds

    async def lease() -> bool:
        ttl = timedelta(seconds=interval * 3)
        return await store.take_lease("sunset", owner=owner, now=clock.now(), ttl=ttl)

    return PeriodicTask(
        "sunset",
        service.run_sunset,
        interval=interval,
        first_after=min(interval, FIRST_SUNSET_SECONDS),
        lease=lease,
    )


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api")


def install_error_handlers(app: FastAPI) -> None:
    """Domain errors become 4xx: JSON under ``/api``, a readable page elsewhere."""

    def answer(request: Request, status_code: int, heading: str, reason: str) -> Response:
        if not _wants_html(request):
            return JSONResponse({"detail": reason}, status_code=status_code)
        links = [("/preferences/link", "Email me a new link"), ("/", "Sign up")]
        return rendering.render_message(
            request, heading=heading, paragraphs=[reason], status_code=status_code, links=links
        )

    async def on_token_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, TokenError)
        expired = isinstance(error, TokenExpiredError)
        heading = "This link has expired" if expired else "This link is not valid"
        return answer(request, 401 if expired else 400, heading, error.reason)

    async def on_gone(request: Request, error: Exception) -> Response:
        return answer(request, 404, "Subscription not found", SubscriptionGoneError.reason)

    async def on_not_subscribed(request: Request, error: Exception) -> Response:
        assert isinstance(error, NotSubscribedError)
        return answer(request, 409, "Not possible right now", error.reason)

    async def on_http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        if _wants_html(request) and error.status_code == 429:
            return rendering.render_message(
                request,
                heading="Too many requests",
                paragraphs=[str(error.detail)],
                status_code=429,
                headers=error.headers,
            )
        return await http_exception_handler(request, error)

    app.add_exception_handler(TokenError, on_token_error)
    app.add_exception_handler(SubscriptionGoneError, on_gone)
    app.add_exception_handler(NotSubscribedError, on_not_subscribed)
    app.add_exception_handler(StarletteHTTPException, on_http_error)


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    overrides: DependencyOverrides | None = None,
) -> FastAPI:
    """The subscriber service; ``overrides`` replaces dependencies of
    ``hwcollab_subscriber.dependencies`` (a test's service on a fake store)."""
    settings = settings or Settings()
    configure_observability(settings, service="subscriber")
    runtime = ServiceRuntime(settings, name="subscriber", clock=clock)
    gauges = OperationalGauges(runtime, interval=settings.metrics_sample_seconds)
    store = MongoSubscriberStore(runtime)
    links = Links(
        runtime.signer,
        public_url=settings.subscriber_public_url,
        employer_public_url=settings.employer_public_url,
    )
    service = SubscriberService(
        store=store,
        links=links,
        clock=runtime.clock,
        resend_window=timedelta(seconds=settings.confirmation_resend_seconds),
        sunset=sunset_policy(settings),
    )
    sunset = sunset_task(service, store, settings, runtime.clock)
    register_consumers(runtime.broker, service, group_suffix=settings.consumer_group_suffix)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The ZIP table takes a moment to index; do it off the event loop before serving.
        await asyncio.to_thread(lookup_zip, "01608")
        await store.ensure_indexes()
        await runtime.start()
        gauges.start()
        if settings.sunset_after_days:
            sunset.start()
        try:
            yield
        finally:
            await sunset.stop()
            await gauges.stop()
            await runtime.stop()
            shutdown_tracing()

    app = FastAPI(
        title="HWcollab Opportunities — subscriber service",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.runtime = runtime
    app.state.service = service
    app.state.links = links
    app.state.limiter = RateLimiter()
    app.state.templates = rendering.create_templates()
    install_http_basics(app, max_body_bytes=settings.max_body_bytes)
    # No framing (the unsubscribe and erase buttons cannot be clickjacked); link tokens in page
    # URLs never leave in a Referer.
    app.add_middleware(SecurityHeaders, referrer_policy="no-referrer")
    install_error_handlers(app)
    web.mount_static(app)
    app.include_router(ops_router(runtime.readiness_checks()))
    app.include_router(api.router)
    app.include_router(api.admin_router)
    app.include_router(pages.router)
    return apply_overrides(app, overrides)
