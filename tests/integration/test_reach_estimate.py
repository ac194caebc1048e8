"""The reach estimate against the real services: the employer and notifier as processes on
Kafka, MongoDB and an SMTP sink. The estimate of an opening equals the people it then reaches
(immediate emails plus digest rows), exactly inside and rounded outside; with the notifier gone,
the API answers 503 and the form says the estimate is unavailable, and still posts."""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from hwcollab_common.geo import lookup_zip
from hwcollab_schemas.reach import round_count
from hwcollab_testing.events import event_publisher, registered
from hwcollab_testing.kafka import fresh_notifier_groups
from hwcollab_testing.plugin import ServiceStarter, SmtpSink
from hwcollab_testing.processes import wait_until_ready
from hwcollab_testing.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PASSWORD = "a very long passphrase"
TIMEOUT = 90.0
OPENING = {
    "title": "RN Care Manager",
    "role": "care_manager",
    "setting": "medical",
    "required_credentials": ["rn"],
    "employment_type": "full_time",
    "zip": "01608",
    "description": "Coordinate care for adults.",
    "apply_url": "https://reach.example/jobs/1",
}
FORM = {k: v for k, v in OPENING.items() if isinstance(v, str)} | {
    "required_credentials": "rn",
    "pay_period": "hour",
}
# Worcester: who the opening is for. Boston: about 40 miles away, beyond a 25-mile radius.
GROUPS: dict[str, dict[str, Any]] = {
    "rn-now": {"n": 12, "zip": "01608", "credentials": ("rn",), "frequency": "immediate"},
    "rn-daily": {"n": 10, "zip": "01608", "credentials": ("rn",), "frequency": "daily"},
    "no-rn": {"n": 12, "zip": "01608", "credentials": (), "frequency": "immediate"},
    "rn-far": {"n": 5, "zip": "02108", "credentials": ("rn",), "frequency": "immediate"},
}


def _metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split(" ", 1)[1])
    return None


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page carries a CSRF token"
    return match.group(1)


async def test_the_estimate_is_the_reach_and_the_form_works_without_the_notifier(
    kafka_bootstrap: str,
    mongo_url: str,
    smtp_sink: SmtpSink,
    service_process: ServiceStarter,
) -> None:
    run = uuid.uuid4().hex[:8]
    reach_token = secrets.token_urlsafe(32)
    admin_token = secrets.token_urlsafe(24)
    notifier_db = f"reach_notifier_{run}"
    common = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "MONGODB_URL": mongo_url,
        "ADMIN_TOKEN": admin_token,
        "REACH_TOKEN": reach_token,
        "CONSUMER_GROUP_SUFFIX": await fresh_notifier_groups(kafka_bootstrap, label="reach"),
        "OUTBOX_POLL_SECONDS": "0.1",
    }
    notifier = service_process(
        "notifier",
        common
        | {
            "MONGODB_DATABASE": notifier_db,
            "SMTP_HOST": smtp_sink.host,
            "SMTP_PORT": str(smtp_sink.port),
            "DIGEST_INTERVAL_SECONDS": "86400",
        },
    )
    employer = service_process(
        "employer",
        common
        | {
            "MONGODB_DATABASE": f"reach_employer_{run}",
            "EMPLOYER_APPROVAL": "auto",
            "NOTIFIER_URL": notifier.url,
            # A busy shared machine: the first answer must not be lost to a cold notifier.
            "REACH_TIMEOUT_SECONDS": "3",
        },
    )
    wait_until_ready(notifier.url, timeout=TIMEOUT)
    wait_until_ready(employer.url, timeout=TIMEOUT)

    # The subscribers, as the subscriber service announces them once confirmed.
    now = datetime.now(UTC)
    addresses: dict[str, list[str]] = {}
    async with event_publisher(kafka_bootstrap) as publish:
        for group, spec in GROUPS.items():
            place = lookup_zip(spec["zip"])
            assert place is not None
            addresses[group] = []
            for number in range(spec["n"]):
                address = f"{group}.{number}.{run}@reach.example"
                addresses[group].append(address)
                await publish(
                    registered(
                        str(uuid.uuid4()),
                        address,
                        place=place,
                        now=now,
                        frequency=spec["frequency"],
                        credentials=spec["credentials"],
                    )
                )
    everyone = [a for group in addresses.values() for a in group]
    # Each welcome email says the read model has the person; the index gauge, the index.
    await eventually(
        lambda: all(smtp_sink.messages_to(a) for a in everyone),
        timeout=TIMEOUT,
        what="a welcome email for every subscriber",
    )

    async def indexed() -> bool:
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"{notifier.url}/metrics")).text
        return _metric(text, "hwcollab_notifier_index_subscribers") == len(everyone)

    await eventually(indexed, timeout=TIMEOUT, what="every subscriber in the match index")

    async with httpx.AsyncClient(base_url=employer.url, timeout=30.0) as api:
        contact = f"hr.{run}@reach.example"
        created = await api.post(
            "/api/admin/employers",  # as an operator: verified at once
            headers={"Authorization": f"Bearer {admin_token}"},
            json={
                "organization_name": "Reach Care Partners",
                "contact_email": contact,
                "password": PASSWORD,
                "address": {"city": "Worcester", "state": "MA", "zip": "01608"},
                "settings": ["medical"],
            },
        )
        assert created.status_code == 201, created.text
        token = await api.post("/api/auth/token", json={"email": contact, "password": PASSWORD})
        auth = {"Authorization": f"Bearer {token.json()['access_token']}"}

        estimate = await api.post("/api/openings/estimate", json=OPENING, headers=auth)
        assert estimate.status_code == 200, estimate.text
        shown = estimate.json()
        worcester = lookup_zip("01608")
        assert worcester is not None
        async with httpx.AsyncClient() as http:
            exact = await http.post(
                f"{notifier.url}/api/internal/reach",
                json={
                    "role": "care_manager",
                    "setting": "medical",
                    "required_credentials": ["rn"],
                    "employment_type": "full_time",
                    "lat": worcester.lat,
                    "lon": worcester.lon,
                },
                headers={"Authorization": f"Bearer {reach_token}"},
            )
        assert exact.status_code == 200, exact.text
        counts = exact.json()

        posted = await api.post("/api/openings", json=OPENING, headers=auth)
        assert posted.status_code == 201, posted.text
        opening_id = posted.json()["opening_id"]

    def immediate_emails() -> list[str]:
        return [
            a
            for a in everyone
            for m in smtp_sink.messages_to(a)
            if opening_id in (m.message.get("X-HWcollab-Opening-Ids") or "")
        ]

    await eventually(
        lambda: len(immediate_emails()) >= 12, timeout=TIMEOUT, what="the immediate emails"
    )
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url)
    try:
        ledger = client[notifier_db]["ledger"]

        async def digest_rows() -> int:
            return await ledger.count_documents({"opening_id": opening_id, "channel": "digest"})

        async def all_digest_rows() -> bool:
            return await digest_rows() >= 10

        async def every_row() -> bool:
            # An emailed pair's row is written when its email is settled, just after SMTP.
            return await ledger.count_documents({"opening_id": opening_id}) >= 12 + 10

        await eventually(all_digest_rows, timeout=TIMEOUT, what="the digest rows")
        await eventually(every_row, timeout=TIMEOUT, what="a row for every match")
        digests = await digest_rows()
        rows = await ledger.count_documents({"opening_id": opening_id})
    finally:
        await client.close()
    emailed = immediate_emails()
    assert sorted(emailed) == sorted(addresses["rn-now"])  # once each, and nobody else
    assert digests == 10
    assert rows == len(emailed) + digests

    # Inside, exact; outside, rounded (22 → 22, and the split shown as both parts are 10+).
    assert (counts["subscribers"], counts["immediate"], counts["digest"]) == (
        len(emailed) + digests,
        len(emailed),
        digests,
    )
    assert shown["subscribers"] == round_count(len(emailed) + digests) == 22
    assert (shown["immediate"], shown["digest"]) == (12, 10)
    assert shown["text"] == (
        "About 22 active subscribers would be emailed now, 12 of them at once and the rest in "
        "their digest."
    )
    # Without RN, 34: the 12 without it are 35 % of them, shown as 40 %.
    assert [cut["text"] for cut in shown["cuts"]] == [
        "Requiring Registered Nurse (RN) leaves out 40 %"
    ]

    # The notifier goes away: the API says so, the form too, and both still post.
    notifier.stop()
    async with httpx.AsyncClient(base_url=employer.url, timeout=30.0) as api:
        away = await api.post("/api/openings/estimate", json=OPENING, headers=auth)
        assert away.status_code == 503
        assert "unavailable" in away.json()["detail"]
        assert away.headers["Retry-After"]
        assert (await api.post("/api/openings", json=OPENING, headers=auth)).status_code == 201
    async with httpx.AsyncClient(base_url=employer.url, timeout=30.0) as browser:
        login = await browser.get("/login")
        signed_in = await browser.post(
            "/login", data={"csrf_token": _csrf(login.text), "email": contact, "password": PASSWORD}
        )
        assert signed_in.status_code == 303
        csrf = _csrf((await browser.get("/dashboard/openings/new")).text)
        page = await browser.post(
            "/dashboard/openings/new", data=FORM | {"csrf_token": csrf, "action": "estimate"}
        )
        assert page.status_code == 200
        assert "The reach estimate is unavailable right now" in page.text
        saved = await browser.post(
            "/dashboard/openings/new", data=FORM | {"csrf_token": csrf, "action": "save"}
        )
        assert saved.status_code == 303
