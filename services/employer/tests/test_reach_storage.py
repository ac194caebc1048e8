"""Reach storage: the fake repository and the MongoDB one give the same counts, MongoDB adds a
batch's counts with one write whatever their number, and the per-pair records reach once kept
are dropped at startup."""

from __future__ import annotations

from collections import Counter
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

from .conftest import BodyFactory, Harness

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


async def _openings(
    harness: Harness, signup: BodyFactory, opening_json: BodyFactory
) -> tuple[Opening, Opening]:
    employer = await harness.service.create_employer(EmployerSignup.model_validate(signup()))
    fields = [opening_json(), opening_json(title="Care Manager", role="care_manager")]
    a, b = [
        await harness.service.post_opening(employer.employer_id, OpeningFields.model_validate(body))
        for body in fields
    ]
    return a, b


async def test_mongodb_counts_reach_as_the_fake_does_in_one_write(
    client: AsyncMongoClient[Document],
    harness: Harness,
    signup: BodyFactory,
    opening_json: BodyFactory,
) -> None:
    database = client[f"reach_{uuid4().hex[:12]}"]
    mongo = MongoEmployerRepository(database)
    fake = harness.repository
    a, b = await _openings(harness, signup, opening_json)
    for opening in (a, b):
        await mongo.add_opening(opening, session=None)
    batches = [Counter({a.opening_id: 1}), Counter({a.opening_id: 299, b.opening_id: 100})]

    async def count(counts: Counter[str]) -> None:
        async def work(session: AsyncClientSession) -> None:
            await mongo.count_reach(counts, session=session)

        await in_transaction(client, work)

    try:
        for counts in batches:
            before = _writes()
            await count(counts)
            assert _writes() - before == 1  # one bulk update of the counts, however many
            await fake.count_reach(counts)
        before = _writes()
        await count(Counter())  # nothing to add
        assert _writes() == before
        stored = [await mongo.get_opening(o.opening_id) for o in (a, b)]
        faked = [await fake.get_opening(o.opening_id) for o in (a, b)]
        assert [o.notified if o else None for o in stored] == [300, 100]
        assert [o.notified if o else None for o in faked] == [300, 100]
    finally:
        await client.drop_database(database.name)


async def test_the_old_per_pair_reach_records_are_dropped(
    client: AsyncMongoClient[Document],
) -> None:
    database = client[f"reach_{uuid4().hex[:12]}"]
    await database["reach"].insert_one({"_id": "o1:s1", "opening_id": "o1", "subscriber_id": "s1"})
    try:
        await MongoEmployerRepository(database).ensure_indexes()
        assert "reach" not in await database.list_collection_names()
        await MongoEmployerRepository(database).ensure_indexes()  # again: nothing to do
    finally:
        await client.drop_database(database.name)
