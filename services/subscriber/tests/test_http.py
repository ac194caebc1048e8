"""The JSON API and the pages, through the real app wired to the in-memory store."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx

from hwcollab_common.clock import FixedClock
from hwcollab_common.tokens import Purpose


def _token(app_client: httpx.AsyncClient, purpose: Purpose, subscriber_id: str) -> str:
    links = app_client._transport.app.state.links  # type: ignore[attr-defined]
    return str(links.token(purpose, subscriber_id))


async def _confirmed(client: httpx.AsyncClient, store: Any, helpers: Any) -> str:
    assert (await client.post("/api/subscribers", json=helpers.sign_up_body())).status_code == 202
    subscriber_id = str(store.only().subscriber_id)
    token = _token(client, Purpose.CONFIRM, subscriber_id)
    answer = await client.post("/api/subscribers/confirm", json={"token": token})
    assert answer.json() == {"subscriber_id": subscriber_id, "status": "active"}
    return subscriber_id


async def test_sign_up_answers_the_same_for_new_pending_and_active_addresses(
    client: httpx.AsyncClient, store: Any, helpers: Any
) -> None:
    new = await client.post("/api/subscribers", json=helpers.sign_up_body())
    pending = await client.post("/api/subscribers", json=helpers.sign_up_body())
    subscriber_id = str(store.only().subscriber_id)
    await client.post(
        "/api/subscribers/confirm",
        json={"token": _token(client, Purpose.CONFIRM, subscriber_id)},
    )
    active = await client.post("/api/subscribers", json=helpers.sign_up_body())
    assert {new.status_code, pending.status_code, active.status_code} == {202}
    assert new.content == pending.content == active.content
    assert len(store.rows) == 1


async def test_invalid_sign_up_is_422_naming_fields_and_allowed_codes(
    client: httpx.AsyncClient, helpers: Any
) -> None:
    answer = await client.post(
        "/api/subscribers",
        json=helpers.sign_up_body(zip="99999", roles=["nurse"], radius_miles=300, email="x@"),
    )
    assert answer.status_code == 422
    problems = {item["loc"][-1]: item["msg"] for item in answer.json()["detail"]}
    assert set(problems) == {"zip", "roles", "radius_miles", "email"}
    assert "care_coordination" in problems["roles"]
    assert "99999" in problems["zip"]


async def test_preferences_round_trip_and_pause_through_the_api(
    client: httpx.AsyncClient, store: Any, helpers: Any
) -> None:
    subscriber_id = await _confirmed(client, store, helpers)
    token = _token(client, Purpose.MANAGE, subscriber_id)
    view = (await client.get("/api/preferences", params={"token": token})).json()
    assert view["email"] == "Jordan.Lee@example.org"
    assert view["status"] == "active"
    assert view["digest_weekday"] == "tue"
    changed = await client.put(
        "/api/preferences",
        params={"token": token},
        json=helpers.preferences_body(frequency="weekly", paused=True),
    )
    assert changed.status_code == 200
    assert changed.json()["status"] == "paused"
    assert changed.json()["frequency"] == "weekly"
    refused = await client.put(
        "/api/preferences", params={"token": token}, json=helpers.sign_up_body()
    )
    assert refused.status_code == 422  # the address cannot be changed here


async def test_bad_tokens_are_400_or_401_never_500(
    client: httpx.AsyncClient, store: Any, helpers: Any, clock: FixedClock
) -> None:
    subscriber_id = await _confirmed(client, store, helpers)
    unsubscribe = _token(client, Purpose.UNSUBSCRIBE, subscriber_id)
    manage = _token(client, Purpose.MANAGE, subscriber_id)
    wrong = await client.get("/api/preferences", params={"token": unsubscribe})
    tampered = await client.get("/api/preferences", params={"token": manage + "x"})
    garbage = await client.post("/api/subscribers/confirm", json={"token": "%%%"})
    page = await client.get("/preferences", params={"token": "nonsense"})
    assert (wrong.status_code, tampered.status_code, garbage.status_code) == (400, 400, 400)
    assert wrong.json()["detail"].startswith("This link is not valid")
    assert page.status_code == 400
    assert "This link is not valid" in page.text
    clock.advance(timedelta(days=91))
    expired = await client.get("/api/preferences", params={"token": manage})
    expired_page = await client.get("/pause", params={"token": manage})
    assert expired.status_code == 401
    assert expired_page.status_code == 401
    assert "expired" in expired_page.text


async def test_one_click_unsubscribe_and_erasure(
    client: httpx.AsyncClient, store: Any, helpers: Any
) -> None:
    subscriber_id = await _confirmed(client, store, helpers)
    token = _token(client, Purpose.UNSUBSCRIBE, subscriber_id)
    page = await client.get("/unsubscribe", params={"token": token})
    assert page.status_code == 200
    assert store.only().status == "active"  # a GET never unsubscribes
    assert re.search(r'<form method="post" action="/unsubscribe\?token=', page.text)
    for _ in range(2):
        done = await client.post(
            "/unsubscribe",
            params={"token": token},
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert done.status_code == 200
    assert store.only().status == "unsubscribed"
    again = await client.get("/unsubscribe", params={"token": token})
    assert "You are unsubscribed" in again.text
    assert "<button" not in again.text
    (event,) = store.events_of("subscriber.unsubscribed")
    assert event.payload.reason == "one_click"
    manage = _token(client, Purpose.MANAGE, subscriber_id)
    assert (await client.delete("/api/subscribers", params={"token": manage})).status_code == 204
    assert store.rows == {}
    assert (await client.get("/api/preferences", params={"token": manage})).status_code == 404


async def test_rate_limits_answer_429_with_retry_after(
    store: Any, clock: FixedClock, helpers: Any
) -> None:
    app, _ = helpers.make_app(store, clock, signup_rate_limit="2/minute")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answers = [
            await client.post(
                "/api/subscribers", json=helpers.sign_up_body(email=f"p{i}@example.org")
            )
            for i in range(3)
        ]
        assert [a.status_code for a in answers] == [202, 202, 429]
        assert int(answers[-1].headers["Retry-After"]) >= 1
        page = await client.post("/", data={"email": "q@example.org"})
        assert page.status_code in (422, 429)  # invalid forms are answered before the limit
    app, _ = helpers.make_app(store, clock, link_address_rate_limit="1/hour")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        first = await client.post("/api/preferences/link", json={"email": "a@example.org"})
        second = await client.post("/api/preferences/link", json={"email": "A@example.org"})
        other = await client.post("/api/preferences/link", json={"email": "b@example.org"})
        assert (first.status_code, second.status_code, other.status_code) == (202, 429, 202)


async def test_oversized_bodies_are_refused(client: httpx.AsyncClient, helpers: Any) -> None:
    body = helpers.sign_up_body(first_name="x" * 40_000)
    assert (await client.post("/api/subscribers", json=body)).status_code == 413


async def test_openapi_describes_every_endpoint_with_examples(client: httpx.AsyncClient) -> None:
    assert (await client.get("/docs")).status_code == 200
    spec = (await client.get("/openapi.json")).json()
    assert {
        "/api/subscribers",
        "/api/subscribers/confirm",
        "/api/preferences",
        "/api/preferences/link",
        "/api/taxonomy",
    } <= set(spec["paths"])
    assert set(spec["paths"]["/api/subscribers"]) == {"post", "delete"}
    assert set(spec["paths"]["/api/preferences"]) == {"get", "put"}
    assert set(spec["paths"]["/unsubscribe"]) == {"post"}  # one-click; the pages stay out
    sign_up = spec["paths"]["/api/subscribers"]["post"]["requestBody"]["content"]
    assert sign_up["application/json"]["examples"]["care coordinator"]["value"]["zip"] == "01608"


async def test_taxonomy_is_served(client: httpx.AsyncClient) -> None:
    taxonomy = (await client.get("/api/taxonomy")).json()
    assert [f["code"] for f in taxonomy["families"]] == [
        "care_coordination",
        "care_management",
        "direct_support",
    ]
