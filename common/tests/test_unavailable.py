"""503 answers while a dependency is away: MongoDB, or anything raising ``TransientError``."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from pymongo.errors import OperationFailure, ServerSelectionTimeoutError

from hwcollab_common.errors import TransientError
from hwcollab_common.unavailable import (
    DEPENDENCY_DETAIL,
    UNAVAILABLE_DETAIL,
    install_unavailable_handler,
)


def _app() -> FastAPI:
    app = FastAPI()
    install_unavailable_handler(app)

    @app.get("/api/database")
    async def database() -> None:
        raise ServerSelectionTimeoutError("no servers")

    @app.get("/api/mail")
    async def mail() -> None:
        raise TransientError("the mail server refused the connection")

    @app.get("/page")
    async def page() -> None:
        raise TransientError("the mail server refused the connection")

    @app.get("/api/bad-query")
    async def bad_query() -> None:
        raise OperationFailure("unknown operator $nope")

    return app


async def _get(path: str, **headers: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path, headers=headers)


async def test_an_unreachable_database_is_a_503_with_retry_after() -> None:
    answer = await _get("/api/database")
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "5"
    assert answer.json() == {"detail": UNAVAILABLE_DETAIL}


async def test_a_transient_failure_of_another_dependency_is_a_503_too() -> None:
    answer = await _get("/api/mail")
    assert answer.status_code == 503
    assert answer.json() == {"detail": DEPENDENCY_DETAIL}
    page = await _get("/page", accept="text/html")
    assert page.status_code == 503
    assert "relies on cannot be reached" in page.text
    assert "database" not in page.text


async def test_other_database_errors_stay_server_errors() -> None:
    assert (await _get("/api/bad-query")).status_code == 500
