"""MongoDB access: one AsyncMongoClient per process and a transaction helper.

Outages: the client fails an operation within a few seconds when MongoDB cannot be reached
(:data:`CLIENT_DEFAULTS`; each can be overridden in the connection URL, e.g.
``…/?serverSelectionTimeoutMS=10000``) and reconnects by itself when it returns. HTTP requests
that hit such an error answer 503 (:mod:`hwcollab_common.unavailable`); consumers retry them
(:mod:`hwcollab_common.consuming`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

from prometheus_client import Counter
from pymongo import AsyncMongoClient, DeleteMany, UpdateMany, monitoring
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure, PyMongoError
from pymongo.results import UpdateResult

T = TypeVar("T")
Document = dict[str, Any]

log = logging.getLogger(__name__)

CLIENT_DEFAULTS: Mapping[str, int] = {
    # How long an operation waits for a reachable server before failing: an outage answers
    # within this instead of hanging the request.
    "serverSelectionTimeoutMS": 3000,
    "connectTimeoutMS": 2000,
    # A server that accepted the connection but stopped answering; long enough for any
    # legitimate single command (reads come in cursor batches).
    "socketTimeoutMS": 60_000,
}
IN_CHUNK = 100
"""The most values one ``$in`` filter carries. SecantusDB's time for an ``$in`` grows with the
square of its list: 100 ids cost about 140 µs each, 500 about 450 µs, 1,000 over 1 ms
(``python -m bench --only mongo``). Chunks of this size keep each id near its own cost while the
round trips stay under one per hundred documents."""
IN_STATEMENT = 20
"""The values one statement of :func:`update_in` and :func:`delete_in` carries. Their whole list
goes to the server in ONE command, as statements of this many values each: the round trips do not
grow with the list, and each statement's ``$in`` stays short, which SecantusDB matches cheaply (an
update costs the same per document as with chunks of :data:`IN_CHUNK`; a statement per value
would cost twice as much)."""
TRANSACTION_RETRY_SECONDS = 30.0
"""How long a transaction that lost a write conflict is run again (pymongo's own helper keeps
going for 120 s, and also through outages, which would hold an HTTP request for two minutes)."""


EXPIRY_INDEX_FAILURES = Counter(
    "hwcollab_mongo_expiry_index_failures_total",
    "TTL indexes the database would not create: the collection keeps what they would remove",
    ["collection", "field"],
)


async def ensure_expiry_index(
    collection: AsyncCollection[Document], field: str, *, after: timedelta
) -> bool:
    """A TTL index that removes a document ``after`` its ``field``'s time. A store without TTL
    support refuses it; the service still starts (the documents stay until removed by hand),
    and the refusal is logged and counted. False when it was refused."""
    try:
        await collection.create_index(field, expireAfterSeconds=int(after.total_seconds()))
    except Exception as error:  # whatever the store answers, starting matters more
        EXPIRY_INDEX_FAILURES.labels(collection.name, field).inc()
        log.warning(
            "no TTL index on %s.%s, its documents stay until removed by hand: %r",
            collection.name,
            field,
            error,
        )
        return False
    return True


def _options_in_url(url: str) -> set[str]:
    return {name.lower() for name, _ in parse_qsl(urlsplit(url).query)}


COMMANDS = Counter(
    "hwcollab_mongodb_commands_total",
    "Commands sent to MongoDB by this process's client",
    ["app", "command"],
)


class CommandCounter(monitoring.CommandListener):
    """Counts every command a client sends, by command name (``find``, ``insert``,
    ``commitTransaction``…), in :data:`COMMANDS`: the round trips a code path costs, a figure
    that does not depend on how fast the machine is.

    Called on the client's hot path for every command, so it only increments a counter (the
    labelled child is looked up once per command name).
    """

    def __init__(self, app_name: str) -> None:
        self.app_name = app_name
        self._children: dict[str, Any] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        child = self._children.get(event.command_name)
        if child is None:
            child = self._children[event.command_name] = COMMANDS.labels(
                self.app_name, event.command_name
            )
        child.inc()

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def create_client(url: str, *, app_name: str) -> AsyncMongoClient[Document]:
    """A client with :data:`CLIENT_DEFAULTS`, except those the URL sets itself, whose commands
    are counted in :data:`COMMANDS` under ``app_name``."""
    given = _options_in_url(url)
    options: dict[str, Any] = {
        name: value for name, value in CLIENT_DEFAULTS.items() if name.lower() not in given
    }
    return AsyncMongoClient(
        url,
        appname=app_name,
        tz_aware=True,
        event_listeners=[CommandCounter(app_name)],
        **options,
    )


def _outage(error: BaseException) -> bool:
    """The server is unreachable or did not answer in time."""
    return isinstance(error, ConnectionFailure) or (
        isinstance(error, PyMongoError) and error.timeout
    )


def _conflict(error: BaseException) -> bool:
    """A write conflict or similar: worth running the whole transaction again at once."""
    return (
        isinstance(error, PyMongoError)
        and error.has_error_label("TransientTransactionError")
        and not _outage(error)
    )


async def in_transaction(
    client: AsyncMongoClient[Document],
    work: Callable[[AsyncClientSession], Awaitable[T]],
    *,
    retry_seconds: float = TRANSACTION_RETRY_SECONDS,
) -> T:
    """Run ``work`` in one multi-document transaction.

    A transaction that lost a write conflict is run again (``work`` must be safe to repeat) for
    up to ``retry_seconds``; a commit whose result is unknown is retried the same way. When
    MongoDB is unreachable the error is raised at once: nothing was committed, or — for a commit
    cut off on its way back — the change is complete; never half of it.
    """
    deadline = time.monotonic() + retry_seconds
    async with client.start_session() as session:
        while True:
            await session.start_transaction()
            try:
                result = await work(session)
            except BaseException as error:
                if session.in_transaction:
                    await session.abort_transaction()
                if _conflict(error) and time.monotonic() < deadline:
                    continue
                raise
            while True:
                try:
                    await session.commit_transaction()
                except PyMongoError as error:
                    if _outage(error) or time.monotonic() >= deadline:
                        raise
                    if error.has_error_label("UnknownTransactionCommitResult"):
                        continue  # commit again: committing twice is harmless
                    if _conflict(error):
                        break  # run the whole transaction again
                    raise
                return result


async def transactional_update_many(
    collection: AsyncCollection[Document],
    query: Mapping[str, Any],
    update: Mapping[str, Any],
    *,
    session: AsyncClientSession | None = None,
) -> UpdateResult:
    """``update_many`` always inside a transaction: ``session``'s, or one of its own.

    The embedded MongoDB (SecantusDB) runs a plain multi-document update holding the collection
    while it waits for a transaction that has written one of its documents; when that transaction
    then needs the same collection to finish (e.g. to stage its events in the outbox), neither
    moves again. mongod yields instead. In a transaction the conflict surfaces at once and the
    update runs again once the other one is through; it costs one commit.
    """
    if session is not None:
        return await collection.update_many(query, update, session=session)

    async def work(own: AsyncClientSession) -> UpdateResult:
        return await collection.update_many(query, update, session=own)

    return await in_transaction(collection.database.client, work)


def in_chunks(values: Iterable[T], size: int = IN_CHUNK) -> Iterator[list[T]]:
    """``values`` without repeats, in lists of at most ``size`` (see :data:`IN_CHUNK`)."""
    unique = list(dict.fromkeys(values))
    for start in range(0, len(unique), size):
        yield unique[start : start + size]


async def find_in(
    collection: AsyncCollection[Document],
    field: str,
    values: Iterable[Any],
    *,
    extra: Mapping[str, Any] | None = None,
    projection: Mapping[str, Any] | None = None,
    sort: Sequence[tuple[str, int]] | None = None,
    session: AsyncClientSession | None = None,
) -> list[Document]:
    """The documents whose ``field`` is one of ``values`` (and that match ``extra``), one query
    per :data:`IN_CHUNK` values, each answered in its first batch. With ``sort``, the whole
    answer is sorted in memory the same way."""
    found: list[Document] = []
    for chunk in in_chunks(values):
        cursor = collection.find(
            {field: {"$in": chunk}, **(extra or {})}, projection, session=session
        )
        found += [doc async for doc in cursor.batch_size(max(101, 20 * len(chunk)))]
    for key, direction in reversed(sort or ()):  # stable sorts, the last key first
        found.sort(key=_sort_key(key), reverse=direction < 0)
    return found


def _sort_key(field: str) -> Callable[[Document], tuple[bool, Any]]:
    """Documents by ``field``, those without it first (as MongoDB sorts a missing field)."""

    def key(doc: Document) -> tuple[bool, Any]:
        value = doc.get(field)
        return (value is not None, value)

    return key


async def update_in(
    collection: AsyncCollection[Document],
    field: str,
    values: Iterable[Any],
    update: Mapping[str, Any],
    *,
    extra: Mapping[str, Any] | None = None,
    session: AsyncClientSession | None = None,
) -> int:
    """Update the documents whose ``field`` is one of ``values`` (and that match ``extra``) in one
    bulk command of :data:`IN_STATEMENT` values a statement, in a transaction (``session``'s or
    its own); the number of documents changed."""
    statements = [
        UpdateMany({field: {"$in": group}, **(extra or {})}, dict(update))
        for group in in_chunks(values, IN_STATEMENT)
    ]
    if not statements:
        return 0

    async def work(own: AsyncClientSession) -> int:
        result = await collection.bulk_write(statements, ordered=True, session=own)
        return result.modified_count

    if session is not None:
        return await work(session)
    return await in_transaction(collection.database.client, work)


async def delete_in(
    collection: AsyncCollection[Document],
    field: str,
    values: Iterable[Any],
    *,
    session: AsyncClientSession | None = None,
) -> int:
    """Delete the documents whose ``field`` is one of ``values`` in one bulk command of
    :data:`IN_STATEMENT` values a statement, in a transaction (``session``'s or its own); the
    number of documents deleted."""
    statements = [DeleteMany({field: {"$in": group}}) for group in in_chunks(values, IN_STATEMENT)]
    if not statements:
        return 0

    async def work(own: AsyncClientSession) -> int:
        result = await collection.bulk_write(statements, ordered=True, session=own)
        return result.deleted_count

    if session is not None:
        return await work(session)
    return await in_transaction(collection.database.client, work)


async def ping(database: AsyncDatabase[Document]) -> None:
    await database.command("ping")
