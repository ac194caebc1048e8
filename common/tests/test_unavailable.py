from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from pymongo.errors import AutoReconnect, DuplicateKeyError, ServerSelectionTimeoutError

from hwcollab_common.ops import install_http_basics
from hwcollab_common.unavailable import RETRY_AFTER_SECONDS


def app() -> FastAPI:
    application = FastAPI()
    install_http_basics(application)

    @application.post("/api/openings")
    async def create_opening() -> None:
        raise ServerSelectionTimeoutError("127.0.0.1:27017: [Errno 111] Connection refused")

    @application.get("/directory")
    async def directory() -> None:
        raise AutoReconnect("connection closed")

    @application.post("/api/duplicate")
    async def duplicate() -> None:
        raise DuplicateKeyError("E11000 duplicate key")

    return application


def test_an_api_request_in_a_database_outage_answers_503_json() -> None:
    response = TestClient(app()).post("/api/openings", json={})
    assert response.status_code == 503
    assert response.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
    assert response.headers["content-type"] == "application/json"
    assert "database" in response.json()["detail"]


def test_a_page_in_a_database_outage_answers_a_readable_503_page() -> None:
    response = TestClient(app()).get("/directory", headers={"accept": "text/html,*/*;q=0.8"})
    assert response.status_code == 503
    assert response.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
    assert response.headers["content-type"].startswith("text/html")
    assert "Temporarily unavailable" in response.text
    assert 'role="alert"' in response.text


def test_a_page_route_asked_for_json_answers_json() -> None:
    response = TestClient(app()).get("/directory", headers={"accept": "application/json"})
    assert response.status_code == 503
    assert "detail" in response.json()


def test_other_database_errors_stay_server_errors() -> None:
    client = TestClient(app(), raise_server_exceptions=False)
    assert client.post("/api/duplicate").status_code == 500
