"""``create_app(overrides=...)``: a test replaces the use case behind the routes, the JSON API and
the pages alike, without touching ``app.state``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from hwcollab_subscriber.app import create_app
from hwcollab_subscriber.dependencies import get_service
from hwcollab_subscriber.domain import SignUp
from hwcollab_subscriber.settings import Settings

from .conftest import PUBLIC_URL, SIGNING_KEY


class RecordingService:
    """Stands in for ``SubscriberService``: remembers the sign-ups it was given."""

    def __init__(self) -> None:
        self.sign_ups: list[SignUp] = []

    async def sign_up(self, command: SignUp) -> None:
        self.sign_ups.append(command)


@pytest.fixture
def recording() -> RecordingService:
    return RecordingService()


@pytest.fixture
async def http(recording: RecordingService) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        Settings(link_signing_key=SIGNING_KEY, mongodb_database="unused"),
        overrides={get_service: lambda: recording},
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
        yield client


async def test_the_api_calls_the_overriding_use_case(
    http: httpx.AsyncClient, recording: RecordingService, helpers: Any
) -> None:
    answer = await http.post("/api/subscribers", json=helpers.sign_up_body())
    assert answer.status_code == 202
    assert [command.email for command in recording.sign_ups] == ["Jordan.Lee@example.org"]


async def test_the_pages_call_the_overriding_use_case(
    http: httpx.AsyncClient, recording: RecordingService
) -> None:
    form = {"email": "riley@example.org", "zip": "01608", "roles": "care_coordination"}
    answer = await http.post("/", data=form)
    assert answer.status_code == 200, answer.text
    assert "Check your inbox" in answer.text
    assert [command.email for command in recording.sign_ups] == ["riley@example.org"]
