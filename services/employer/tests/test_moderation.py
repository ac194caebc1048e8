"""Operators' decisions over the JSON API on in-memory fakes: reject, suspend, reinstate, take
down; what each publishes and what the public and the employer see afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from hwcollab_schemas.events import (
    EmployerReinstated,
    EmployerRejected,
    EmployerSuspended,
    OpeningTakenDown,
    OpeningUpdated,
)

from .conftest import ADMIN_HEADERS, BodyFactory, Harness

ADMIN = {"Authorization": "Bearer test-admin-token"}
PASSWORD = "a very long passphrase"


async def _employer(client: Any, signup: Any, email: str) -> tuple[str, dict[str, str]]:
    created = await client.post("/api/admin/employers", headers=ADMIN_HEADERS, json=signup(email))
    assert created.status_code == 201, created.text
    token = await client.post("/api/auth/token", json={"email": email, "password": PASSWORD})
    return created.json()["employer_id"], {
        "Authorization": f"Bearer {token.json()['access_token']}"
    }


Listed = tuple[httpx.AsyncClient, str, dict[str, str], str]
"""A client, the employer's id, their bearer headers and their open opening's id."""


@pytest.fixture
async def listed(
    harness: Harness, signup: BodyFactory, opening_json: BodyFactory
) -> AsyncIterator[Listed]:
    """An approved employer with one open opening."""
    async with harness.client() as client:
        employer_id, bearer = await _employer(client, signup, "hr@listed.example")
        posted = await client.post("/api/openings", headers=bearer, json=opening_json())
        yield client, employer_id, bearer, posted.json()["opening_id"]


async def _public(client: Any, employer_id: str, opening_id: str) -> dict[str, Any]:
    return {
        "board": (await client.get("/api/openings")).json()["total"],
        "directory": (await client.get("/api/directory")).json()["total"],
        "employer": (await client.get(f"/api/employers/{employer_id}")).status_code,
        "opening": (await client.get(f"/api/openings/{opening_id}")).status_code,
    }


SHOWN = {"board": 1, "directory": 1, "employer": 200, "opening": 200}
HIDDEN = {"board": 0, "directory": 0, "employer": 404, "opening": 404}


async def test_a_suspended_employer_and_its_openings_leave_the_site_until_reinstated(
    harness: Harness, listed: Listed
) -> None:
    client, employer_id, bearer, opening_id = listed
    assert await _public(client, employer_id, opening_id) == SHOWN
    reason = "Openings for roles outside health and human services."
    suspended = await client.post(
        f"/api/admin/employers/{employer_id}/suspend", headers=ADMIN, json={"reason": reason}
    )
    assert suspended.status_code == 200, suspended.text
    assert suspended.json() == {"employer_id": employer_id, "status": "suspended", "reason": reason}
    assert await _public(client, employer_id, opening_id) == HIDDEN
    me = (await client.get("/api/employers/me", headers=bearer)).json()
    assert (me["status"], me["moderation_reason"]) == ("suspended", reason)

    [event] = harness.uow.of_class(EmployerSuspended)
    assert (event.payload.status, event.payload.reason) == ("suspended", reason)
    assert event.key == employer_id
    update = harness.uow.of_class(OpeningUpdated)[-1]
    assert (update.payload.opening_id, update.payload.employer_approved) == (opening_id, False)

    again = await client.post(
        f"/api/admin/employers/{employer_id}/suspend", headers=ADMIN, json={"reason": reason}
    )
    assert again.status_code == 409
    assert (
        await client.post(f"/api/admin/employers/{employer_id}/approve", headers=ADMIN)
    ).status_code == 409

    reinstated = await client.post(
        f"/api/admin/employers/{employer_id}/reinstate",
        headers=ADMIN,
        json={"reason": "Openings corrected."},
    )
    assert reinstated.status_code == 200, reinstated.text
    assert reinstated.json()["status"] == "approved"
    assert await _public(client, employer_id, opening_id) == SHOWN
    [back] = harness.uow.of_class(EmployerReinstated)
    assert (back.payload.status, back.payload.reason) == ("approved", "Openings corrected.")
    update = harness.uow.of_class(OpeningUpdated)[-1]
    assert (update.payload.opening_id, update.payload.employer_approved) == (opening_id, True)
    # Nothing is posted again: the notifier's ledger keeps who was told.
    assert len(harness.uow.of_type("opening.posted")) == 1
    no_reason = await client.post(f"/api/admin/employers/{employer_id}/reinstate", headers=ADMIN)
    assert no_reason.status_code == 409


async def test_reinstating_needs_no_reason(harness: Harness, listed: Listed) -> None:
    client, employer_id, _, _ = listed
    await client.post(
        f"/api/admin/employers/{employer_id}/suspend", headers=ADMIN, json={"reason": "Check."}
    )
    answer = await client.post(f"/api/admin/employers/{employer_id}/reinstate", headers=ADMIN)
    assert answer.json() == {"employer_id": employer_id, "status": "approved", "reason": None}


async def test_a_pending_employer_can_be_rejected_once(
    manual_harness: Harness, signup: BodyFactory
) -> None:
    async with manual_harness.client() as client:
        employer_id, bearer = await _employer(client, signup, "hr@pending.example")
        reason = "We could not verify this organization."
        rejected = await client.post(
            f"/api/admin/employers/{employer_id}/reject", headers=ADMIN, json={"reason": reason}
        )
        assert rejected.status_code == 200, rejected.text
        assert rejected.json()["status"] == "rejected"
        [event] = manual_harness.uow.of_class(EmployerRejected)
        assert event.payload.reason == reason
        me = (await client.get("/api/employers/me", headers=bearer)).json()
        assert (me["status"], me["moderation_reason"]) == ("rejected", reason)
        listed = await client.get(
            "/api/admin/employers", params={"status": "rejected"}, headers=ADMIN
        )
        assert [e["employer_id"] for e in listed.json()["results"]] == [employer_id]
        for action in ("reject", "suspend", "reinstate"):
            answer = await client.post(
                f"/api/admin/employers/{employer_id}/{action}", headers=ADMIN, json={"reason": "x"}
            )
            assert answer.status_code == 409, action
        # An operator may still change their mind.
        approved = await client.post(f"/api/admin/employers/{employer_id}/approve", headers=ADMIN)
        assert approved.json()["status"] == "approved"
        me = (await client.get("/api/employers/me", headers=bearer)).json()
        assert me["moderation_reason"] is None


async def test_an_approved_employer_cannot_be_rejected(harness: Harness, listed: Listed) -> None:
    client, employer_id, _, _ = listed
    answer = await client.post(
        f"/api/admin/employers/{employer_id}/reject", headers=ADMIN, json={"reason": "Late."}
    )
    assert answer.status_code == 409
    assert "pending" in answer.json()["detail"]


async def test_an_operator_takes_down_one_opening(
    harness: Harness, listed: Listed, opening_json: BodyFactory
) -> None:
    client, _, bearer, opening_id = listed
    kept = await client.post("/api/openings", headers=bearer, json=opening_json(title="Kept"))
    reason = "The pay stated is not what the job pays."
    answer = await client.post(
        f"/api/admin/openings/{opening_id}/take-down", headers=ADMIN, json={"reason": reason}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["status"], body["close_reason"], body["takedown_reason"]) == (
        "closed",
        "taken_down",
        reason,
    )
    [event] = harness.uow.of_class(OpeningTakenDown)
    assert (event.key, event.payload.reason, event.payload.version) == (opening_id, reason, 2)
    assert harness.uow.of_type("opening.closed") == []

    assert (await client.get(f"/api/openings/{opening_id}")).status_code == 404
    assert (await client.get(f"/openings/{opening_id}")).status_code == 410
    board = (await client.get("/api/openings")).json()
    assert [o["opening_id"] for o in board["results"]] == [kept.json()["opening_id"]]
    mine = {
        o["opening_id"]: o
        for o in (await client.get("/api/employers/me/openings", headers=bearer)).json()
    }
    assert mine[opening_id]["takedown_reason"] == reason
    assert (
        await client.patch(f"/api/openings/{opening_id}", headers=bearer, json={"title": "Back"})
    ).status_code == 409

    again = await client.post(
        f"/api/admin/openings/{opening_id}/take-down", headers=ADMIN, json={"reason": reason}
    )
    assert again.status_code == 409
    missing = await client.post(
        "/api/admin/openings/no-such-opening/take-down", headers=ADMIN, json={"reason": reason}
    )
    assert missing.status_code == 404


async def test_operators_see_the_newest_openings_of_every_employer(
    harness: Harness, listed: Listed
) -> None:
    client, _, _, opening_id = listed
    answer = await client.get("/api/admin/openings", headers=ADMIN, params={"limit": 5})
    assert [o["opening_id"] for o in answer.json()] == [opening_id]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/admin/employers/{employer_id}/reject", {"reason": "x"}),
        ("/api/admin/employers/{employer_id}/suspend", {"reason": "x"}),
        ("/api/admin/employers/{employer_id}/reinstate", None),
        ("/api/admin/openings/{opening_id}/take-down", {"reason": "x"}),
    ],
)
async def test_decisions_need_the_operator_token_and_a_reason(
    harness: Harness, listed: Listed, path: str, body: dict[str, str] | None
) -> None:
    client, employer_id, bearer, opening_id = listed
    url = path.format(employer_id=employer_id, opening_id=opening_id)
    for credentials in ({}, bearer, {"Authorization": "Bearer wrong"}):
        assert (await client.post(url, headers=credentials, json=body)).status_code == 401
    if body is not None:
        for bad in ({}, {"reason": "   "}, {"reason": "x" * 1001}, {"reason": "a\x00b"}):
            refused = await client.post(url, headers=ADMIN, json=bad)
            assert refused.status_code == 422, bad
    assert len(harness.uow.events) == 3  # registered, approved, posted
