"""The pages a job seeker uses: forms built from the taxonomy, field errors, buttons that POST."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import httpx

from hwcollab_common.tokens import Purpose


def _token(client: httpx.AsyncClient, purpose: Purpose, subscriber_id: str) -> str:
    links = client._transport.app.state.links  # type: ignore[attr-defined]
    return str(links.token(purpose, subscriber_id))


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _form(**changes: Any) -> bytes:
    fields: list[tuple[str, str]] = [
        ("email", "riley@example.org"),
        ("first_name", "Riley"),
        ("roles", "direct_support"),
        ("roles", "care_manager"),
        ("settings", "behavioral_health"),
        ("zip", "60601"),
        ("radius_miles", "15"),
        ("frequency", "weekly"),
        ("digest_hour", "18"),
        ("digest_weekday", "sat"),
        ("min_pay_hourly", ""),
        ("career_info", "true"),
    ]
    fields = [(k, v) for k, v in fields if k not in changes]
    for key, value in changes.items():
        fields.extend((key, v) for v in (value if isinstance(value, list) else [value]))
    return urlencode(fields).encode()


async def test_sign_up_page_is_built_from_the_taxonomy_and_accessible(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/")
    assert page.status_code == 200
    html = page.text
    assert '<html lang="en"' in html
    assert '<main id="main"' in html
    assert 'name="viewport"' in html
    for family in ("Care Coordination", "Care Management", "Direct Support"):
        assert f"<legend>{family}</legend>" in html
    assert "bridge social and clinical care" in html
    assert "chronic and complex conditions" in html
    for code in ("care_coordination", "rn_case_manager", "medical", "ccm", "per_diem", "weekly"):
        assert f'value="{code}"' in html
    labels = set(re.findall(r'<label for="([^"]+)"', html))
    inputs = set(re.findall(r'<(?:input|select)[^>]* id="([^"]+)"', html))
    assert inputs <= labels  # every control has a label
    assert '<option value="8" selected>08:00</option>' in html
    assert 'value="mon" selected' in html


async def test_invalid_form_is_re_rendered_with_errors_tied_to_fields(
    client: httpx.AsyncClient, store: Any
) -> None:
    page = await client.post("/", content=_form(email="nope", roles=[], zip="99999"), headers=FORM)
    assert page.status_code == 422
    html = page.text
    assert 'role="alert"' in html
    assert 'aria-describedby="field-email-hint field-email-error"' in html
    assert 'id="field-email-error"' in html
    assert 'id="field-zip" name="zip" value="99999"' in html
    assert "99999 is not a US ZIP code we know" in html
    assert "Choose at least one role or family." in html
    assert 'value="behavioral_health" checked' in html  # what was chosen is kept
    assert store.rows == {}


async def test_sign_up_confirm_and_preferences_by_form(
    client: httpx.AsyncClient, store: Any
) -> None:
    done = await client.post("/", content=_form(), headers=FORM)
    assert done.status_code == 200
    assert "Check your inbox" in done.text
    subscriber = store.only()
    assert subscriber.preferences.roles == ("direct_support", "care_manager")
    assert subscriber.preferences.remote_ok is False  # unticked box
    assert subscriber.preferences.digest_hour == 18
    token = _token(client, Purpose.CONFIRM, subscriber.subscriber_id)
    confirm_page = await client.get("/confirm", params={"token": token})
    assert confirm_page.status_code == 200
    assert "<button" in confirm_page.text
    assert "Hello Riley!" in confirm_page.text
    assert store.only().status == "pending"  # mail scanners prefetch GETs
    confirmed = await client.post("/confirm", params={"token": token})
    assert "Thanks, Riley!" in confirmed.text
    assert store.only().status == "active"
    again = await client.get("/confirm", params={"token": token})
    assert "You are already subscribed" in again.text

    manage = _token(client, Purpose.MANAGE, subscriber.subscriber_id)
    page = await client.get("/preferences", params={"token": manage})
    assert "Hello, Riley" in page.text
    assert 'value="sat" selected' in page.text
    saved = await client.post(
        "/preferences",
        params={"token": manage},
        content=_form(email=[], frequency="daily", remote_ok="true"),
        headers=FORM,
    )
    assert saved.status_code == 200
    assert "Your preferences are saved." in saved.text
    assert store.only().preferences.frequency == "daily"
    bad = await client.post(
        "/preferences",
        params={"token": manage},
        content=_form(email=[], radius_miles="0"),
        headers=FORM,
    )
    assert bad.status_code == 422
    assert 'id="field-radius_miles-error"' in bad.text


async def test_pause_and_resume_pages_post_buttons(client: httpx.AsyncClient, store: Any) -> None:
    await client.post("/", content=_form(), headers=FORM)
    subscriber_id = store.only().subscriber_id
    await client.post("/confirm", params={"token": _token(client, Purpose.CONFIRM, subscriber_id)})
    manage = _token(client, Purpose.MANAGE, subscriber_id)
    page = await client.get("/pause", params={"token": manage})
    assert "Pause my alerts" in page.text
    assert store.only().status == "active"
    paused = await client.post("/pause", params={"token": manage})
    assert paused.status_code == 200
    assert store.only().status == "paused"
    assert 'action="/resume?token=' in paused.text
    resumed = await client.post("/resume", params={"token": manage})
    assert resumed.status_code == 200
    assert store.only().status == "active"


async def test_link_request_page(client: httpx.AsyncClient) -> None:
    assert (await client.get("/preferences/link")).status_code == 200
    bad = await client.post("/preferences/link", data={"email": "x"})
    assert bad.status_code == 422
    assert 'aria-invalid="true"' in bad.text
    ok = await client.post("/preferences/link", data={"email": "who@example.org"})
    assert ok.status_code == 200
    assert "Check your inbox" in ok.text


async def test_shared_stylesheets_are_served(client: httpx.AsyncClient) -> None:
    pico = await client.get("/assets/hwcollab/pico.min.css")
    own = await client.get("/assets/hwcollab/hwcollab.css")
    assert pico.status_code == 200
    assert "Pico CSS" in pico.text[:300]
    assert ":focus-visible" in own.text


async def test_preferences_page_follows_the_status(client: httpx.AsyncClient, store: Any) -> None:
    await client.post("/", content=_form(), headers=FORM)
    subscriber_id = store.only().subscriber_id
    await client.post("/confirm", params={"token": _token(client, Purpose.CONFIRM, subscriber_id)})
    manage = _token(client, Purpose.MANAGE, subscriber_id)
    active = (await client.get("/preferences", params={"token": manage})).text
    assert 'action="/pause?token=' in active
    assert 'href="/unsubscribe?token=' in active
    assert 'href="/erase?token=' in active
    await client.post("/pause", params={"token": manage})
    paused = (await client.get("/preferences", params={"token": manage})).text
    assert "Your alerts are <strong>paused</strong>" in paused
    assert 'id="field-paused" name="paused" value="true" checked' in paused
    assert 'action="/resume?token=' in paused
    store.rows[subscriber_id] = store.only().changed(now=store.only().updated_at, status="bounced")
    bounced = (await client.get("/preferences", params={"token": manage})).text
    assert "could not be delivered" in bounced
    assert 'name="paused"' not in bounced
    erase_page = await client.get("/erase", params={"token": manage})
    assert "Delete my data" in erase_page.text
    assert subscriber_id in store.rows  # only the button's POST erases
    erased = await client.post("/erase", params={"token": manage})
    assert "Your data is deleted" in erased.text
    assert store.rows == {}
    gone = await client.get("/preferences", params={"token": manage})
    assert gone.status_code == 404
