"""Idempotent posting and external ids on real MongoDB and Kafka: retries that arrive together,
the unique index on an employer's own ids, and the kept answers' expiry index."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from hwcollab_common.settings import DEV_ADMIN_TOKEN
from hwcollab_employer.app import create_app
from hwcollab_employer.settings import Settings

pytestmark = pytest.mark.integration

PASSWORD = "integration passphrase"
OPENING = {
    "title": "RN Care Manager",
    "role": "nurse_care_manager",
    "setting": "medical",
    "required_credentials": ["rn"],
    "employment_type": "full_time",
    "zip": "01608",
    "description": "Coordinate care for adults.",
    "apply_url": "https://care.example/jobs/1",
}


@pytest.fixture(scope="module")
async def app(kafka_bootstrap: str, mongo_url: str) -> AsyncIterator[FastAPI]:
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        mongodb_url=mongo_url,
        mongodb_database=f"test_employer_{uuid.uuid4().hex[:12]}",
        employer_approval="auto",
        outbox_poll_seconds=0.1,
        login_rate_limit="1000/minute",
        signup_rate_limit="1000/hour",
        write_rate_limit="1000/minute",
    )
    application = create_app(settings)
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=60):
        yield application


@pytest.fixture
async def api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    email = f"ats-{uuid.uuid4().hex[:8]}@care.example"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://employer.test"
    ) as client:
        signup = {
            "organization_name": "Retrying Care",
            "contact_email": email,
            "password": PASSWORD,
            "address": {"city": "Worcester", "state": "MA", "zip": "01608"},
            "settings": ["medical"],
        }
        admin = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}  # as an operator: verified at once
        created = await client.post("/api/admin/employers", json=signup, headers=admin)
        assert created.status_code == 201
        token = await client.post("/api/auth/token", json={"email": email, "password": PASSWORD})
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        yield client


def _outbox(app: FastAPI) -> Any:
    return app.state.runtime.db["outbox"]


async def test_retries_arriving_together_create_one_opening(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    key = {"Idempotency-Key": f"burst-{uuid.uuid4()}"}
    answers = await asyncio.gather(
        *(api.post("/api/openings", json=OPENING, headers=key) for _ in range(4))
    )
    assert [answer.status_code for answer in answers] == [201] * 4, [a.text for a in answers]
    assert len({answer.json()["opening_id"] for answer in answers}) == 1
    assert sum(answer.headers.get("idempotent-replayed") == "true" for answer in answers) == 3
    opening_id = answers[0].json()["opening_id"]
    mine = (await api.get("/api/employers/me/openings")).json()
    assert [item["opening_id"] for item in mine] == [opening_id]
    posted = await _outbox(app).count_documents({"key": opening_id, "event_type": "opening.posted"})
    assert posted == 1

    other = await api.post("/api/openings", json=OPENING | {"title": "Other"}, headers=key)
    assert other.status_code == 422


async def test_external_ids_are_unique_per_employer_in_the_database(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    external = f"REQ-{uuid.uuid4().hex[:6]}"
    first = await api.post("/api/openings", json=OPENING | {"external_id": external})
    assert first.status_code == 201, first.text
    again = await api.post("/api/openings", json=OPENING | {"external_id": external})
    assert again.status_code == 409, again.text
    second = await api.post("/api/openings", json=OPENING | {"external_id": f"{external}-2"})
    clash = await api.patch(
        f"/api/openings/{second.json()['opening_id']}", json={"external_id": external}
    )
    assert clash.status_code == 409, clash.text
    # Openings without one do not collide with each other.
    for _ in range(2):
        assert (await api.post("/api/openings", json=OPENING)).status_code == 201
    edited = await api.patch(f"/api/openings/by-external-id/{external}", json={"title": "Lead"})
    assert edited.status_code == 200, edited.text
    assert edited.json()["opening_id"] == first.json()["opening_id"]


async def test_kept_answers_expire_with_a_ttl_index(app: FastAPI) -> None:
    indexes = await app.state.runtime.db["idempotency_keys"].index_information()
    assert any(
        index.get("expireAfterSeconds") == 0 and index["key"] == [("expires_at", 1)]
        for index in indexes.values()
    ), indexes
