"""The employer service application: wiring only; nothing runs at import time.

Served with ``uvicorn --factory hwcollab_employer.app:create_app``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from hwcollab_common.clock import Clock
from hwcollab_common.composition import DependencyOverrides, apply_overrides
from hwcollab_common.monitoring import OperationalGauges
from hwcollab_common.ops import (
    ReadinessCheck,
    configure_observability,
    install_http_basics,
    ops_router,
)
from hwcollab_common.ratelimit import RateLimiter
from hwcollab_common.runtime import ServiceRuntime
from hwcollab_common.tracing import shutdown_tracing
from hwcollab_common.web import mount_static
from hwcollab_common.web.security import SecurityHeaders
from hwcollab_employer import (
    account_pages,
    api,
    dashboard,
    errors,
    feeds,
    operator_pages,
    pages,
    reach_form,
    web,
)
from hwcollab_employer.consumers import register_consumers
from hwcollab_employer.context import EmployerContext
from hwcollab_employer.expiry import ExpiryTask
from hwcollab_employer.handlers import EmployerService
from hwcollab_employer.reach import NotifierReach
from hwcollab_employer.repository import MongoEmployerRepository
from hwcollab_employer.security import Passwords, TokenAuthority
from hwcollab_employer.settings import Settings
from hwcollab_employer.unit_of_work import MongoUnitOfWork

NAME = "employer"


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    overrides: DependencyOverrides | None = None,
) -> FastAPI:
    """The service over MongoDB and Kafka; ``overrides`` replaces dependencies of its routes
    (a test's use cases through :func:`~hwcollab_employer.context.get_service`, its reach
    estimates through :func:`~hwcollab_employer.reach.reach_source`)."""
    settings = settings or Settings()
    configure_observability(settings, service=NAME)
    runtime = ServiceRuntime(settings, name=NAME, clock=clock)
    gauges = OperationalGauges(runtime, interval=settings.metrics_sample_seconds)
    repository = MongoEmployerRepository(runtime.db)
    passwords = Passwords()
    service = EmployerService(
        repository=repository,
        unit_of_work=MongoUnitOfWork(runtime, repository),
        clock=runtime.clock,
        passwords=passwords,
        auto_approve=settings.employer_approval == "auto",
        public_url=settings.employer_public_url,
        signer=runtime.signer,
    )
    context = employer_context(settings, service=service, clock=runtime.clock)
    reach = NotifierReach(
        base_url=settings.notifier_url,
        token=settings.reach_token.get_secret_value(),
        timeout_seconds=settings.reach_timeout_seconds,
    )
    expiry = ExpiryTask(service, interval_seconds=settings.opening_expiry_interval_seconds)
    register_consumers(runtime.broker, service, group_suffix=settings.consumer_group_suffix)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        passwords.prepare()  # before the first sign-in, so that it costs what every other does
        await repository.ensure_indexes()
        await runtime.start()
        expiry.start()
        gauges.start()
        try:
            yield
        finally:
            await gauges.stop()
            await expiry.stop()
            await runtime.stop()
            await reach.aclose()
            shutdown_tracing()

    app = build_app(context, lifespan=lifespan, readiness=runtime.readiness_checks())
    app.state.runtime = runtime
    app.state.reach = reach
    return apply_overrides(app, overrides)


def employer_context(
    settings: Settings, *, service: EmployerService, clock: Clock
) -> EmployerContext:
    tokens = TokenAuthority(
        settings.employer_session_key.get_secret_value(),
        clock=clock,
        access_ttl=timedelta(seconds=settings.access_token_ttl_seconds),
        session_ttl=timedelta(seconds=settings.session_ttl_seconds),
    )
    return EmployerContext(
        settings=settings, service=service, tokens=tokens, limiter=RateLimiter(), clock=clock
    )


def build_app(
    context: EmployerContext,
    *,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
    readiness: Mapping[str, ReadinessCheck] | None = None,
) -> FastAPI:
    """The HTTP application over the context (routers, error pages, limits, static files)."""
    app = FastAPI(
        title="HWcollab employer service",
        summary="Employer accounts, Find a Local Employer, openings and their reach.",
        version="1.0.0",
        lifespan=lifespan,
        # Every page reads the session cookie; this ends those of an older session version.
        dependencies=[Depends(web.check_session)],
    )
    app.state.employer = context
    install_http_basics(app)
    app.add_middleware(SecurityHeaders, referrer_policy="strict-origin-when-cross-origin")
    errors.install_error_handlers(app)
    app.include_router(ops_router(readiness or {}))
    app.include_router(api.router)
    app.include_router(feeds.router)
    app.include_router(pages.router)
    app.include_router(account_pages.router)
    app.include_router(dashboard.router)
    app.include_router(reach_form.router)
    app.include_router(operator_pages.router)
    mount_static(app)
    app.mount(web.STATIC_PATH, StaticFiles(directory=web.STATIC_DIR), name="employer_static")
    return app
