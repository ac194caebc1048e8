"""``hwcollab employers reject|suspend|reinstate|list`` and ``hwcollab openings recent|take-down``
against the employer service served over HTTP on real Kafka and MongoDB."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from hwcollab_cli.main import app as cli
from hwcollab_employer.app import create_app
from hwcollab_employer.settings import Settings
from hwcollab_testing.waiting import eventually

pytestmark = pytest.mark.integration

ADMIN_TOKEN = "moderation-cli-admin-token"
PASSWORD = "integration passphrase"


@pytest.fixture(scope="module")
async def employer_url(kafka_bootstrap: str, mongo_url: str) -> AsyncIterator[str]:
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        mongodb_url=mongo_url,
        mongodb_database=f"test_employer_{uuid.uuid4().hex[:12]}",
        employer_approval="manual",
        admin_token=ADMIN_TOKEN,
        login_rate_limit="1000/minute",
        signup_rate_limit="1000/hour",
        write_rate_limit="1000/minute",
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=0, log_level="warning", lifespan="on"
        )
    )
    serving = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: server.started, timeout=60, what="employer server started")
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        await serving


async def _employer(client: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    email = f"cli-{uuid.uuid4().hex[:8]}@care.example"
    created = await client.post(
        "/api/admin/employers",  # as an operator: verified at once
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        json={
            "organization_name": "Moderated Care",
            "contact_email": email,
            "password": PASSWORD,
            "address": {"city": "Worcester", "state": "MA", "zip": "01608"},
            "settings": ["medical"],
        },
    )
    assert created.status_code == 201, created.text
    token = await client.post("/api/auth/token", json={"email": email, "password": PASSWORD})
    return created.json()["employer_id"], {
        "Authorization": f"Bearer {token.json()['access_token']}"
    }


async def _run(url: str, *args: str, token: str = ADMIN_TOKEN) -> Any:
    env = {"EMPLOYER_PUBLIC_URL": url, "ADMIN_TOKEN": token}
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=env)


async def test_operators_reject_suspend_reinstate_and_take_down_from_the_cli(
    employer_url: str,
) -> None:
    async with httpx.AsyncClient(base_url=employer_url, timeout=60) as client:
        refused_id, refused = await _employer(client)
        kept_id, kept = await _employer(client)

        rejected = await _run(employer_url, "employers", "reject", refused_id, "--reason", "Spam.")
        assert rejected.exit_code == 0, rejected.output
        assert "rejected" in rejected.output
        me = (await client.get("/api/employers/me", headers=refused)).json()
        assert (me["status"], me["moderation_reason"]) == ("rejected", "Spam.")
        listed = await _run(employer_url, "employers", "list", "--status", "rejected")
        assert refused_id[:8] in listed.output

        assert (await _run(employer_url, "employers", "approve", kept_id)).exit_code == 0
        posted = await client.post(
            "/api/openings",
            headers=kept,
            json={
                "title": "Care Coordinator",
                "role": "care_coordinator",
                "setting": "medical",
                "employment_type": "full_time",
                "zip": "01608",
                "apply_url": "https://care.example/apply",
            },
        )
        opening_id = posted.json()["opening_id"]

        suspended = await _run(
            employer_url, "employers", "suspend", kept_id, "--reason", "Under review."
        )
        assert suspended.exit_code == 0, suspended.output
        assert (await client.get(f"/api/openings/{opening_id}")).status_code == 404
        twice = await _run(employer_url, "employers", "suspend", kept_id, "--reason", "Again.")
        assert twice.exit_code == 1
        assert "Cannot do that now" in twice.output
        reinstated = await _run(employer_url, "employers", "reinstate", kept_id)
        assert reinstated.exit_code == 0, reinstated.output
        assert (await client.get(f"/api/openings/{opening_id}")).status_code == 200

        recent = await _run(employer_url, "openings", "recent", "--limit", "5")
        assert opening_id[:8] in recent.output
        taken = await _run(
            employer_url, "openings", "take-down", opening_id, "--reason", "Misleading pay."
        )
        assert taken.exit_code == 0, taken.output
        assert "taken down" in taken.output
        assert (await client.get(f"/api/openings/{opening_id}")).status_code == 404
        missing = await _run(employer_url, "openings", "take-down", "nope", "--reason", "x")
        assert missing.exit_code == 1
        assert "No such opening" in missing.output
        wrong = await _run(employer_url, "employers", "reinstate", kept_id, token="wrong")
        assert wrong.exit_code == 1
