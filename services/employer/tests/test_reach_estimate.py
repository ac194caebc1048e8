"""The reach estimate over in-memory fakes: who may ask, validation as for a post, rounding,
the per-employer limit, and "unavailable" (API 503, form text) when the notifier is away."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from hwcollab_common.geo import lookup_zip
from hwcollab_employer.reach import NotifierReach, ReachUnavailableError, reach_source
from hwcollab_employer.settings import Settings
from hwcollab_schemas.reach import ReachCounts, ReachQuery, Relaxed
from hwcollab_testing.processes import free_port

from .conftest import ADMIN_HEADERS, ADMIN_TOKEN, BodyFactory, Harness

PASSWORD = "a very long passphrase"


class FakeReach:
    def __init__(self, counts: ReachCounts | None) -> None:
        self.counts_answer = counts
        self.queries: list[ReachQuery] = []

    async def counts(self, query: ReachQuery) -> ReachCounts:
        self.queries.append(query)
        if self.counts_answer is None:
            raise ReachUnavailableError("away")
        return self.counts_answer


COUNTS = ReachCounts(
    subscribers=1234,
    immediate=823,
    digest=411,
    relaxed=(Relaxed(criterion="credential", code="rn", subscribers=6000),),
)


def _with_reach(harness: Harness, counts: ReachCounts | None) -> FakeReach:
    fake = FakeReach(counts)
    harness.app.dependency_overrides[reach_source] = lambda: fake
    return fake


async def _signed_up(
    client: httpx.AsyncClient, signup: BodyFactory, email: str = "hr@worcester-care.example"
) -> dict[str, str]:
    assert (
        await client.post("/api/admin/employers", headers=ADMIN_HEADERS, json=signup(email))
    ).status_code == 201
    token = await client.post("/api/auth/token", json={"email": email, "password": PASSWORD})
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


async def test_the_estimate_is_rounded_and_nothing_is_stored(
    harness: Harness, signup: BodyFactory, opening_json: BodyFactory
) -> None:
    fake = _with_reach(harness, COUNTS)
    async with harness.client() as client:
        owner = await _signed_up(client, signup)
        answer = await client.post("/api/openings/estimate", headers=owner, json=opening_json())
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["subscribers"], body["immediate"], body["digest"]) == (1200, 820, 410)
    assert body["text"].startswith("About 1,200 active subscribers would be emailed now, 820")
    assert [cut["text"] for cut in body["cuts"]] == [
        "Requiring Registered Nurse (RN) leaves out 80 %"
    ]
    worcester = lookup_zip("01608")
    assert worcester is not None
    assert fake.queries == [
        ReachQuery(
            role="nurse_care_manager",
            setting="medical",
            required_credentials=("rn",),
            employment_type="full_time",
            remote=False,
            lat=worcester.lat,
            lon=worcester.lon,
            pay_max_hourly=46.0,
        )
    ]
    assert harness.repository.openings == {}
    assert not harness.uow.of_type("opening.posted")


async def test_yearly_pay_is_asked_per_hour(
    harness: Harness, signup: BodyFactory, opening_json: BodyFactory
) -> None:
    fake = _with_reach(harness, COUNTS)
    async with harness.client() as client:
        owner = await _signed_up(client, signup)
        body = opening_json(pay_min=None, pay_max=83_200, pay_period="year", zip=None, remote=True)
        answer = await client.post("/api/openings/estimate", headers=owner, json=body)
    assert answer.status_code == 200, answer.text
    assert fake.queries[0].pay_max_hourly == 40.0
    assert fake.queries[0].remote
    assert fake.queries[0].lat is None


async def test_who_may_ask(
    harness: Harness, manual_harness: Harness, signup: BodyFactory, opening_json: BodyFactory
) -> None:
    _with_reach(harness, COUNTS)
    _with_reach(manual_harness, COUNTS)
    async with harness.client() as client:
        anonymous = await client.post("/api/openings/estimate", json=opening_json())
        assert anonymous.status_code == 401
        assert anonymous.headers["WWW-Authenticate"] == "Bearer"
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        assert (
            await client.post("/api/openings/estimate", headers=admin, json=opening_json())
        ).status_code == 401
    async with manual_harness.client() as client:
        pending = await _signed_up(client, signup)
        answer = await client.post("/api/openings/estimate", headers=pending, json=opening_json())
    assert answer.status_code == 403
    assert answer.json() == {"detail": "Reach estimates are for approved employers only."}


async def test_bad_input_is_422_with_field_messages(
    harness: Harness, signup: BodyFactory, opening_json: BodyFactory
) -> None:
    fake = _with_reach(harness, COUNTS)
    async with harness.client() as client:
        owner = await _signed_up(client, signup)
        answer = await client.post(
            "/api/openings/estimate",
            headers=owner,
            json=opening_json(role="astronaut", zip=None, pay_min=50, pay_max=40),
        )
    assert answer.status_code == 422
    fields = {tuple(error["loc"][1:]) for error in answer.json()["detail"]}
    assert {("role",), ("zip",), ("pay_max",)} <= fields
    assert fake.queries == []


async def test_an_absent_notifier_is_503_with_retry_after(
    harness: Harness, signup: BodyFactory, opening_json: BodyFactory
) -> None:
    _with_reach(harness, None)
    async with harness.client() as client:
        owner = await _signed_up(client, signup)
        answer = await client.post("/api/openings/estimate", headers=owner, json=opening_json())
        posted = await client.post("/api/openings", headers=owner, json=opening_json())
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "5"
    assert "unavailable" in answer.json()["detail"]
    assert posted.status_code == 201  # posting never depends on the estimate


async def test_estimates_are_limited_per_employer(
    signup: BodyFactory, opening_json: BodyFactory
) -> None:
    harness = Harness(settings=Settings(admin_token=ADMIN_TOKEN, estimate_rate_limit="2/minute"))
    _with_reach(harness, COUNTS)
    async with harness.client() as client:
        one = await _signed_up(client, signup, "one@one.example")
        two = await _signed_up(client, signup, "two@two.example")
        answers = [
            await client.post("/api/openings/estimate", headers=one, json=opening_json())
            for _ in range(3)
        ]
        other = await client.post("/api/openings/estimate", headers=two, json=opening_json())
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert int(answers[2].headers["Retry-After"]) >= 1
    assert other.status_code == 200


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match
    return match.group(1)


FORM = {
    "title": "RN Care Manager",
    "role": "nurse_care_manager",
    "setting": "medical",
    "employment_type": "full_time",
    "required_credentials": "rn",
    "zip": "01608",
    "pay_min": "38",
    "pay_max": "46",
    "pay_period": "hour",
    "description": "Coordinate care.",
    "apply_url": "https://worcester-care.example/jobs/1",
}


async def _signed_in_page(client: httpx.AsyncClient, signup: BodyFactory) -> str:
    await client.post(
        "/api/admin/employers", headers=ADMIN_HEADERS, json=signup("hr@worcester-care.example")
    )
    login = await client.get("/login")
    signed_in = await client.post(
        "/login",
        data={
            "csrf_token": _csrf(login.text),
            "email": "hr@worcester-care.example",
            "password": PASSWORD,
        },
    )
    assert signed_in.status_code == 303
    form = await client.get("/dashboard/openings/new")
    assert "Check reach" in form.text
    return _csrf(form.text)


@pytest.mark.parametrize(
    ("counts", "says"),
    [
        (COUNTS, "About 1,200 active subscribers would be emailed now"),
        (ReachCounts(subscribers=4, immediate=4, digest=0), "Fewer than 10 active subscribers"),
        (None, "The reach estimate is unavailable right now"),
    ],
)
async def test_the_form_shows_the_estimate_without_script(
    harness: Harness, signup: BodyFactory, counts: ReachCounts | None, says: str
) -> None:
    _with_reach(harness, counts)
    async with harness.client() as client:
        csrf = await _signed_in_page(client, signup)
        page = await client.post(
            "/dashboard/openings/new", data=FORM | {"csrf_token": csrf, "action": "estimate"}
        )
        script = await client.post("/dashboard/openings/estimate", data=FORM | {"csrf_token": csrf})
        posted = await client.post(
            "/dashboard/openings/new", data=FORM | {"csrf_token": csrf, "action": "save"}
        )
    assert page.status_code == 200, page.text
    assert says in page.text
    assert 'value="RN Care Manager"' in page.text  # what was typed stays
    assert script.status_code == 200
    assert says in script.json()["text"]
    assert posted.status_code == 303  # the form still posts, estimate or not
    assert len(harness.repository.openings) == 1


async def test_an_incomplete_form_asks_for_its_fields(
    harness: Harness, signup: BodyFactory
) -> None:
    _with_reach(harness, COUNTS)
    async with harness.client() as client:
        csrf = await _signed_in_page(client, signup)
        script = await client.post(
            "/dashboard/openings/estimate",
            data=FORM | {"csrf_token": csrf, "zip": "", "role": ""},
        )
        missing = await client.post("/dashboard/openings/estimate", data=FORM)
        unfinished = await client.post(
            "/dashboard/openings/estimate",
            data=FORM
            | {"csrf_token": csrf, "title": "", "apply_url": "https://", "expires_on": "?"},
        )
    assert script.status_code == 422
    assert set(script.json()["errors"]) == {"zip", "role"}
    # What does not change who it reaches may still be missing while the opening is written.
    assert unfinished.status_code == 200, unfinished.text
    assert unfinished.json()["available"]
    assert missing.status_code == 403  # no CSRF token


async def test_an_unreachable_notifier_is_unavailable_within_the_timeout() -> None:
    reach = NotifierReach(
        base_url=f"http://127.0.0.1:{free_port()}", token="t", timeout_seconds=0.3
    )
    query = ReachQuery(
        role="care_manager", setting="medical", employment_type="full_time", remote=True
    )
    started = time.perf_counter()
    try:
        with pytest.raises(ReachUnavailableError):
            await reach.counts(query)
    finally:
        await reach.aclose()
    assert time.perf_counter() - started < 2.0
