"""The command counter on every service's MongoDB client (``hwcollab_mongodb_commands_total``)."""

from __future__ import annotations

from prometheus_client import REGISTRY

from hwcollab_common.mongo import IN_CHUNK, create_client, delete_in, find_in, update_in


def _count(app: str, command: str) -> float:
    value = REGISTRY.get_sample_value(
        "hwcollab_mongodb_commands_total", {"app": app, "command": command}
    )
    return value or 0.0


async def test_each_command_the_client_sends_is_counted_by_name(mongo_url: str) -> None:
    client = create_client(mongo_url, app_name="hwcollab-counted")
    collection = client["command_counter"]["items"]
    try:
        await collection.insert_many([{"n": n} for n in range(5)])
        assert await collection.count_documents({}) >= 5
        await collection.find_one({"n": 3})
        await collection.find_one({"n": 4})
    finally:
        await client.drop_database("command_counter")
        await client.close()

    assert _count("hwcollab-counted", "insert") == 1  # one insert_many is one round trip
    assert _count("hwcollab-counted", "aggregate") == 1  # count_documents
    assert _count("hwcollab-counted", "find") == 2
    assert _count("hwcollab-counted", "dropDatabase") == 1


async def test_clients_of_different_services_are_counted_apart(mongo_url: str) -> None:
    before = _count("hwcollab-other", "find")
    client = create_client(mongo_url, app_name="hwcollab-other")
    try:
        await client["command_counter_other"]["items"].find_one({})
    finally:
        await client.close()
    assert _count("hwcollab-other", "find") == before + 1
    assert _count("hwcollab-counted-never", "find") == 0


async def test_bulk_changes_by_id_go_in_chunks_in_one_transaction(mongo_url: str) -> None:
    """``find_in`` sends one query per :data:`IN_CHUNK` ids (a repeated id once);
    ``update_in``/``delete_in`` one command whatever the number of ids, in one transaction."""
    app = "hwcollab-chunked"
    client = create_client(mongo_url, app_name=app)
    collection = client["command_chunks"]["items"]
    ids = [f"id-{n:04d}" for n in range(2 * IN_CHUNK + 1)]
    try:
        await collection.insert_many([{"_id": i, "n": n} for n, i in enumerate(ids)])
        before = {c: _count(app, c) for c in ("find", "update", "delete", "commitTransaction")}
        assert len(await find_in(collection, "_id", [*ids, ids[0]])) == len(ids)
        assert await update_in(collection, "_id", ids[:150], {"$set": {"seen": True}}) == 150
        assert await delete_in(collection, "_id", [*ids[100:], "id-none"]) == len(ids) - 100
        assert await delete_in(collection, "_id", []) == 0
        sent = {c: _count(app, c) - before[c] for c in before}
        assert sent == {"find": 3, "update": 1, "delete": 1, "commitTransaction": 2}
        left = await collection.find({}, {"seen": 1}).to_list()
        assert [doc["_id"] for doc in left] == ids[:100]
        assert all(doc["seen"] for doc in left)
    finally:
        await client.drop_database("command_chunks")
        await client.close()
