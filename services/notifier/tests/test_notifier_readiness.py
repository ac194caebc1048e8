"""``/readyz`` answers 503 while the match index is loading, and 200 once it has loaded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI

from hwcollab_common.ops import ops_router
from hwcollab_notifier.index_sync import ReplicaIndex


async def nothing() -> AsyncIterator[dict[str, Any]]:
    empty: tuple[dict[str, Any], ...] = ()
    for doc in empty:
        yield doc


async def test_readyz_fails_until_the_index_has_loaded() -> None:
    index = ReplicaIndex()
    app = FastAPI()
    app.include_router(ops_router({"match_index": index.check_ready}))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://notifier") as http:
        loading = await http.get("/readyz")
        assert loading.status_code == 503
        assert "still loading" in loading.json()["checks"]["match_index"]
        await index.load(nothing(), now=datetime.now(UTC))
        assert (await http.get("/readyz")).status_code == 200
