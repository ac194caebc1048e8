"""Bulk reads and writes by id on the embedded MongoDB (SecantusDB): one ``$in`` of a whole batch
against what the services send: queries of :data:`hwcollab_common.mongo.IN_CHUNK` ids, and one
bulk update of :data:`hwcollab_common.mongo.IN_STATEMENT` ids a statement.

A delivery batch reads and settles a few hundred documents by id. SecantusDB answers an ``$in``
in time that grows with the square of its list, so the figures are microseconds per document for
a batch of ``BATCH`` ids sent as one ``$in`` (the baseline) and as the services send them
(:func:`find_in`, :func:`update_in`), both in the same run on the same collection of
``DOCUMENTS`` documents, plus the chunk sizes around the chosen one.

It also prices the writes of an immediate email, each in batches of ``BATCH`` as the notifier
makes them, with the notifier's own code and indexes: its message claimed and settled (``_id``
only) and its ledger row (four indexes) inserted with the outcome, against a row inserted at the
match and updated at the settlement, as a digest row still is. SecantusDB rewrites every index
entry of a document on every update, so these say where a fan-out's database time goes.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection

from bench.harness import Figure, Output, benchmark, write_result
from hwcollab_cli import components
from hwcollab_cli.processes import ManagedProcess, free_port
from hwcollab_common.mongo import IN_CHUNK, IN_STATEMENT, Document, find_in, in_chunks, update_in
from hwcollab_notifier.domain import ledger_row
from hwcollab_notifier.fanout import MongoFanoutLedger
from hwcollab_notifier.ledger import DeliveryStore, new_claim
from hwcollab_notifier.ports import Claim

DOCUMENTS = 20_000
BATCH = 500
ROUNDS = 5
SIZES = (25, 50, IN_CHUNK, 200, BATCH)


def document(n: int, now: datetime) -> Document:
    """A document shaped like a message claim."""
    return {
        "_id": f"<immediate.{n:08d}@bench>",
        "kind": "immediate",
        "subscriber_id": f"s{n:08d}",
        "opening_ids": ["o1"],
        "status": "sending",
        "owner": "bench:1",
        "lease_until": now,
        "attempts": 1,
        "claims": [{"owner": "bench:1", "at": now}],
        "created_at": now,
    }


async def per_document(
    ids: list[str], call: Callable[[list[str]], Awaitable[object]], *, rounds: int
) -> float:
    """Median microseconds per id of ``call`` over ``rounds`` disjoint batches of ``ids``."""
    times = []
    for start in range(0, rounds * BATCH, BATCH):
        batch = ids[start : start + BATCH]
        begun = time.perf_counter()
        await call(batch)
        times.append((time.perf_counter() - begun) / len(batch) * 1e6)
    return statistics.median(times)


async def measure(url: str, *, documents: int, rounds: int) -> dict[str, float]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(url, tz_aware=True)
    collection: AsyncCollection[Document] = client["bench_mongo"]["messages"]
    now = datetime.now(UTC)
    for start in range(0, documents, 5000):
        await collection.insert_many(
            [document(n, now) for n in range(start, min(documents, start + 5000))]
        )
    ids = [document(n, now)["_id"] for n in range(documents)]

    async def one_find(batch: list[str]) -> None:
        await collection.find({"_id": {"$in": batch}}).batch_size(len(batch) + 1).to_list()

    async def one_update(batch: list[str]) -> None:
        async with client.start_session() as session, await session.start_transaction():
            await collection.update_many(
                {"_id": {"$in": batch}}, {"$set": {"status": "sent"}}, session=session
            )

    async def sized_find(size: int, batch: list[str]) -> None:
        for chunk in in_chunks(batch, size):
            await collection.find({"_id": {"$in": chunk}}).batch_size(size + 1).to_list()

    step = rounds * BATCH  # every measurement on ids no other one touched
    found: dict[str, float] = {
        "find_one_query": await per_document(ids, one_find, rounds=rounds),
        "find_chunked": await per_document(ids, partial(find_in, collection, "_id"), rounds=rounds),
        "update_one_query": await per_document(ids[step:], one_update, rounds=rounds),
        "update_chunked": await per_document(
            ids[2 * step :],
            lambda batch: update_in(collection, "_id", batch, {"$set": {"status": "sent"}}),
            rounds=rounds,
        ),
    }
    for size in SIZES:
        found[f"find_size_{size}"] = await per_document(
            ids, partial(sized_find, size), rounds=rounds
        )
    await client.drop_database("bench_mongo")
    await client.close()
    return found


async def measure_writes(url: str, *, rounds: int) -> dict[str, float]:
    """Microseconds per document of the notifier's four writes of an immediate email, each the
    median of ``rounds`` batches of ``BATCH``, on its collections with its indexes."""
    client: AsyncMongoClient[Document] = AsyncMongoClient(url, tz_aware=True)
    database = client["bench_mongo_writes"]
    store = DeliveryStore(database)
    await store.ensure_delivery_indexes()
    await MongoFanoutLedger(database).ensure_indexes()
    now = datetime.now(UTC)
    count = rounds * BATCH
    rows = [
        ledger_row(
            subscriber_id=f"s{n:08d}", opening_id=f"o{n // BATCH}", channel="immediate", now=now
        )
        for n in range(count)
    ]
    claims = [
        new_claim(
            Claim(
                message_id=f"<immediate.{n:08d}@bench>",
                kind="immediate",
                subscriber_id=f"s{n:08d}",
                opening_ids=(f"o{n // BATCH}",),
            ),
            owner="bench:1",
            now=now,
            lease=timedelta(minutes=5),
        )
        for n in range(count)
    ]
    keys = [str(row["_id"]) for row in rows]
    ids = [str(claim["_id"]) for claim in claims]
    by_key = dict(zip(keys, rows, strict=True))
    by_id = dict(zip(ids, claims, strict=True))

    async def insert_rows(batch: list[str]) -> None:
        await store.add_pairs([by_key[key] for key in batch])

    async def insert_claims(batch: list[str]) -> None:
        await store.messages.insert_many([by_id[i] for i in batch], ordered=False)

    async def settle_claims(batch: list[str]) -> None:
        await store.finish_many(batch, status="sent", now=now, session=None)

    async def settle_rows(batch: list[str]) -> None:
        await store.mark_rows(batch, status="sent", now=now)

    found = {
        "ledger_insert": await per_document(keys, insert_rows, rounds=rounds),
        "message_insert": await per_document(ids, insert_claims, rounds=rounds),
        "message_update": await per_document(ids, settle_claims, rounds=rounds),
        "ledger_update": await per_document(keys, settle_rows, rounds=rounds),
    }
    await client.drop_database("bench_mongo_writes")
    await client.close()
    return found


@benchmark("mongo")
def run(*, quick: bool, out: Output) -> None:
    documents, rounds = (3 * BATCH * 2, 2) if quick else (DOCUMENTS, ROUNDS)
    with tempfile.TemporaryDirectory(prefix="bench-mongo-") as workdir:
        port = free_port()
        mongo = ManagedProcess(
            name="mongo",
            argv=components.mongo_argv(port=port, data_dir=Path(workdir) / "mongo"),
            log_path=Path(workdir) / "mongo.log",
        )
        mongo.start()
        try:
            url = components.mongo_url(port)
            mongo.wait_ready(partial(components.mongo_answers, url), timeout=120)
            found = asyncio.run(measure(url, documents=documents, rounds=rounds))
            written = asyncio.run(measure_writes(url, rounds=rounds))
        finally:
            mongo.stop(grace=10.0)
    where = f"{BATCH} ids out of {documents:,} documents, median of {rounds} batches"

    def per_id(measured: str, baseline: str, note: str) -> Figure:
        return Figure(found[measured], "µs/id", baseline=found[baseline], better="lower", note=note)

    figures = {
        "find_us_per_id": per_id(
            "find_chunked",
            "find_one_query",
            f"find by _id, chunks of {IN_CHUNK} (find_in); baseline: one $in of all {BATCH}; "
            f"{where}",
        ),
        "update_us_per_id": per_id(
            "update_chunked",
            "update_one_query",
            f"update by _id in one transaction, one bulk command of {IN_STATEMENT} ids a "
            "statement (update_in); "
            f"baseline: one $in of all {BATCH}; {where}",
        ),
    }
    for size in SIZES:
        figures[f"find_us_per_id_chunks_of_{size}"] = per_id(
            f"find_size_{size}",
            "find_one_query",
            f"find by _id in chunks of {size}; baseline: one $in of all {BATCH}",
        )
    for key, figure in figures.items():
        print(f"mongo: {key} {figure.value:,.0f} µs (one $in: {figure.baseline:,.0f})")
    shapes = f"the notifier's own writes and indexes, batches of {BATCH}, median of {rounds}"
    writes = {
        "ledger_insert_us_per_doc": Figure(
            written["ledger_insert"],
            "µs/doc",
            baseline=written["message_insert"],
            better="lower",
            note=f"a ledger row inserted (add_pairs; four indexes): a new immediate pair's at "
            f"its settlement, a digest row at the match; baseline: a message claimed "
            f"(insert_many; _id only); {shapes}",
        ),
        "ledger_update_us_per_doc": Figure(
            written["ledger_update"],
            "µs/doc",
            baseline=written["message_update"],
            better="lower",
            note=f"ledger rows recorded at the match settled (mark_rows, update_in in a "
            f"transaction); baseline: their messages settled (finish_many, _id only); {shapes}",
        ),
        "email_writes_us": Figure(
            written["message_insert"] + written["message_update"] + written["ledger_insert"],
            "µs/email",
            baseline=sum(written.values()),
            better="lower",
            note="the three writes of one new immediate pair's email (message claimed, message "
            "settled, its ledger row inserted with the outcome); baseline: the four of a pair "
            "recorded at the match (a digest row, or a reader whose welcome was pending), whose "
            "row is inserted then and updated at the settlement",
        ),
    }
    for key, figure in writes.items():
        print(f"mongo: {key} {figure.value:,.0f} {figure.unit}")
    figures |= writes
    write_result("mongo", figures, out=out)
