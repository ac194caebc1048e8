"""The three services as in-process apps (lifespan running) on the session's real Kafka, MongoDB
and SMTP sink, each with a database and consumer groups of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from asgi_lifespan import LifespanManager

from hwcollab_employer.app import create_app as create_employer_app
from hwcollab_notifier.app import create_app as create_notifier_app
from hwcollab_notifier.settings import Settings as NotifierSettings
from hwcollab_subscriber.app import create_app as create_subscriber_app
from hwcollab_testing.plugin import SmtpSink

from .support import (
    EMPLOYER_URL,
    NOTIFIER_URL,
    SUBSCRIBER_URL,
    Service,
    common_settings,
    employer_settings,
    subscriber_settings,
)


@pytest.fixture(scope="package")
async def subscriber(kafka_bootstrap: str, mongo_url: str) -> AsyncIterator[Service]:
    app = create_subscriber_app(subscriber_settings(kafka_bootstrap, mongo_url))
    async with LifespanManager(app, startup_timeout=90, shutdown_timeout=30) as manager:
        yield Service(app, manager.app, app.state.runtime.db, SUBSCRIBER_URL)


@pytest.fixture(scope="package")
async def employer(kafka_bootstrap: str, mongo_url: str) -> AsyncIterator[Service]:
    app = create_employer_app(employer_settings(kafka_bootstrap, mongo_url))
    async with LifespanManager(app, startup_timeout=90, shutdown_timeout=30) as manager:
        yield Service(app, manager.app, app.state.runtime.db, EMPLOYER_URL)


@pytest.fixture(scope="package")
async def notifier(
    kafka_bootstrap: str, mongo_url: str, smtp_sink: SmtpSink
) -> AsyncIterator[Service]:
    settings = NotifierSettings(
        **common_settings(kafka_bootstrap, mongo_url, "notifier"),
        smtp_host=smtp_sink.host,
        smtp_port=smtp_sink.port,
        digest_interval_seconds=86400,
    )
    app = create_notifier_app(settings)
    async with LifespanManager(app, startup_timeout=90, shutdown_timeout=30) as manager:
        yield Service(app, manager.app, app.state.runtime.db, NOTIFIER_URL)
