"""The operator page over in-memory fakes: signing in with the operator token, CSRF, and each
decision's button."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from .conftest import ADMIN_HEADERS, BodyFactory, Harness

ADMIN_TOKEN = "test-admin-token"
PASSWORD = "a very long passphrase"


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the form carries a CSRF token"
    return match.group(1)


async def _sign_in(client: Any, token: str = ADMIN_TOKEN) -> Any:
    page = await client.get("/operators")
    return await client.post(
        "/operators/login", data={"csrf_token": _csrf(page.text), "token": token}
    )


async def _employer(client: Any, signup: Any, email: str) -> tuple[str, dict[str, str]]:
    created = await client.post("/api/admin/employers", headers=ADMIN_HEADERS, json=signup(email))
    token = await client.post("/api/auth/token", json={"email": email, "password": PASSWORD})
    return created.json()["employer_id"], {
        "Authorization": f"Bearer {token.json()['access_token']}"
    }


@pytest.fixture
async def operator(manual_harness: Harness) -> Any:
    async with manual_harness.client() as client:
        assert (await _sign_in(client)).status_code == 303
        yield client


async def _decide(client: Any, url: str, **form: str) -> Any:
    page = await client.get("/operators")
    return await client.post(url, data={"csrf_token": _csrf(page.text), **form})


async def test_the_page_asks_for_the_operator_token(manual_harness: Harness) -> None:
    async with manual_harness.client() as client:
        page = await client.get("/operators")
        assert page.status_code == 200
        assert 'name="token"' in page.text
        wrong = await _sign_in(client, token="not-it")
        assert wrong.status_code == 401
        assert "not the operator token" in wrong.text
        right = await _sign_in(client)
        assert (right.status_code, right.headers["location"]) == (303, "/operators")
        cookie = right.headers["set-cookie"].lower()
        for attribute in ("httponly", "samesite=strict", "path=/operators"):
            assert attribute in cookie
        assert "Employers awaiting approval" in (await client.get("/operators")).text


async def test_operators_approve_and_reject_pending_employers(
    manual_harness: Harness, operator: httpx.AsyncClient, signup: BodyFactory
) -> None:
    first, _ = await _employer(operator, signup, "hr@first.example")
    second, bearer = await _employer(operator, signup, "hr@second.example")
    page = (await operator.get("/operators")).text
    assert f'id="pending-{first}"' in page
    assert f'id="pending-{second}"' in page

    approved = await _decide(operator, f"/operators/employers/{first}/approve")
    assert (approved.status_code, approved.headers["location"]) == (
        303,
        "/operators?done=approved",
    )
    no_reason = await _decide(operator, f"/operators/employers/{second}/reject", reason=" ")
    assert no_reason.status_code == 422
    rejected = await _decide(
        operator, f"/operators/employers/{second}/reject", reason="Not a care employer."
    )
    assert rejected.status_code == 303
    statuses = {e.employer_id: e.status for e in manual_harness.repository.employers.values()}
    assert statuses == {first: "approved", second: "rejected"}
    me = (await operator.get("/api/employers/me", headers=bearer)).json()
    assert me["moderation_reason"] == "Not a care employer."
    assert "No employer is waiting" in (await operator.get("/operators")).text


async def test_operators_suspend_reinstate_and_take_down(
    manual_harness: Harness,
    operator: httpx.AsyncClient,
    signup: BodyFactory,
    opening_json: BodyFactory,
) -> None:
    employer_id, bearer = await _employer(operator, signup, "hr@listed.example")
    await manual_harness.service.approve(employer_id)
    posted = await operator.post("/api/openings", headers=bearer, json=opening_json())
    opening_id = posted.json()["opening_id"]
    page = (await operator.get("/operators")).text
    assert f'id="opening-{opening_id}"' in page

    taken = await _decide(
        operator, f"/operators/openings/{opening_id}/take-down", reason="Misleading pay."
    )
    assert taken.headers["location"] == "/operators?done=taken-down"
    assert manual_harness.repository.openings[opening_id].takedown_reason == "Misleading pay."

    suspended = await _decide(
        operator, f"/operators/employers/{employer_id}/suspend", reason="Under review."
    )
    assert suspended.status_code == 303
    page = (await operator.get("/operators")).text
    assert f'id="suspended-{employer_id}"' in page
    assert "Under review." in page
    reinstated = await _decide(operator, f"/operators/employers/{employer_id}/reinstate")
    assert reinstated.headers["location"] == "/operators?done=reinstated"
    assert manual_harness.repository.employers[employer_id].status == "approved"
    again = await _decide(operator, f"/operators/employers/{employer_id}/reinstate")
    assert again.status_code == 409


async def test_decisions_need_an_operator_session_and_its_csrf_token(
    manual_harness: Harness, signup: BodyFactory
) -> None:
    async with manual_harness.client() as client:
        employer_id, _ = await _employer(client, signup, "hr@pending.example")
        url = f"/operators/employers/{employer_id}/approve"
        # An employer signed in on its own pages is no operator.
        login = await client.get("/login")
        await client.post(
            "/login",
            data={
                "csrf_token": _csrf(login.text),
                "email": "hr@pending.example",
                "password": PASSWORD,
            },
        )
        dashboard = await client.get("/dashboard")
        refused = await client.post(url, data={"csrf_token": _csrf(dashboard.text)})
        assert (refused.status_code, refused.headers["location"]) == (303, "/operators")
        bearer = await client.post(url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert (bearer.status_code, bearer.headers["location"]) == (303, "/operators")
        assert (await _sign_in(client)).status_code == 303
        forged = await client.post(url, data={"csrf_token": "forged"})
        assert forged.status_code == 403
        assert manual_harness.repository.employers[employer_id].status == "pending"
        page = await client.get("/operators")
        signed_out = await client.post("/operators/logout", data={"csrf_token": _csrf(page.text)})
        assert signed_out.status_code == 303
        assert 'name="token"' in (await client.get("/operators")).text
