"""An update of many documents beside a transaction that holds one of them. The embedded MongoDB
runs a plain ``update_many`` holding the collection while it waits for that transaction, so when
the transaction then writes the same collection neither moves again (mongod yields instead).
``transactional_update_many`` meets the conflict inside a transaction, where it surfaces at
once and is run again after the other transaction: both finish.

There is no test of the plain ``update_many`` here: on this server it wedges every transaction
for good (even the abort waits), and the test database is shared by the whole session."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.collection import AsyncCollection

from hwcollab_common.mongo import Document, transactional_update_many
from hwcollab_testing.waiting import eventually

pytestmark = pytest.mark.integration

MARK_SENT: Document = {"$set": {"status": "sent"}}
ALL: Document = {"_id": {"$in": [0, 1, 2]}}


class UpdatesSent(monitoring.CommandListener):
    """Set once the client has sent an ``update`` command."""

    def __init__(self) -> None:
        self.sent = threading.Event()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "update":
            self.sent.set()

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
async def outbox(mongo_url: str) -> AsyncIterator[tuple[AsyncCollection[Document], UpdatesSent]]:
    listener = UpdatesSent()
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongo_url, event_listeners=[listener])
    database = client[f"conflicts_{uuid.uuid4().hex[:8]}"]
    await database["outbox"].insert_many([{"_id": i, "status": "pending"} for i in range(3)])
    try:
        yield database["outbox"], listener
    finally:
        await client.drop_database(database.name)
        await client.close()


async def beside_a_transaction(
    outbox: AsyncCollection[Document],
    listener: UpdatesSent,
    update: Callable[[], Awaitable[Any]],
    *,
    timeout: float,
) -> bool:
    """A transaction deletes document 1, ``update`` starts, then the transaction stages an event in
    the same collection and commits: whether both finished within ``timeout`` seconds."""
    client = outbox.database.client
    async with client.start_session() as session:
        await session.start_transaction()
        await outbox.delete_one({"_id": 1}, session=session)
        updating = asyncio.ensure_future(update())
        await eventually(  # the update is on its way to the server
            listener.sent.is_set, timeout=10, interval=0.01, what="the update sent"
        )
        await asyncio.sleep(0.2)  # and, on the server, waiting for the transaction's document
        try:
            await asyncio.wait_for(
                outbox.insert_one({"_id": 3, "status": "pending"}, session=session),
                timeout=timeout,
            )
            await asyncio.wait_for(session.commit_transaction(), timeout=timeout)
            await asyncio.wait_for(updating, timeout=timeout)
        except TimeoutError:
            updating.cancel()
            return False
    return True


async def test_an_update_in_its_own_transaction_lets_both_finish(
    outbox: tuple[AsyncCollection[Document], UpdatesSent],
) -> None:
    collection, listener = outbox
    finished = await beside_a_transaction(
        collection,
        listener,
        lambda: transactional_update_many(collection, ALL, MARK_SENT),
        timeout=10,
    )
    assert finished
    documents = {d["_id"]: d["status"] async for d in collection.find({})}
    assert documents == {0: "sent", 2: "sent", 3: "pending"}
