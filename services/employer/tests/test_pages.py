"""The HTML pages over in-memory fakes: sign-up and sign-in with CSRF, the dashboard, escaping."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import httpx

from hwcollab_schemas.events import (
    EmployerAccountEmailRequested,
    OpeningClosed,
    OpeningPosted,
    OpeningUpdated,
)

from .conftest import Harness

PASSWORD = "a very long passphrase"


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the form carries a CSRF token"
    return match.group(1)


def _signup_form(csrf: str, **changes: str) -> dict[str, object]:
    form: dict[str, object] = {
        "csrf_token": csrf,
        "organization_name": "Worcester <Care> Partners",
        "contact_email": "hr@worcester-care.example",
        "password": PASSWORD,
        "website": "https://worcester-care.example",
        "phone": "508-555-0100",
        "description": "<script>alert('x')</script> We coordinate care.",
        "street": "1 Main St",
        "city": "Worcester",
        "state": "MA",
        "zip": "01608",
        "settings": ["medical", "behavioral_health"],
    }
    return form | changes


async def _sign_up(client: httpx.AsyncClient, harness: Harness, **changes: str) -> httpx.Response:
    """Sign up on the page, then confirm with the emailed link (as its button does)."""
    page = await client.get("/signup")
    sent = await client.post("/signup", data=_signup_form(_csrf(page.text), **changes))
    if sent.status_code != 202:
        return sent
    return await _confirm(client, harness)


def _verification_link(harness: Harness) -> str:
    emails = harness.uow.of_class(EmployerAccountEmailRequested)
    url = [e for e in emails if e.payload.kind == "verify_signup"][-1].payload.url
    return str(url).removeprefix("http://127.0.0.1:8002")


async def _confirm(client: httpx.AsyncClient, harness: Harness) -> httpx.Response:
    link = _verification_link(harness)
    page = await client.get(link)
    token = parse_qs(urlsplit(link).query)["token"][0]
    return await client.post("/verify-email", data={"csrf_token": _csrf(page.text), "token": token})


async def test_signup_signs_in_with_a_safe_session_cookie(harness: Harness) -> None:
    async with harness.client() as client:
        response = await _sign_up(client, harness)
        assert response.status_code == 303
        assert response.headers["location"] == "/dashboard"
        cookie = next(
            value
            for value in response.headers.get_list("set-cookie")
            if value.startswith("hwcollab_employer_session=")
        )
        dashboard = await client.get("/dashboard")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie  # the public URL of the tests is http
    assert dashboard.status_code == 200
    assert "Worcester &lt;Care&gt; Partners" in dashboard.text
    assert "Listed in" in dashboard.text


async def test_forms_without_the_csrf_token_are_refused(harness: Harness) -> None:
    async with harness.client() as client:
        await client.get("/signup")
        missing = await client.post("/signup", data=_signup_form(""))
        forged = await client.post("/signup", data=_signup_form("forged-token"))
    assert missing.status_code == forged.status_code == 403
    assert harness.repository.employers == {}


async def test_signup_errors_are_shown_next_to_the_fields(harness: Harness) -> None:
    async with harness.client() as client:
        response = await _sign_up(client, harness, zip="00000", password="short")
    assert response.status_code == 422
    assert 'id="field-zip-error"' in response.text
    assert 'id="field-password-error"' in response.text
    assert 'value="Worcester &lt;Care&gt; Partners"' in response.text
    assert harness.repository.employers == {}


async def test_pending_dashboard_says_it_awaits_approval(manual_harness: Harness) -> None:
    async with manual_harness.client() as client:
        await _sign_up(client, manual_harness)
        dashboard = await client.get("/dashboard")
    assert "Awaiting approval" in dashboard.text


async def test_dashboard_needs_a_session(harness: Harness) -> None:
    async with harness.client() as client:
        response = await client.get("/dashboard")
        new = await client.get("/dashboard/openings/new")
    assert response.status_code == new.status_code == 303
    assert response.headers["location"] == "/login"


async def test_login_page_failure_is_generic_and_success_signs_in(harness: Harness) -> None:
    async with harness.client() as client:
        await _sign_up(client, harness)
        await client.post("/logout", data={"csrf_token": _csrf((await client.get("/logout")).text)})
        assert (await client.get("/dashboard")).status_code == 303
        page = await client.get("/login")
        wrong = await client.post(
            "/login",
            data={
                "csrf_token": _csrf(page.text),
                "email": "hr@worcester-care.example",
                "password": "nope",
            },
        )
        right = await client.post(
            "/login",
            data={
                "csrf_token": _csrf(wrong.text),
                "email": "hr@worcester-care.example",
                "password": PASSWORD,
            },
        )
        dashboard = await client.get("/dashboard")
    assert wrong.status_code == 401
    assert "Incorrect email or password." in wrong.text
    assert right.status_code == 303
    assert dashboard.status_code == 200


async def _opening_form(client: httpx.AsyncClient, **changes: object) -> dict[str, object]:
    page = await client.get("/dashboard/openings/new")
    form: dict[str, object] = {
        "csrf_token": _csrf(page.text),
        "title": "RN Care Manager - Health Home",
        "role": "",
        "setting": "medical",
        "employment_type": "full_time",
        "required_credentials": ["rn"],
        "zip": "01608",
        "pay_min": "38",
        "pay_max": "46",
        "pay_period": "hour",
        "description": "Line one\n\n<b>not bold</b>",
        "apply_url": "https://worcester-care.example/jobs/1",
        "expires_on": "",
        "action": "save",
    }
    return form | changes


async def test_post_an_opening_from_the_dashboard_with_a_suggested_role(harness: Harness) -> None:
    async with harness.client() as client:
        await _sign_up(client, harness)
        suggested = await client.post(
            "/dashboard/openings/new", data=await _opening_form(client, action="suggest")
        )
        assert "Suggested role: Health Home Care Manager" in suggested.text
        assert '<option value="health_home_care_manager" selected>' in suggested.text
        missing_role = await client.post(
            "/dashboard/openings/new", data=await _opening_form(client)
        )
        assert missing_role.status_code == 422
        assert 'id="field-role-error"' in missing_role.text
        posted = await client.post(
            "/dashboard/openings/new",
            data=await _opening_form(client, role="health_home_care_manager"),
        )
        assert posted.status_code == 303
        [opening] = harness.repository.openings.values()
        public = await client.get(f"/openings/{opening.opening_id}")
        dashboard = await client.get("/dashboard")
    assert harness.uow.of_class(OpeningPosted)[0].payload.role == "health_home_care_manager"
    assert "&lt;b&gt;not bold&lt;/b&gt;" in public.text
    assert "<b>not bold</b>" not in public.text
    assert f'id="opening-{opening.opening_id}"' in dashboard.text


async def test_edit_and_close_from_the_dashboard(harness: Harness) -> None:
    async with harness.client() as client:
        await _sign_up(client, harness)
        await client.post(
            "/dashboard/openings/new", data=await _opening_form(client, role="care_manager")
        )
        [opening] = harness.repository.openings.values()
        edit_page = await client.get(f"/dashboard/openings/{opening.opening_id}/edit")
        form = await _opening_form(client, role="care_manager", title="Care Manager II")
        form["csrf_token"] = _csrf(edit_page.text)
        form["expires_on"] = opening.expires_at.date().isoformat()
        edited = await client.post(f"/dashboard/openings/{opening.opening_id}/edit", data=form)
        closed = await client.post(
            f"/dashboard/openings/{opening.opening_id}/close",
            data={"csrf_token": _csrf(edit_page.text)},
        )
    assert edited.status_code == closed.status_code == 303
    assert harness.uow.of_class(OpeningUpdated)[0].payload.title == "Care Manager II"
    assert harness.uow.of_class(OpeningUpdated)[0].payload.expires_at == opening.expires_at
    assert harness.uow.of_class(OpeningClosed)[0].payload.reason == "closed"


async def test_another_employer_cannot_edit_through_the_pages(harness: Harness) -> None:
    async with harness.client() as first, harness.client() as second:
        await _sign_up(first, harness)
        await first.post(
            "/dashboard/openings/new", data=await _opening_form(first, role="care_manager")
        )
        [opening] = harness.repository.openings.values()
        await _sign_up(second, harness, contact_email="jobs@other.example")
        page = await second.get(f"/dashboard/openings/{opening.opening_id}/edit")
        close = await second.post(
            f"/dashboard/openings/{opening.opening_id}/close",
            data={"csrf_token": _csrf((await second.get("/dashboard")).text)},
        )
    assert page.status_code == close.status_code == 403
    assert harness.repository.openings[opening.opening_id].is_open


async def test_directory_and_job_board_pages_list_nearest_first(harness: Harness) -> None:
    async with harness.client() as client:
        await _sign_up(client, harness)
        await client.post(
            "/dashboard/openings/new", data=await _opening_form(client, role="care_manager")
        )
        directory = await client.get("/", params={"zip": "02108", "radius_miles": "50"})
        board = await client.get("/openings", params={"zip": "02108", "radius_miles": "50"})
        too_far = await client.get("/openings", params={"zip": "02108", "radius_miles": "10"})
        bad = await client.get("/", params={"zip": "abcde"})
    assert "1 employer within 50 miles of Boston, MA 02108" in directory.text
    assert re.search(r"3\d\.\d mi", directory.text)
    assert "1 open opening" in directory.text
    assert "RN Care Manager - Health Home" in board.text
    assert re.search(r"\d{5} · <strong>3\d\.\d mi</strong>", board.text)
    assert "0 openings" in too_far.text
    assert bad.status_code == 422
    assert 'id="field-zip-error"' in bad.text


async def test_job_board_page_searches_words_and_can_leave_out_remote(harness: Harness) -> None:
    async with harness.client() as client:
        await _sign_up(client, harness)
        await client.post(
            "/dashboard/openings/new", data=await _opening_form(client, role="care_manager")
        )
        await client.post(
            "/dashboard/openings/new",
            data=await _opening_form(
                client, role="care_manager", title="Remote Care Manager", remote="true", zip=""
            ),
        )
        both = await client.get("/openings", params=[("remote", "false"), ("remote", "true")])
        local = await client.get("/openings", params={"remote": "false"})
        words = await client.get("/openings", params={"q": "remote care"})
    assert "2 openings" in both.text
    assert "1 opening" in local.text
    assert "Remote Care Manager" not in local.text
    assert "1 opening" in words.text
    assert "Remote Care Manager" in words.text


async def test_a_linked_radius_is_kept_in_the_search_form(harness: Harness) -> None:
    async with harness.client() as client:
        board = await client.get("/openings", params={"zip": "01608", "radius_miles": "30"})
    assert '<option value="30" selected>30 miles</option>' in board.text
