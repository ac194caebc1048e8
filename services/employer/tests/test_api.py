"""The JSON API over in-memory fakes: authentication, the authorization matrix, validation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from .conftest import ADMIN_HEADERS, BodyFactory, Harness

ADMIN = {"Authorization": "Bearer test-admin-token"}


async def _register(client: httpx.AsyncClient, signup: BodyFactory, email: str) -> str:
    response = await client.post("/api/admin/employers", headers=ADMIN_HEADERS, json=signup(email))
    assert response.status_code == 201, response.text
    employer_id: str = response.json()["employer_id"]
    return employer_id


PASSWORD = "a very long passphrase"


async def _token(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, str]:
    response = await client.post("/api/auth/token", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
async def world(
    harness: Harness, signup: BodyFactory, opening_json: BodyFactory
) -> AsyncIterator[dict[str, Any]]:
    """Two employers, one opening of the first, a key of the first; bearer headers for each."""
    async with harness.client() as client:
        owner_id = await _register(client, signup, "owner@one.example")
        await _register(client, signup, "other@two.example")
        owner = await _token(client, "owner@one.example")
        other = await _token(client, "other@two.example")
        posted = await client.post("/api/openings", headers=owner, json=opening_json())
        assert posted.status_code == 201, posted.text
        key = await client.post("/api/employers/me/api-keys", headers=owner, json={"name": "ats"})
        yield {
            "client": client,
            "owner": owner,
            "other": other,
            "anonymous": {},
            "admin": ADMIN,
            "owner_id": owner_id,
            "opening_id": posted.json()["opening_id"],
            "key_id": key.json()["key_id"],
            "body": opening_json,
        }


def _write_requests(world: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any] | None]]:
    oid, kid = world["opening_id"], world["key_id"]
    return {
        "patch profile": ("PATCH", "/api/employers/me", {"description": "New words"}),
        "create key": ("POST", "/api/employers/me/api-keys", {"name": "x"}),
        "revoke key": ("DELETE", f"/api/employers/me/api-keys/{kid}", None),
        "post opening": ("POST", "/api/openings", world["body"]()),
        "patch opening": ("PATCH", f"/api/openings/{oid}", {"title": "Changed"}),
        "opening stats": ("GET", f"/api/openings/{oid}/stats", None),
        "close opening": ("POST", f"/api/openings/{oid}/close", None),
        "approve": ("POST", f"/api/admin/employers/{world['owner_id']}/approve", None),
    }


# who → the status each endpoint answers them (the owner acting on their own things).
MATRIX = {
    "owner": {
        "patch profile": 200,
        "create key": 201,
        "revoke key": 204,
        "post opening": 201,
        "patch opening": 200,
        "opening stats": 200,
        "close opening": 200,
        "approve": 401,
    },
    "other": {
        "patch profile": 200,  # their own profile
        "create key": 201,  # their own key
        "revoke key": 404,
        "post opening": 201,  # their own opening
        "patch opening": 403,
        "opening stats": 403,
        "close opening": 403,
        "approve": 401,
    },
    "anonymous": dict.fromkeys(
        [
            "patch profile",
            "create key",
            "revoke key",
            "post opening",
            "patch opening",
            "opening stats",
            "close opening",
            "approve",
        ],
        401,
    ),
    "admin": {
        "patch profile": 401,
        "create key": 401,
        "revoke key": 401,
        "post opening": 401,
        "patch opening": 401,
        "opening stats": 401,
        "close opening": 401,
        "approve": 200,
    },
}


@pytest.mark.parametrize("who", list(MATRIX))
async def test_authorization_matrix(world: dict[str, Any], harness: Harness, who: str) -> None:
    client = world["client"]
    for name, (method, url, body) in _write_requests(world).items():
        response = await client.request(method, url, headers=world[who], json=body)
        assert response.status_code == MATRIX[who][name], (who, name, response.text)
    opening = harness.repository.openings[world["opening_id"]]
    if who != "owner":
        assert opening.is_open
        assert opening.fields.title == "RN Care Manager"
        assert harness.repository.api_keys_by_id[world["key_id"]].revoked_at is None


async def test_login_failures_answer_one_generic_401(harness: Harness, signup: BodyFactory) -> None:
    async with harness.client() as client:
        await _register(client, signup, "owner@one.example")
        wrong = await client.post(
            "/api/auth/token", json={"email": "owner@one.example", "password": "not the password"}
        )
        unknown = await client.post(
            "/api/auth/token", json={"email": "nobody@x.example", "password": "whatever it is"}
        )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"detail": "Incorrect email or password."}


async def test_logins_are_rate_limited(harness: Harness, signup: BodyFactory) -> None:
    async with harness.client() as client:
        await _register(client, signup, "owner@one.example")
        statuses = [
            (
                await client.post(
                    "/api/auth/token", json={"email": "owner@one.example", "password": "guess"}
                )
            ).status_code
            for _ in range(6)
        ]
        blocked = await client.post(
            "/api/auth/token",
            json={"email": "owner@one.example", "password": "a very long passphrase"},
        )
    assert statuses == [401] * 5 + [429]
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) >= 1


async def test_bearer_tokens_expire(harness: Harness, signup: BodyFactory) -> None:
    async with harness.client() as client:
        await _register(client, signup, "owner@one.example")
        headers = await _token(client, "owner@one.example")
        assert (await client.get("/api/employers/me", headers=headers)).status_code == 200
        harness.clock.advance(timedelta(hours=1, seconds=1))
        expired = await client.get("/api/employers/me", headers=headers)
    assert expired.status_code == 401
    assert expired.headers["WWW-Authenticate"] == "Bearer"


async def test_api_keys_are_shown_once_work_as_bearer_and_can_be_revoked(
    harness: Harness, signup: BodyFactory
) -> None:
    async with harness.client() as client:
        employer_id = await _register(client, signup, "owner@one.example")
        headers = await _token(client, "owner@one.example")
        created = await client.post("/api/employers/me/api-keys", headers=headers, json={})
        secret = created.json()["api_key"]
        as_key = {"Authorization": f"Bearer {secret}"}
        me = await client.get("/api/employers/me", headers=as_key)
        listed = await client.get("/api/employers/me/api-keys", headers=headers)
        await client.delete(
            f"/api/employers/me/api-keys/{created.json()['key_id']}", headers=headers
        )
        revoked = await client.get("/api/employers/me", headers=as_key)
        forged = await client.get(
            "/api/employers/me", headers={"Authorization": f"Bearer {secret[:-2]}xx"}
        )
    assert me.json()["employer_id"] == employer_id
    assert secret not in listed.text
    assert listed.json()[0]["prefix"] in secret
    stored = next(iter(harness.repository.api_keys_by_id.values()))
    assert secret not in repr(stored)
    assert revoked.status_code == forged.status_code == 401


async def test_an_operator_creates_an_account_with_201_id_and_status(
    manual_harness: Harness, signup: BodyFactory
) -> None:
    async with manual_harness.client() as client:
        anonymous = await client.post("/api/admin/employers", json=signup())
        response = await client.post("/api/admin/employers", headers=ADMIN_HEADERS, json=signup())
        again = await client.post("/api/admin/employers", headers=ADMIN_HEADERS, json=signup())
        short = await client.post(
            "/api/admin/employers",
            headers=ADMIN_HEADERS,
            json=signup("x@y.example", password="short"),
        )
    assert anonymous.status_code == 401
    assert response.status_code == 201
    assert set(response.json()) == {"employer_id", "status"}
    assert response.json()["status"] == "pending"
    assert again.status_code == 409
    assert short.status_code == 422
    assert short.json()["detail"][0]["loc"] == ["body", "password"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"title": "x" * 121}, "title"),
        ({"title": "Care\nManager"}, "title"),
        ({"description": "x" * 5001}, "description"),
        ({"role": "nurse"}, "role"),
        ({"setting": "hospital"}, "setting"),
        ({"required_credentials": ["md"]}, "required_credentials"),
        ({"employment_type": "seasonal"}, "employment_type"),
        ({"zip": "00000"}, "zip"),
        ({"zip": None}, "zip"),
        ({"pay_min": 50, "pay_max": 40}, "pay_max"),
        ({"apply_url": "javascript:alert(1)"}, "apply_url"),
        ({"apply_url": "ftp://jobs.example/1"}, "apply_url"),
        ({"expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
    ],
)
async def test_opening_validation_names_the_field(
    harness: Harness,
    signup: BodyFactory,
    opening_json: BodyFactory,
    changes: dict[str, Any],
    field: str,
) -> None:
    async with harness.client() as client:
        await _register(client, signup, "owner@one.example")
        headers = await _token(client, "owner@one.example")
        response = await client.post("/api/openings", headers=headers, json=opening_json(**changes))
    assert response.status_code == 422, response.text
    assert ["body", field] in [item["loc"][:2] for item in response.json()["detail"]]
    assert harness.repository.openings == {}


async def test_remote_openings_need_no_zip(
    harness: Harness, signup: BodyFactory, opening_json: BodyFactory
) -> None:
    async with harness.client() as client:
        await _register(client, signup, "owner@one.example")
        headers = await _token(client, "owner@one.example")
        response = await client.post(
            "/api/openings", headers=headers, json=opening_json(zip=None, remote=True)
        )
    assert response.status_code == 201, response.text
    assert response.json()["remote"] is True
    assert response.json()["zip"] is None


async def test_pending_employers_are_not_listed_and_their_openings_are_hidden(
    manual_harness: Harness, signup: BodyFactory, opening_json: BodyFactory
) -> None:
    async with manual_harness.client() as client:
        employer_id = await _register(client, signup, "owner@one.example")
        headers = await _token(client, "owner@one.example")
        posted = await client.post("/api/openings", headers=headers, json=opening_json())
        opening_id = posted.json()["opening_id"]
        hidden = [
            (await client.get("/api/directory?zip=01608")).json()["total"],
            (await client.get("/api/openings?zip=01608")).json()["total"],
            (await client.get(f"/api/openings/{opening_id}")).status_code,
        ]
        await client.post(f"/api/admin/employers/{employer_id}/approve", headers=ADMIN)
        shown = [
            (await client.get("/api/directory?zip=01608")).json()["total"],
            (await client.get("/api/openings?zip=01608")).json()["total"],
            (await client.get(f"/api/openings/{opening_id}")).status_code,
        ]
    assert hidden == [0, 0, 404]
    assert shown == [1, 1, 200]


async def test_search_parameters_are_validated(harness: Harness) -> None:
    async with harness.client() as client:
        bad_zip = await client.get("/api/directory?zip=99999")
        bad_radius = await client.get("/api/openings?zip=01608&radius_miles=999")
        bad_role = await client.get("/api/openings?role=surgeon")
    assert bad_zip.status_code == bad_radius.status_code == bad_role.status_code == 422
    assert bad_zip.json()["detail"][0]["loc"] == ["query", "zip"]


async def test_suggest_maps_an_employer_title_to_a_role(harness: Harness) -> None:
    async with harness.client() as client:
        response = await client.get(
            "/api/taxonomy/suggest", params={"title": "Care Coordinator II"}
        )
        taxonomy = await client.get("/api/taxonomy")
    assert response.json() == {"role": "care_coordinator", "title": "Care Coordinator"}
    assert {r["code"] for r in taxonomy.json()["roles"]} >= {"direct_support_professional"}


async def test_the_app_takes_its_use_cases_from_the_overrides(
    harness: Harness, signup: BodyFactory
) -> None:
    """The harness's app is ``create_app``'s with ``get_service`` overridden: what the API does
    lands in the in-memory fakes, never in a database."""
    async with harness.client() as client:
        employer_id = await _register(client, signup, "hr@overrides.example")
    assert employer_id in harness.repository.employers
