"""The three services as in-process apps (lifespan running) on real Kafka, MongoDB and an SMTP
sink, each with a database and consumer groups of its own.

The Kafka broker is this package's own: a notifier reads its topics from the beginning, and on
the session's broker it would match, and email, every subscriber and opening that other tests
left there (and other tests' notifiers would do the same with ours)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from asgi_lifespan import LifespanManager

from hwcollab_employer.app import create_app as create_employer_app
from hwcollab_notifier.app import create_app as create_notifier_app
from hwcollab_notifier.settings import Settings as NotifierSettings
from hwcollab_subscriber.app import create_app as create_subscriber_app
from hwcollab_testing.plugin import SmtpSink, private_kafka
from hwcollab_testing.sns import TOPIC

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
def security_kafka(tmp_path_factory: pytest.TempPathFactory, artifacts_dir: Path) -> Iterator[str]:
    """A Kafka broker with every product topic, for this package only."""
    with private_kafka(
        tmp_path_factory.mktemp("kafka-security"),
        artifacts_dir,
        label="kafka-security",
        partitions=2,
    ) as bootstrap:
        yield bootstrap


@pytest.fixture(scope="package")
async def subscriber(security_kafka: str, mongo_url: str) -> AsyncIterator[Service]:
    app = create_subscriber_app(subscriber_settings(security_kafka, mongo_url))
    async with LifespanManager(app, startup_timeout=90, shutdown_timeout=30) as manager:
        yield Service(app, manager.app, app.state.runtime.db, SUBSCRIBER_URL)


@pytest.fixture(scope="package")
async def employer(security_kafka: str, mongo_url: str) -> AsyncIterator[Service]:
    app = create_employer_app(employer_settings(security_kafka, mongo_url))
    async with LifespanManager(app, startup_timeout=90, shutdown_timeout=30) as manager:
        yield Service(app, manager.app, app.state.runtime.db, EMPLOYER_URL)


@pytest.fixture(scope="package")
async def notifier(
    security_kafka: str, mongo_url: str, smtp_sink: SmtpSink
) -> AsyncIterator[Service]:
    settings = NotifierSettings(
        **common_settings(security_kafka, mongo_url, "notifier"),
        smtp_host=smtp_sink.host,
        smtp_port=smtp_sink.port,
        digest_interval_seconds=86400,
        # The provider webhooks answer, with the development credentials (SNS: Amazon's
        # certificate hosts only, so no message signed here is taken).
        bounce_webhooks="ses,postmark,generic",
        ses_sns_topic_arns=TOPIC,
    )
    app = create_notifier_app(settings)
    async with LifespanManager(app, startup_timeout=90, shutdown_timeout=30) as manager:
        yield Service(app, manager.app, app.state.runtime.db, NOTIFIER_URL)
