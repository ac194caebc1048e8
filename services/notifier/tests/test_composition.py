"""``create_app(overrides=...)``: a test replaces the use case behind an admin route without
touching ``app.state``; the admin token is still required."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from hwcollab_common.settings import DEV_ADMIN_TOKEN
from hwcollab_notifier.app import create_app
from hwcollab_notifier.dependencies import get_digests
from hwcollab_notifier.digests import DigestRun
from hwcollab_notifier.settings import Settings

AS_OF = datetime(2026, 11, 24, 13, tzinfo=UTC)


class RecordingDigests:
    """Stands in for ``DigestRunner``: answers a fixed run and remembers when it was asked."""

    def __init__(self) -> None:
        self.asked: list[datetime | None] = []

    async def run_due(self, as_of: datetime | None = None) -> DigestRun:
        self.asked.append(as_of)
        return DigestRun(as_of=as_of or AS_OF, subscribers=3, sent=2, skipped=1)


@pytest.fixture
def digests() -> RecordingDigests:
    return RecordingDigests()


@pytest.fixture
async def http(digests: RecordingDigests) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(mongodb_database="unused"), overrides={get_digests: lambda: digests})
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://notifier") as client:
        yield client


async def test_the_admin_route_calls_the_overriding_use_case(
    http: httpx.AsyncClient, digests: RecordingDigests
) -> None:
    answer = await http.post(
        "/api/admin/digests/run",
        params={"as_of": "2026-11-24T13:00:00Z"},
        headers={"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "as_of": "2026-11-24T13:00:00Z",
        "subscribers": 3,
        "sent": 2,
        "skipped": 1,
        "dropped_openings": 0,
    }
    assert digests.asked == [AS_OF]


async def test_an_override_keeps_the_admin_token_required(
    http: httpx.AsyncClient, digests: RecordingDigests
) -> None:
    answer = await http.post("/api/admin/digests/run")
    assert answer.status_code == 401
    assert digests.asked == []
