"""MongoDB access: one AsyncMongoClient per process and a transaction helper."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

T = TypeVar("T")
Document = dict[str, Any]


def create_client(url: str, *, app_name: str) -> AsyncMongoClient[Document]:
    return AsyncMongoClient(url, appname=app_name, tz_aware=True, serverSelectionTimeoutMS=5000)


async def in_transaction(
    client: AsyncMongoClient[Document], work: Callable[[AsyncClientSession], Awaitable[T]]
) -> T:
    """Run ``work`` in one multi-document transaction, retried on transient errors."""
    async with client.start_session() as session:
        return await session.with_transaction(work)


async def ping(database: AsyncDatabase[Document]) -> None:
    await database.command("ping")
