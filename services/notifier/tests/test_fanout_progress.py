"""``GET /api/admin/openings/{id}/fanout``: an opening's matches by delivery status, from the
ledger; the MongoDB reading and an in-memory ledger agree on the same rows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from hwcollab_common.composition import apply_overrides
from hwcollab_common.mongo import create_client
from hwcollab_notifier.dependencies import get_settings
from hwcollab_notifier.domain import ledger_row
from hwcollab_notifier.fanout import (
    STATUSES,
    FanoutProgress,
    MongoFanoutLedger,
    fanout_router,
    get_fanout_ledger,
)
from hwcollab_notifier.settings import Settings

TOKEN = "fanout-test-admin-token"
NOW = datetime(2026, 3, 2, 16, tzinfo=UTC)


class InMemoryLedger:
    """Ledger rows as (opening_id, status), and the openings the read model knows with the
    number of subscribers each matched."""

    def __init__(self, rows: list[tuple[str, str]], openings: dict[str, int]) -> None:
        self.rows = rows
        self.openings = openings

    async def progress(self, opening_id: str) -> FanoutProgress | None:
        statuses = [status for opening, status in self.rows if opening == opening_id]
        if not statuses and opening_id not in self.openings:
            return None
        counts = {s: statuses.count(s) for s in STATUSES}
        counts["pending"] += statuses.count("sending")  # a row an earlier version marked
        # Immediate matches have no row until their email has an outcome.
        counts["pending"] += max(0, self.openings.get(opening_id, 0) - len(statuses))
        return FanoutProgress(opening_id, counts)


ROWS = (
    [("o1", "sent")] * 5
    + [("o1", "pending")] * 3
    + [("o1", "sending"), ("o1", "dropped"), ("o1", "failed"), ("o2", "sent")]
)
MATCHED = {"o1": 14, "o2": 1, "o3": 0}
"""o1: 3 immediate matches on their way, without a row yet."""


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    ledger = InMemoryLedger(ROWS, openings=MATCHED)
    settings = Settings(admin_token=SecretStr(TOKEN))
    app = FastAPI()
    app.include_router(fanout_router)
    apply_overrides(app, {get_fanout_ledger: lambda: ledger, get_settings: lambda: settings})
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://notifier",
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as client:
        yield client


async def test_an_opening_s_matches_by_status(http: httpx.AsyncClient) -> None:
    answer = await http.get("/api/admin/openings/o1/fanout")
    assert answer.status_code == 200
    assert answer.json() == {
        "opening_id": "o1",
        "matches": 14,
        "pending": 7,
        "sent": 5,
        "dropped": 1,
        "failed": 1,
    }


async def test_a_known_opening_without_matches_is_all_zeros(http: httpx.AsyncClient) -> None:
    answer = await http.get("/api/admin/openings/o3/fanout")
    assert answer.status_code == 200
    assert answer.json()["matches"] == 0


async def test_an_unknown_opening_is_404_and_the_token_is_required(
    http: httpx.AsyncClient,
) -> None:
    missing = await http.get("/api/admin/openings/nope/fanout")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "no such opening"}
    refused = await http.get("/api/admin/openings/o1/fanout", headers={"Authorization": "Bearer x"})
    assert refused.status_code == 401


async def test_mongodb_groups_the_ledger_as_the_in_memory_ledger_does(mongo_url: str) -> None:
    client = create_client(mongo_url, app_name="fanout-test")
    database = client[f"fanout_{uuid4().hex[:12]}"]
    opening = f"opening-{uuid4().hex[:8]}"
    rows = [(opening if o == "o1" else f"{opening}-other", s) for o, s in ROWS]
    documents = []
    for n, (opening_id, status) in enumerate(rows):
        row = ledger_row(subscriber_id=f"s{n}", opening_id=opening_id, channel="immediate", now=NOW)
        documents.append(row | {"status": status})
    await database["ledger"].insert_many(documents)
    matched = {opening: 14, f"{opening}-other": 1, f"{opening}-quiet": 0}
    await database["openings"].insert_many(
        [
            {"_id": opening_id, "status": "open", "announced_matches": count}
            for opening_id, count in matched.items()
        ]
    )
    mongo = MongoFanoutLedger(database)
    memory = InMemoryLedger(rows, openings=matched)
    try:
        await mongo.ensure_indexes()
        for opening_id in (opening, f"{opening}-other", f"{opening}-quiet", "unknown"):
            assert await mongo.progress(opening_id) == await memory.progress(opening_id)
        progress = await mongo.progress(opening)
        assert progress is not None
        assert (progress.matches, progress.waiting) == (14, 7)
    finally:
        await client.drop_database(database.name)
        await client.close()


async def test_the_ledger_index_for_progress_is_on_the_opening_alone(mongo_url: str) -> None:
    """A settled row changes its status: an index with the status in its key (which an earlier
    version created) would cost every settlement one more index write; startup replaces it."""
    client = create_client(mongo_url, app_name="fanout-test")
    database = client[f"fanout_{uuid4().hex[:12]}"]
    await database["ledger"].create_index([("opening_id", 1), ("status", 1)])
    try:
        for _ in range(2):  # a restart finds nothing left to do
            await MongoFanoutLedger(database).ensure_indexes()
            indexes = await database["ledger"].index_information()
            assert sorted(indexes) == ["_id_", "opening_id_1"]
    finally:
        await client.drop_database(database.name)
        await client.close()
