"""Find a Local Employer and the job board against real MongoDB ``$geoNear``: known ZIP distances,
nearest first, radius, filters, pagination and remote openings."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from hwcollab_common.settings import DEV_ADMIN_TOKEN
from hwcollab_employer.app import create_app
from hwcollab_employer.settings import Settings

pytestmark = pytest.mark.integration

PASSWORD = "integration passphrase"

# Organizations near Boston (ZIP centroid distances from 02108 in miles).
PLACES = {
    "Framingham": ("01701", "behavioral_health", 18.7),
    "Worcester": ("01608", "medical", 38.0),
    "Providence": ("02903", "social_service", 41.2),
    "Springfield": ("01103", "medical", 79.7),
    "Hartford": ("06103", "medical", 92.0),
}


@pytest.fixture(scope="module")
async def board(kafka_bootstrap: str, mongo_url: str) -> AsyncIterator[dict[str, Any]]:
    """One employer per place, each with one opening; Hartford's is remote. Approval: auto."""
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        mongodb_url=mongo_url,
        mongodb_database=f"test_employer_geo_{uuid.uuid4().hex[:12]}",
        employer_approval="auto",
        outbox_poll_seconds=0.1,
        login_rate_limit="1000/minute",
        signup_rate_limit="1000/hour",
        write_rate_limit="1000/minute",
    )
    app = create_app(settings)
    async with (
        LifespanManager(app, startup_timeout=60, shutdown_timeout=60),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        openings: dict[str, str] = {}
        for city, (zip_code, setting, _) in PLACES.items():
            email = f"jobs@{city.lower()}.example"
            created = await client.post(
                "/api/admin/employers",  # as an operator: verified at once
                headers={"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"},
                json={
                    "organization_name": f"{city} Community Care",
                    "contact_email": email,
                    "password": PASSWORD,
                    "description": f"Care coordination in and around {city}.",
                    "address": {"city": city, "state": "MA", "zip": zip_code},
                    "settings": [setting],
                },
            )
            assert created.status_code == 201, created.text
            token = await client.post(
                "/api/auth/token", json={"email": email, "password": PASSWORD}
            )
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            remote = city == "Hartford"
            role = "direct_support_professional" if city == "Providence" else "care_coordinator"
            posted = await client.post(
                "/api/openings",
                headers=headers,
                json={
                    "title": f"{city} coordinator",
                    "role": role,
                    "setting": setting,
                    "employment_type": "full_time",
                    "remote": remote,
                    "zip": None if remote else zip_code,
                    "apply_url": f"https://{city.lower()}.example/jobs/1",
                },
            )
            assert posted.status_code == 201, posted.text
            openings[city] = posted.json()["opening_id"]
        yield {"client": client, "openings": openings}


def _names(results: list[dict[str, Any]]) -> list[str]:
    return [item["organization_name"].removesuffix(" Community Care") for item in results]


async def test_worcester_is_about_39_miles_from_boston(board: dict[str, Any]) -> None:
    found = await board["client"].get(
        "/api/directory", params={"zip": "02108", "radius_miles": 50, "q": "Worcester"}
    )
    [worcester] = found.json()["results"]
    assert worcester["distance_miles"] == pytest.approx(39, abs=2)
    assert worcester["open_openings"] == 1


async def test_directory_lists_nearest_first_within_the_radius(board: dict[str, Any]) -> None:
    found = await board["client"].get("/api/directory", params={"zip": "02108", "radius_miles": 85})
    body = found.json()
    assert _names(body["results"]) == ["Framingham", "Worcester", "Providence", "Springfield"]
    distances = [item["distance_miles"] for item in body["results"]]
    assert distances == pytest.approx([place[2] for place in PLACES.values()][:4], abs=1.0)
    assert body["total"] == 4


async def test_directory_filters_by_setting_role_and_words(board: dict[str, Any]) -> None:
    client = board["client"]
    near = {"zip": "02108", "radius_miles": 250}
    by_setting = await client.get("/api/directory", params=near | {"setting": "medical"})
    by_role = await client.get("/api/directory", params=near | {"role": "direct_support"})
    by_words = await client.get("/api/directory", params=near | {"q": "around spring"})
    assert _names(by_setting.json()["results"]) == ["Worcester", "Springfield", "Hartford"]
    assert _names(by_role.json()["results"]) == ["Providence"]
    assert _names(by_words.json()["results"]) == ["Springfield"]


async def test_directory_pages(board: dict[str, Any]) -> None:
    client = board["client"]
    params = {"zip": "02108", "radius_miles": 250, "page_size": 2}
    pages = [
        (await client.get("/api/directory", params=params | {"page": page})).json()
        for page in (1, 2, 3)
    ]
    assert [_names(page["results"]) for page in pages] == [
        ["Framingham", "Worcester"],
        ["Providence", "Springfield"],
        ["Hartford"],
    ]
    assert {page["total"] for page in pages} == {5}


async def test_job_board_is_nearest_first_and_adds_remote_openings(board: dict[str, Any]) -> None:
    client = board["client"]
    near = {"zip": "02108", "radius_miles": 50}
    with_remote = (await client.get("/api/openings", params=near)).json()
    without_remote = (await client.get("/api/openings", params=near | {"remote": "false"})).json()
    titles = [item["title"] for item in with_remote["results"]]
    assert titles == [
        "Framingham coordinator",
        "Worcester coordinator",
        "Providence coordinator",
        "Hartford coordinator",
    ]
    assert with_remote["results"][-1]["remote"] is True
    assert with_remote["results"][-1]["distance_miles"] is None
    assert with_remote["results"][1]["distance_miles"] == pytest.approx(38.0, abs=1.0)
    assert without_remote["total"] == 3
    second_page = (
        await client.get("/api/openings", params=near | {"page_size": 3, "page": 2})
    ).json()
    assert [item["title"] for item in second_page["results"]] == ["Hartford coordinator"]


async def test_job_board_filters_by_role_family_and_words(board: dict[str, Any]) -> None:
    found = await board["client"].get(
        "/api/openings", params={"zip": "02108", "radius_miles": 250, "role": "care_coordination"}
    )
    titles = [item["title"] for item in found.json()["results"]]
    assert "Providence coordinator" not in titles
    assert titles[0] == "Framingham coordinator"
    by_words = await board["client"].get(
        "/api/openings", params={"zip": "02108", "radius_miles": 250, "q": "providence"}
    )
    assert [item["title"] for item in by_words.json()["results"]] == ["Providence coordinator"]
