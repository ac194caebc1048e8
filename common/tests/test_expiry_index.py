"""``ensure_expiry_index``: a TTL index where the store supports it; a logged, counted refusal
where it does not, without stopping the service's start."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from pymongo.errors import OperationFailure

from hwcollab_common.mongo import create_client, ensure_expiry_index


def _failures(collection: str, field: str) -> float:
    value = REGISTRY.get_sample_value(
        "hwcollab_mongo_expiry_index_failures_total", {"collection": collection, "field": field}
    )
    return value or 0.0


class RefusingCollection:
    """A collection of a store without TTL support."""

    name = "reports"

    async def create_index(self, keys: Any, **options: Any) -> str:
        raise OperationFailure("TTL indexes are not supported", code=67)


async def test_a_refused_expiry_index_is_logged_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = _failures("reports", "expires_at")
    with caplog.at_level(logging.WARNING, logger="hwcollab_common.mongo"):
        created = await ensure_expiry_index(
            RefusingCollection(),  # type: ignore[arg-type]
            "expires_at",
            after=timedelta(0),
        )

    assert created is False
    assert _failures("reports", "expires_at") == before + 1
    assert "no TTL index on reports.expires_at" in caplog.text
    assert "TTL indexes are not supported" in caplog.text


async def test_the_expiry_index_is_created_where_the_store_supports_it(mongo_url: str) -> None:
    client = create_client(mongo_url, app_name="hwcollab-expiry-index")
    database = client[f"expiry_index_{uuid.uuid4().hex[:8]}"]
    try:
        created = await ensure_expiry_index(database["entries"], "sent_at", after=timedelta(days=7))
        indexes = await database["entries"].index_information()
    finally:
        await client.drop_database(database.name)
        await client.close()

    assert created is True
    assert indexes["sent_at_1"]["expireAfterSeconds"] == 7 * 24 * 3600
