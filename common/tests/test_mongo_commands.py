"""The command counter on every service's MongoDB client (``hwcollab_mongodb_commands_total``)."""

from __future__ import annotations

from prometheus_client import REGISTRY

from hwcollab_common.mongo import create_client


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
