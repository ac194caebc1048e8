from __future__ import annotations

import time

import pytest
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import ServerSelectionTimeoutError

from hwcollab_common.errors import is_mongo_unavailable
from hwcollab_common.mongo import CLIENT_DEFAULTS, create_client, in_transaction
from hwcollab_testing.processes import free_port


async def test_the_client_fails_fast_by_default() -> None:
    client = create_client("mongodb://127.0.0.1:27017/?directConnection=true", app_name="t")
    try:
        options = client.options.pool_options
        assert client.options.server_selection_timeout == 3.0
        assert options.connect_timeout == 2.0
        assert options.socket_timeout == 60.0
        assert CLIENT_DEFAULTS["serverSelectionTimeoutMS"] == 3000
    finally:
        await client.close()


async def test_the_url_overrides_the_defaults() -> None:
    client = create_client(
        "mongodb://127.0.0.1:27017/?directConnection=true&serverselectiontimeoutms=10000",
        app_name="t",
    )
    try:
        assert client.options.server_selection_timeout == 10.0
        assert client.options.pool_options.connect_timeout == 2.0
    finally:
        await client.close()


async def test_a_transaction_against_an_unreachable_server_fails_at_once() -> None:
    """pymongo's own ``with_transaction`` would retry the outage for two minutes."""
    port = free_port()  # nothing listens there
    client = create_client(
        f"mongodb://127.0.0.1:{port}/?directConnection=true&serverSelectionTimeoutMS=300",
        app_name="t",
    )
    calls = 0

    async def work(session: AsyncClientSession) -> None:
        nonlocal calls
        calls += 1
        await client["t"]["c"].insert_one({"a": 1}, session=session)

    started = time.monotonic()
    try:
        with pytest.raises(ServerSelectionTimeoutError) as outage:
            await in_transaction(client, work)
    finally:
        await client.close()
    assert time.monotonic() - started < 5
    assert calls == 1
    assert is_mongo_unavailable(outage.value)
