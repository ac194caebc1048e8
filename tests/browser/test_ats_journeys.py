"""An applicant-tracking system posting over the JSON API, on the journeys' stack: a post retried
with the same Idempotency-Key reaches each matching subscriber once."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from hwcollab_testing.waiting import eventually_sync

from .mail import Inbox
from .stack import Stack, subscribe
from .support import MAIL_TIMEOUT

# Marked ``browser`` as well: these run with the journeys, on their stack (browser tests run last).
pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.slow]

SCRANTON = "18503"


def _post(stack: Stack, token: str, body: dict[str, Any], key: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    with stack.employer_api() as api:
        return api.post("/api/openings", json=body, headers=headers)


def test_a_retried_post_emails_each_subscriber_once(stack: Stack, inbox: Inbox) -> None:
    wishes = {"roles": ["care_coordination"], "zip": SCRANTON, "radius_miles": 10}
    readers = [stack.address("pat.scranton"), stack.address("lee.scranton")]
    for address in readers:
        subscribe(stack, inbox, address, **wishes)
    contact = stack.address("hr.lackawanna")
    token = stack.register_employer(
        name="Lackawanna Care Coordination", contact=contact, zip_code=SCRANTON, city="Scranton"
    )
    with stack.employer_api() as api:
        key = api.post(
            "/api/employers/me/api-keys",
            json={"name": "ats"},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert key.status_code == 201, key.text
    ats = key.json()["api_key"]
    body = {
        "title": "Care Coordinator — Scranton",
        "role": "care_coordinator",
        "setting": "social_service",
        "employment_type": "full_time",
        "zip": SCRANTON,
        "description": "Coordinate care in Lackawanna County.",
        "apply_url": "https://careers.example/apply/scranton",
        "external_id": "LCC-REQ-17",
    }

    idempotency_key = str(uuid.uuid4())
    first = _post(stack, ats, body, idempotency_key)
    assert first.status_code == 201, first.text
    # The ATS timed out before it read the answer, and sends the same request again.
    retried = _post(stack, ats, body, idempotency_key)
    assert retried.status_code == 201, retried.text
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert retried.json()["opening_id"] == first.json()["opening_id"]
    opening_id = first.json()["opening_id"]

    for address in readers:
        inbox.wait(address, lambda mail: opening_id in mail.opening_ids, what="the opening")
    # A later opening reaches them too: by then the notifier has had every chance to repeat.
    later = _post(stack, ats, body | {"title": "Care Coordinator II", "external_id": None}, None)
    assert later.status_code == 201, later.text
    for address in readers:
        inbox.wait(
            address,
            lambda mail: later.json()["opening_id"] in mail.opening_ids,
            what="the opening posted after the retry",
        )
        assert len(inbox.about(address, opening_id)) == 1, inbox.to(address)
    eventually_sync(
        lambda: stack.reach(token, opening_id) == len(readers),
        timeout=MAIL_TIMEOUT,
        what="the reach of the retried opening",
    )
    with stack.employer_api() as api:
        mine = api.get("/api/employers/me/openings", headers={"Authorization": f"Bearer {ats}"})
    assert sorted(item["title"] for item in mine.json()) == [
        "Care Coordinator II",
        "Care Coordinator — Scranton",
    ]
