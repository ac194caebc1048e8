"""Wiring: ``create_app(settings)`` builds everything in the lifespan; nothing runs at import."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator
from datetime import timedelta

from fastapi import FastAPI
from tenacity import RetryCallState

from hwcollab_common.clock import Clock
from hwcollab_common.composition import DependencyOverrides, apply_overrides
from hwcollab_common.monitoring import OperationalGauges
from hwcollab_common.ops import configure_observability, install_http_basics, ops_router
from hwcollab_common.periodic import Lease, PeriodicTask
from hwcollab_common.retrying import FixedBackoff, retry, retry_policy
from hwcollab_common.runtime import ServiceRuntime
from hwcollab_common.tracing import shutdown_tracing
from hwcollab_common.web.security import SecurityHeaders
from hwcollab_notifier.api import admin_router
from hwcollab_notifier.bounce_intake import BounceIntake
from hwcollab_notifier.bounce_listener import BounceListener
from hwcollab_notifier.bounce_records import BounceRecords
from hwcollab_notifier.bounce_webhooks import OtherRoutesBodyLimit, webhooks_router
from hwcollab_notifier.bounces_api import bounces_router
from hwcollab_notifier.consumers import (
    index_group_id,
    register_deliveries,
    register_index_feed,
    register_read_model,
)
from hwcollab_notifier.delivery_rates import DeliveryRates
from hwcollab_notifier.fanout import MongoFanoutLedger, fanout_router
from hwcollab_notifier.index_sync import ReplicaIndex
from hwcollab_notifier.jobs import KafkaJobQueue
from hwcollab_notifier.mail import SmtpSender
from hwcollab_notifier.mail.sns import SnsVerifier
from hwcollab_notifier.operations import sample_delivery_lag
from hwcollab_notifier.reach import reach_router
from hwcollab_notifier.repository import NotifierRepository
from hwcollab_notifier.settings import Settings
from hwcollab_notifier.wiring import bounce_addresses_for, composer_for, wire_use_cases

log = logging.getLogger(__name__)
USUAL_MAX_BODY_BYTES = 64 * 1024


# The match index loads at start (and after any failure, this long later) before it answers.
INDEX_LOAD_RETRY_SECONDS = 2.0


def _index_load_failed(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome is not None else None
    log.error(
        "loading the match index failed; retrying in %.0f s",
        INDEX_LOAD_RETRY_SECONDS,
        exc_info=error,
    )


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    overrides: DependencyOverrides | None = None,
) -> FastAPI:
    """The notifier; ``overrides`` replaces dependencies of ``hwcollab_notifier.dependencies``
    (and the routers' own: ``fanout.get_fanout_ledger``, ``bounce_webhooks.get_intake`` and
    ``get_sns_verifier``), e.g. a test's use case behind an admin route."""
    settings = settings or Settings()
    configure_observability(settings, service="notifier")
    runtime = ServiceRuntime(settings, name="notifier", clock=clock)
    gauges = OperationalGauges(runtime, interval=settings.metrics_sample_seconds)
    repository = NotifierRepository(runtime.db, on_commit=runtime.relay.wake)
    fanout = MongoFanoutLedger(runtime.db)
    index = ReplicaIndex()
    jobs = KafkaJobQueue(runtime.broker)
    sender = SmtpSender(
        host=settings.smtp_host,
        port=settings.smtp_port,
        mail_from_address=settings.mail_from_address,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        starttls=settings.smtp_starttls,
        pool_size=settings.smtp_pool_size,
        max_attempts=settings.smtp_max_attempts,
        backoff_base=settings.smtp_backoff_base_seconds,
        timeout=settings.smtp_timeout_seconds,
    )
    uses = wire_use_cases(
        runtime=runtime,
        settings=settings,
        repository=repository,
        index=index,
        jobs=jobs,
        mailer=sender,
        composer=composer_for(settings, runtime),
    )
    read_model, deliveries = uses.read_model, uses.deliveries
    digests, operations = uses.digests, uses.operations
    owner = f"{socket.gethostname()}:{os.getpid()}"
    bounce_records = BounceRecords(runtime.db)
    intake = BounceIntake(
        clock=runtime.clock,
        repository=repository,
        records=bounce_records,
        addresses=bounce_addresses_for(settings),
        soft_limit=settings.soft_bounce_limit,
        soft_window=timedelta(days=settings.soft_bounce_days),
        on_commit=runtime.relay.wake,
    )
    bounce_listener = _bounce_listener(settings, intake)
    sns = (
        SnsVerifier(
            topic_arns=settings.ses_sns_topic_arns,
            cert_url_pattern=settings.ses_sns_cert_url_pattern,
        )
        if "ses" in settings.bounce_webhooks
        else None
    )
    rates = DeliveryRates(runtime.db, clock=runtime.clock)

    # The broadcast index feed is registered (and so started) before the index loads.
    register_index_feed(runtime.broker, index, group_id=index_group_id())
    register_read_model(runtime.broker, read_model, group_id=settings.read_model_group)
    register_deliveries(
        runtime.broker,
        deliveries,
        concurrency=settings.delivery_concurrency,
        batch_jobs=settings.delivery_batch_jobs,
        group_id=settings.delivery_group,
    )

    async def load_index() -> None:
        policy = retry_policy(
            attempts=None,
            on=Exception,
            wait=FixedBackoff(INDEX_LOAD_RETRY_SECONDS),
            before_sleep=_index_load_failed,
        )

        async def load_once() -> None:  # a fresh read of the subscribers on every attempt
            await index.load(repository.all_subscribers(), now=runtime.clock.now())

        await retry(policy, load_once)

    async def refresh_index() -> None:
        if index.loaded:
            await index.refresh(
                repository.versions_changed_since(index.since()),
                repository.subscriber_rows,
                now=runtime.clock.now(),
            )

    def lease(name: str, interval: float) -> Lease:
        """One replica at a time runs ``name``; a lease outlives three intervals."""

        async def take() -> bool:
            ttl = timedelta(seconds=interval * 3)
            return await repository.take_lock(name, owner=owner, now=runtime.clock.now(), ttl=ttl)

        return take

    async def lag() -> None:
        await sample_delivery_lag(
            settings.kafka_bootstrap_servers, group_id=settings.delivery_group
        )

    periodic = [
        PeriodicTask(
            "index-refresh",
            refresh_index,
            interval=settings.index_refresh_seconds,
            delay_first=True,
        ),
        PeriodicTask(
            "digests",
            digests.run_due,
            interval=settings.digest_interval_seconds,
            delay_first=True,
            lease=lease("digests", settings.digest_interval_seconds),
        ),
        PeriodicTask(
            "sweep",
            operations.sweep,
            interval=settings.sweep_interval_seconds,
            delay_first=True,
            lease=lease("sweep", settings.sweep_interval_seconds),
        ),
        PeriodicTask("lag", lag, interval=settings.lag_sample_seconds, delay_first=True),
        PeriodicTask(
            "rates", rates.refresh, interval=settings.delivery_rates_seconds, delay_first=True
        ),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await repository.ensure_indexes()
        await fanout.ensure_indexes()
        await bounce_records.ensure_indexes()
        await rates.ensure_indexes()
        await runtime.start()
        if bounce_listener is not None:
            await bounce_listener.start()
        loading = asyncio.create_task(load_index(), name="index-load")
        for task in periodic:
            task.start()
        gauges.start()
        try:
            yield
        finally:
            loading.cancel()
            await asyncio.gather(
                loading,
                *(task.stop(finish_run=False) for task in periodic),
                return_exceptions=True,
            )
            try:  # what this process sent since the last tally
                await rates.tally()
            except Exception as error:
                log.warning("the last tally of sent emails was not recorded: %r", error)
            if bounce_listener is not None:
                await bounce_listener.stop()
            if sns is not None:
                await sns.close()
            await gauges.stop()
            await runtime.stop()
            await sender.close()
            shutdown_tracing()

    app = FastAPI(
        title="HWcollab matcher-notifier",
        version="1.0.0",
        summary="Matches openings to subscribers and sends their emails; admin endpoints.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.runtime = runtime
    app.state.index = index
    app.state.repository = repository
    app.state.digests = digests
    app.state.operations = operations
    app.state.bounce_records = bounce_records
    app.state.fanout = fanout
    app.state.bounce_intake = intake
    app.state.sns_verifier = sns
    # Webhooks take bodies up to BOUNCE_WEBHOOK_MAX_BYTES; every other route the usual 64 KiB.
    app.add_middleware(OtherRoutesBodyLimit, max_bytes=USUAL_MAX_BODY_BYTES)
    install_http_basics(app, max_body_bytes=settings.bounce_webhook_max_bytes)
    app.add_middleware(SecurityHeaders)
    app.include_router(ops_router(runtime.readiness_checks() | {"match_index": index.check_ready}))
    app.include_router(admin_router)
    app.include_router(fanout_router)
    app.include_router(bounces_router)
    app.include_router(reach_router)
    app.include_router(webhooks_router)
    return apply_overrides(app, overrides)


def _bounce_listener(settings: Settings, intake: BounceIntake) -> BounceListener | None:
    """The SMTP listener of the bounce domain, when BOUNCE_DOMAIN and BOUNCE_LISTEN_PORT are
    set."""
    addresses = bounce_addresses_for(settings)
    if addresses is None or settings.bounce_listen_port == 0:
        if settings.bounce_listen_port:
            log.warning("BOUNCE_LISTEN_PORT is set without BOUNCE_DOMAIN: no bounce listener")
        return None
    return BounceListener(
        intake=intake,
        host=settings.bounce_listen_host,
        port=settings.bounce_listen_port,
        max_bytes=settings.bounce_max_bytes,
        hostname=addresses.domain,
    )
