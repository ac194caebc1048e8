"""Reach storage: the fake repository and the MongoDB one give the same counts for the same
pairs, and MongoDB records a batch of any size with two writes (the new pairs, the counts)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import uuid4

import pytest
from prometheus_client import REGISTRY
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession

from hwcollab_common.mongo import Document, create_client, in_transaction
from hwcollab_employer.commands import EmployerSignup, OpeningFields
from hwcollab_employer.domain import Opening
from hwcollab_employer.repository import MongoEmployerRepository

APP = "hwcollab-employer-reach-test"


def _writes() -> float:
    return sum(
        REGISTRY.get_sample_value(
            "hwcollab_mongodb_commands_total", {"app": APP, "command": command}
        )
        or 0.0
        for command in ("insert", "update", "delete")
    )


@pytest.fixture
async def client(mongo_url: str) -> AsyncIterator[AsyncMongoClient[Document]]:
    client = create_client(mongo_url, app_name=APP)
    yield client
    await client.close()


async def _openings(harness, signup, opening_json) -> tuple[Opening, Opening]:  # type: ignore[no-untyped-def]
    employer = await harness.service.create_employer(EmployerSignup.model_validate(signup()))
    fields = [opening_json(), opening_json(title="Care Manager", role="care_manager")]
    a, b = [
        await harness.service.post_opening(employer.employer_id, OpeningFields.model_validate(body))
        for body in fields
    ]
    return a, b


async def test_mongodb_counts_reach_as_the_fake_does_in_two_bulk_writes(
    client: AsyncMongoClient[Document], harness, signup, opening_json
) -> None:
    database = client[f"reach_{uuid4().hex[:12]}"]
    mongo = MongoEmployerRepository(database)
    fake = harness.repository
    a, b = await _openings(harness, signup, opening_json)
    for opening in (a, b):
        await mongo.add_opening(opening, session=None)
    first = [(a.opening_id, "s1")]
    batch = (
        [(a.opening_id, f"s{n}") for n in range(300)]
        + [(b.opening_id, f"s{n}") for n in range(0, 300, 3)]
        + [(a.opening_id, "s7")]  # a pair twice in one batch
    )

    async def record(pairs: list[tuple[str, str]]) -> int:
        async def work(session: AsyncClientSession) -> int:
            return await mongo.record_reach(pairs, session=session)

        return await in_transaction(client, work)

    try:
        assert await record(first) == await fake.record_reach(first, session=None) == 1
        before = _writes()
        added = await record(batch)
        writes = _writes() - before
        assert added == await fake.record_reach(batch, session=None) == 299 + 100
        assert await record(batch) == await fake.record_reach(batch, session=None) == 0
        stored = [await mongo.get_opening(o.opening_id) for o in (a, b)]
        faked = [await fake.get_opening(o.opening_id) for o in (a, b)]
        assert [o.notified if o else None for o in stored] == [300, 100]
        assert [o.notified if o else None for o in faked] == [300, 100]
        assert writes == 2  # 400 pairs: one insert of the new pairs, one update of the counts
    finally:
        await client.drop_database(database.name)


async def test_the_index_reach_no_longer_needs_is_dropped(
    client: AsyncMongoClient[Document],
) -> None:
    database = client[f"reach_{uuid4().hex[:12]}"]
    await database["reach"].create_index("opening_id")
    try:
        await MongoEmployerRepository(database).ensure_indexes()
        assert list(await database["reach"].index_information()) == ["_id_"]
        await MongoEmployerRepository(database).ensure_indexes()  # again: nothing to do
    finally:
        await client.drop_database(database.name)
