"""The whole product for the browser journeys: the three services as processes on real Kafka,
MongoDB and an SMTP sink (once per session), and headless Chromium driven by Playwright."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from hwcollab_testing.plugin import RunningService, ServiceStarter, SmtpSink, private_kafka
from hwcollab_testing.processes import free_port, wait_until_ready

from .mail import Inbox
from .pages import Camera, Visitors
from .stack import Stack, subscribe
from .support import AXE_SCRIPT, CHROMIUM, CHROMIUM_ARGS

READY_TIMEOUT = 120.0
HONOLULU = "96813"
expect.set_options(timeout=30_000)
SERVICES = ("subscriber", "employer", "notifier")


def _warm_up(stack: Stack, inbox: Inbox) -> None:
    """One opening all the way to an inbox (far from every journey, in Honolulu): consumer
    groups have joined and every service is wired before the first journey starts."""
    canary = stack.address("canary.honolulu")
    subscribe(stack, inbox, canary, roles=["direct_support"], zip=HONOLULU, radius_miles=5)
    token = stack.register_employer(
        name="Warm-up Supports",
        contact=stack.address("hr.warmup"),
        zip_code=HONOLULU,
        city="Honolulu",
        state="HI",
    )
    opening = stack.post_opening(
        token, title="Warm-up", role="direct_support_professional", zip=HONOLULU
    )
    inbox.wait(
        canary,
        lambda m: opening["opening_id"] in m.opening_ids,
        what="the warm-up opening",
        timeout=READY_TIMEOUT,
    )


@pytest.fixture(scope="package")
def browser_kafka(tmp_path_factory: pytest.TempPathFactory, artifacts_dir: Path) -> Iterator[str]:
    """The journeys' own broker: their notifier reads topics from the beginning, and on the
    session's broker it would first work through everything earlier tests left there."""
    with private_kafka(
        tmp_path_factory.mktemp("kafka-browser"), artifacts_dir, label="kafka-browser"
    ) as bootstrap:
        yield bootstrap


@pytest.fixture(scope="package")
def stack(
    browser_kafka: str,
    mongo_url: str,
    smtp_sink: SmtpSink,
    session_service_process: ServiceStarter,
) -> Iterator[Stack]:
    """The three services for every journey; stopped after the last one, so that later tests
    on the same Kafka have its consumer groups to themselves."""
    run_id = uuid.uuid4().hex[:8]
    admin_token = secrets.token_urlsafe(24)
    ports = {name: free_port() for name in SERVICES}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    env = {
        "HWCOLLAB_ENV": "test",
        "KAFKA_BOOTSTRAP_SERVERS": browser_kafka,
        "MONGODB_URL": mongo_url,
        "SMTP_HOST": smtp_sink.host,
        "SMTP_PORT": str(smtp_sink.port),
        "SUBSCRIBER_PUBLIC_URL": urls["subscriber"],
        "EMPLOYER_PUBLIC_URL": urls["employer"],
        "LINK_SIGNING_KEY": secrets.token_urlsafe(32),
        "ADMIN_TOKEN": admin_token,
        # The employer's form asks this stack's notifier for reach estimates.
        "NOTIFIER_URL": urls["notifier"],
        "REACH_TOKEN": secrets.token_urlsafe(32),
        "REACH_TIMEOUT_SECONDS": "3",  # a busy two-core machine; the default is 0.3
        "EMPLOYER_APPROVAL": "auto",
        "HWCOLLAB_DEMO": "0",
        "OUTBOX_POLL_SECONDS": "0.1",
        # Every journey comes from 127.0.0.1: the per-client limits are tested elsewhere.
        "SIGNUP_RATE_LIMIT": "1000/minute",
        "SIGNUP_ADDRESS_RATE_LIMIT": "1000/minute",
        "LOGIN_RATE_LIMIT": "1000/minute",
        "WRITE_RATE_LIMIT": "1000/minute",
        "LINK_RATE_LIMIT": "1000/minute",
        "PASSWORD_RESET_RATE_LIMIT": "1000/minute",
        # Digests run only when a journey asks (as_of an 08:00 of its choosing).
        "DIGEST_INTERVAL_SECONDS": "86400",
        # The notifier's consumer groups are this stack's own, whatever ran on this Kafka before.
        "CONSUMER_GROUP_SUFFIX": f"-browser-{run_id}",
    }
    services: list[RunningService] = []
    try:
        for name in SERVICES:
            database = {"MONGODB_DATABASE": f"browser_{name}_{run_id}"}
            services.append(session_service_process(name, env | database, port=ports[name]))
        for name in SERVICES:
            wait_until_ready(urls[name], timeout=READY_TIMEOUT)
        ready = Stack(
            subscriber_url=urls["subscriber"],
            employer_url=urls["employer"],
            notifier_url=urls["notifier"],
            admin_token=admin_token,
            run_id=run_id,
            env=env,
        )
        _warm_up(ready, Inbox(smtp_sink))
        yield ready
    finally:
        for service in reversed(services):
            service.stop()


@pytest.fixture
def lone_employer_service(stack: Stack, session_service_process: ServiceStarter) -> Iterator[str]:
    """Another employer service with a database of its own (an empty directory); its URL.

    Its consumer group is its own too: in the stack's group it would take partitions of
    ``notification.sent`` from the stack's employer (counting reach in the wrong database), and
    a member that does not leave cleanly keeps them, on this broker, for good."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    lone = uuid.uuid4().hex[:8]
    env = stack.env | {
        "MONGODB_DATABASE": f"browser_lone_employer_{lone}",
        "EMPLOYER_PUBLIC_URL": url,
        "CONSUMER_GROUP_SUFFIX": f"{stack.env['CONSUMER_GROUP_SUFFIX']}-lone-{lone}",
    }
    service = session_service_process("employer", env, port=port)
    try:
        wait_until_ready(url, timeout=READY_TIMEOUT)
        yield url
    finally:
        service.stop()


@pytest.fixture(scope="session")
def inbox(smtp_sink: SmtpSink) -> Inbox:
    return Inbox(smtp_sink)


# Package scope: Playwright's sync driver keeps an event loop running in the main thread, so it
# must be gone before any asyncio test outside this package runs.
@pytest.fixture(scope="package")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium` (make install does it)")
    if not AXE_SCRIPT.exists():
        pytest.fail(f"{AXE_SCRIPT} is missing: run `npm install` at the repository root")
    launched = playwright_driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield launched
    launched.close()


@pytest.fixture
def visitors(browser: Browser) -> Iterator[Visitors]:
    opened = Visitors(browser)
    yield opened
    opened.close()
    assert not opened.dialogs, f"a page opened a dialog (script ran): {opened.dialogs}"


@pytest.fixture
def page(visitors: Visitors) -> Page:
    return visitors.new_page()


@pytest.fixture
def camera(request: pytest.FixtureRequest) -> Camera:
    """Screenshots named after the journey: ``test_journey4_…`` → ``journey4-<step>.png``."""
    return Camera(journey=request.node.name.removeprefix("test_").split("_", 1)[0])
