"""The three services as in-process apps (lifespan running) on the session's real Kafka, MongoDB
and SMTP sink, each with a database and consumer groups of its own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgi_lifespan import LifespanManager

from hwcollab_employer.app import create_app as create_employer_app
from hwcollab_employer.settings import Settings as EmployerSettings
from hwcollab_notifier.app import create_app as create_notifier_app
from hwcollab_notifier.settings import Settings as NotifierSettings
from hwcollab_subscriber.app import create_app as create_subscriber_app
from hwcollab_subscriber.settings import Settings as SubscriberSettings
from hwcollab_testing.plugin import SmtpSink

from .support import ADMIN_TOKEN, LINK_SIGNING_KEY, Service

SUBSCRIBER_URL = "http://subscriber.security.test"
EMPLOYER_URL = "http://employer.security.test"
NOTIFIER_URL = "http://notifier.security.test"
GENEROUS = "10000/minute"


def common_settings(kafka_bootstrap: str, mongo_url: str, name: str) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    return {
        "hwcollab_env": "test",
        "kafka_bootstrap_servers": kafka_bootstrap,
        "mongodb_url": mongo_url,
        "mongodb_database": f"security_{name}_{run}",
        "consumer_group_suffix": f"-security-{run}",
        "subscriber_public_url": SUBSCRIBER_URL,
        "employer_public_url": EMPLOYER_URL,
        "link_signing_key": LINK_SIGNING_KEY,
        "admin_token": ADMIN_TOKEN,
        "outbox_poll_seconds": 0.2,
    }


def subscriber_settings(kafka_bootstrap: str, mongo_url: str, **changes: Any) -> SubscriberSettings:
    values = common_settings(kafka_bootstrap, mongo_url, "subscriber") | {
        "signup_rate_limit": GENEROUS,
        "signup_address_rate_limit": GENEROUS,
        "link_rate_limit": GENEROUS,
        "link_address_rate_limit": GENEROUS,
    }
    return SubscriberSettings(**(values | changes))


def employer_settings(kafka_bootstrap: str, mongo_url: str, **changes: Any) -> EmployerSettings:
    values = common_settings(kafka_bootstrap, mongo_url, "employer") | {
        "employer_approval": "auto",
        "employer_session_key": "security-session-key-0123456789abcdef",
        "login_rate_limit": GENEROUS,
        "signup_rate_limit": GENEROUS,
        "write_rate_limit": GENEROUS,
    }
    return EmployerSettings(**(values | changes))


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
