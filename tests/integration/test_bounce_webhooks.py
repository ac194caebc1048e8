"""Bounces and complaints reported by email providers' webhooks, end to end: the subscriber
service and the notifier in-process against real Kafka, MongoDB and the SMTP sink (no bounce
domain: a relay that reports by webhook needs none). A person signs up and an alert goes out;
then Amazon SES (through SNS, signed with a real RSA key whose certificate a local server
serves), Postmark or the generic webhook reports it. The same rules as for a report by email
apply; a bad signature or wrong credentials change nothing; hostile input is refused with a
clear answer or kept and counted, never acted on."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from hwcollab_testing.plugin import SmtpSink
from hwcollab_testing.sns import (
    LOCAL_CERT_URL_PATTERN,
    TOPIC,
    SnsHost,
    ses_bounce,
    ses_complaint,
    sign,
    sns_host,
)
from hwcollab_testing.waiting import eventually

from .test_bounce_intake import ADMIN, World, bounce_world

pytestmark = [pytest.mark.integration, pytest.mark.slow]

POSTMARK = ("postmark-hooks", "postmark-webhook-password-for-tests-0123456789")
GENERIC = {"Authorization": "Bearer generic-bounce-webhook-token-for-tests-0123456789"}
SNS_HEADERS = {"Content-Type": "text/plain; charset=UTF-8", "x-amz-sns-message-type": "x"}
Document = dict[str, Any]


@pytest.fixture(scope="module")
def sns() -> Iterator[SnsHost]:
    with sns_host() as host:
        yield host


@pytest.fixture(scope="module")
async def world(
    kafka_bootstrap: str, mongo_url: str, smtp_sink: SmtpSink, sns: SnsHost
) -> AsyncIterator[World]:
    async with bounce_world(
        kafka_bootstrap,
        mongo_url,
        smtp_sink,
        label="webhooks",
        serve_http=False,
        delivery_rates_seconds=0.5,
        bounce_webhooks="ses,postmark,generic",
        ses_sns_topic_arns=TOPIC,
        ses_sns_cert_url_pattern=LOCAL_CERT_URL_PATTERN,
        postmark_webhook_user=POSTMARK[0],
        postmark_webhook_password=POSTMARK[1],
        bounce_webhook_token=GENERIC["Authorization"].removeprefix("Bearer "),
    ) as world:
        yield world


async def emailed(world: World, name: str) -> tuple[str, str, str]:
    """A subscriber and an alert sent to them: (subscriber id, address, Message-ID)."""
    subscriber_id, address = await world.subscribed(name)
    _return_path, alert = await world.alert(address, await world.post_opening(name))
    return subscriber_id, address, str(alert["Message-ID"])


async def post_sns(world: World, message: dict[str, Any]) -> httpx.Response:
    return await world.notifier.post(
        "/api/webhooks/ses", content=json.dumps(message), headers=SNS_HEADERS
    )


async def record(world: World, bounce_id: str) -> Document:
    answer = await world.notifier.get(f"/api/admin/bounces/{bounce_id}", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    found: Document = answer.json()
    return found


async def total(world: World) -> int:
    answer = await world.notifier.get("/api/admin/bounces", headers=ADMIN)
    return int(answer.json()["total"])


async def test_an_ses_hard_bounce_marks_the_subscriber_bounced_once(
    world: World, sns: SnsHost
) -> None:
    subscriber_id, address, message_id = await emailed(world, "ses-hard")
    bounce = ses_bounce(message_id=message_id, recipient=address)
    message = sns.notification(bounce, version="1")
    answer = await post_sns(world, message)
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] == "hard"

    async def bounced() -> bool:
        return await world.status_of(subscriber_id) == "bounced"

    await eventually(bounced, timeout=60, what=f"{address} marked bounced")
    assert address in await world.suppressed()
    stored = await record(world, answer.json()["bounce_id"])
    assert (stored["source"], stored["status"], stored["email"]) == ("ses", "5.1.1", address)
    assert stored["message_id"] == message_id
    assert json.loads(stored["raw"]) == message  # the request body as received

    # SNS delivers again (the same message, or the same event in a new one): recorded once.
    again = await post_sns(world, message)
    assert again.json()["outcome"] == "duplicate"
    resent = await post_sns(world, sns.notification(bounce, version="2"))
    assert resent.json()["outcome"] == "duplicate"
    mine = [b for b in await world.bounces() if b.get("subscriber_id") == subscriber_id]
    assert len(mine) == 1


async def test_a_bad_signature_is_refused_and_changes_nothing(world: World, sns: SnsHost) -> None:
    subscriber_id, address, message_id = await emailed(world, "ses-forged")
    before = await total(world)
    bounce = ses_bounce(message_id=message_id, recipient=address)
    signed = sns.notification(ses_bounce(message_id="<other@x>", recipient="x@example.org"))
    forged = [
        signed | {"Message": json.dumps(bounce)},  # the signature is another message's
        sns.notification(bounce, topic="arn:aws:sns:us-east-1:999999999999:stranger"),
        sns.notification(bounce, cert_url="https://sns.us-east-1.amazonaws.com.evil/x.pem"),
        sns.notification(bounce) | {"SignatureVersion": "1"},
        sns.notification(bounce) | {"Signature": "bm90IGEgc2lnbmF0dXJl"},
    ]
    for message in forged:
        answer = await post_sns(world, message)
        assert answer.status_code == 401, answer.text
        assert answer.headers["www-authenticate"]
    assert await total(world) == before
    assert address not in await world.suppressed()
    assert await world.status_of(subscriber_id) == "active"
    metrics = (await world.notifier.get("/metrics")).text
    assert re.search(
        r'hwcollab_notifier_bounce_webhooks_total\{outcome="unauthorized",source="ses"\} [1-9]',
        metrics,
    )


async def test_sns_subscriptions_are_confirmed_for_our_topics_only(
    world: World, sns: SnsHost
) -> None:
    answer = await post_sns(world, sns.confirmation())
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] == "subscribed"
    assert sns.requests[-1].startswith("/?Action=ConfirmSubscription")
    visited = len(sns.requests)
    stranger = sns.confirmation(topic="arn:aws:sns:us-east-1:999999999999:stranger")
    assert (await post_sns(world, stranger)).status_code == 401
    assert len(sns.requests) == visited  # nothing fetched for someone else's topic
    gone = await post_sns(world, sns.confirmation(kind="UnsubscribeConfirmation"))
    assert gone.json()["outcome"] == "unsubscribed"


async def test_an_ses_complaint_unsubscribes_and_a_delivery_is_no_report(
    world: World, sns: SnsHost
) -> None:
    subscriber_id, address, message_id = await emailed(world, "ses-complains")
    before = await total(world)
    delivery = {"notificationType": "Delivery", "mail": {"messageId": "x"}, "delivery": {}}
    answer = await post_sns(world, sns.notification(delivery))
    assert answer.json()["outcome"] == "not_a_report"
    assert await total(world) == before
    not_spam = ses_complaint(message_id=message_id, recipient=address, feedback_type="not-spam")
    assert (await post_sns(world, sns.notification(not_spam))).json()["outcome"] == "ignored"
    complaint = ses_complaint(message_id=message_id, recipient=address)
    answer = await post_sns(world, sns.notification(complaint))
    assert answer.json()["outcome"] == "complaint"

    async def unsubscribed() -> bool:
        return await world.status_of(subscriber_id) == "unsubscribed"

    await eventually(unsubscribed, timeout=60, what=f"{address} unsubscribed")


async def test_postmark_wants_its_credentials_and_a_complaint_unsubscribes(world: World) -> None:
    subscriber_id, address, message_id = await emailed(world, "postmark")
    complaint = {
        "RecordType": "SpamComplaint",
        "ID": 4323372036854775807,
        "Type": "SpamComplaint",
        "TypeCode": 100001,
        "MessageID": str(uuid.uuid4()),
        "Email": address,
        "Metadata": {"message_id": message_id},
    }
    before = await total(world)
    no_credentials = httpx.Auth()
    for auth in (no_credentials, (POSTMARK[0], POSTMARK[1] + "x"), ("someone", POSTMARK[1])):
        refused = await world.notifier.post("/api/webhooks/postmark", json=complaint, auth=auth)
        assert refused.status_code == 401, refused.text
    assert await total(world) == before
    assert await world.status_of(subscriber_id) == "active"

    answer = await world.notifier.post("/api/webhooks/postmark", json=complaint, auth=POSTMARK)
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] == "complaint"

    async def unsubscribed() -> bool:
        return await world.status_of(subscriber_id) == "unsubscribed"

    await eventually(unsubscribed, timeout=60, what=f"{address} unsubscribed")
    assert address in await world.suppressed()
    open_record = {"RecordType": "Open", "MessageID": str(uuid.uuid4())}
    opened = await world.notifier.post("/api/webhooks/postmark", json=open_record, auth=POSTMARK)
    assert opened.json()["outcome"] == "not_a_report"


async def test_generic_soft_bounces_count_and_the_limit_counts_as_hard(world: World) -> None:
    subscriber_id, address, first = await emailed(world, "generic")
    _path, alert = await world.alert(address, await world.post_opening("generic-2"))
    second = str(alert["Message-ID"])
    body = {"email": address, "source": "listmonk", "type": "soft", "meta": {"id": 7}}
    refused = await world.notifier.post(
        "/api/webhooks/bounces", json=body | {"message_id": first}, headers={"Authorization": "x"}
    )
    assert refused.status_code == 401
    outcomes = []
    for message_id in (first, first, second):
        answer = await world.notifier.post(
            "/api/webhooks/bounces", json=body | {"message_id": message_id}, headers=GENERIC
        )
        assert answer.status_code == 200, answer.text
        outcomes.append(answer.json()["outcome"])
    # The same email bouncing twice counts once; the second email's is the limit (2).
    assert outcomes == ["soft", "soft", "hard"]

    async def bounced() -> bool:
        return await world.status_of(subscriber_id) == "bounced"

    await eventually(bounced, timeout=60, what=f"{address} bounced after two soft bounces")
    stored = await record(world, (await world.bounces())[0]["bounce_id"])
    assert stored["source"] == "generic"
    assert json.loads(stored["raw"])["meta"] == {"id": 7}


async def test_hostile_webhook_input_is_refused_or_counted_never_acted_on(
    world: World, sns: SnsHost
) -> None:
    subscriber_id, address, message_id = await emailed(world, "hostile")
    other_id, other, other_message = await emailed(world, "bystander")
    before = await total(world)
    hook = "/api/webhooks/bounces"

    # Malformed: field messages, nothing stored.
    for content, field in (
        (b"{not json", None),
        (json.dumps({"email": address, "source": "x"}).encode(), "type"),
        (json.dumps({"email": address, "source": "x", "type": "gone"}).encode(), "type"),
        (
            json.dumps(
                {"email": address, "source": "x", "type": "hard", "message_id": "<a@b>\r\nBcc: y"}
            ).encode(),
            "message_id",
        ),
        (
            json.dumps({"email": f"{address}\r\nBcc: x@evil.example", "source": "x"}).encode(),
            "email",
        ),
    ):
        answer = await world.notifier.post(
            hook, content=content, headers=GENERIC | {"Content-Type": "application/json"}
        )
        assert answer.status_code == 422, answer.text
        if field is not None:
            assert any(field in e["loc"] for e in answer.json()["detail"]), answer.text
    assert (await post_sns(world, {"Type": "Notification"})).status_code == 422
    not_json = sns.notification({}) | {"Message": "not json"}
    assert (await post_sns(world, sign(not_json, sns.key))).status_code == 422
    # Too large: 413 before anything is read; other routes keep their smaller limit.
    huge = {"email": address, "source": "x", "type": "hard", "meta": {"pad": "x" * 300_000}}
    assert (await world.notifier.post(hook, json=huge, headers=GENERIC)).status_code == 413
    padded = {"email": address, "source": "x", "type": "soft", "meta": {"pad": "x" * 100_000}}
    within = await world.notifier.post(hook, json=padded, headers=GENERIC)
    assert within.status_code == 200  # no message_id: kept, not acted on
    assert within.json()["outcome"] == "unknown_message"
    admin_big = await world.notifier.post(
        "/api/admin/suppressions", json={"email": address, "reason": "x" * 100_000}, headers=ADMIN
    )
    assert admin_big.status_code == 413
    # A message we never sent, another person's message with this address, this person's
    # message with another address: kept and counted, nobody suppressed.
    for report, outcome in (
        ({"email": address, "message_id": "<never.sent@hwcollab.example>"}, "unknown_message"),
        ({"email": address, "message_id": other_message}, "unknown_message"),
        ({"email": "someone@else.example", "message_id": message_id}, "unknown_message"),
    ):
        answer = await world.notifier.post(
            hook, json=report | {"source": "x", "type": "hard"}, headers=GENERIC
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["outcome"] == outcome
    never = ses_bounce(message_id="<never.sent@hwcollab.example>", recipient=address)
    assert (await post_sns(world, sns.notification(never))).json()["outcome"] == "unknown_message"
    assert await total(world) == before + 5
    suppressed = await world.suppressed()
    assert address not in suppressed
    assert other not in suppressed
    assert await world.status_of(subscriber_id) == "active"
    assert await world.status_of(other_id) == "active"
    metrics = (await world.notifier.get("/metrics")).text
    for source, outcome in (("generic", "invalid"), ("generic", "unknown_message")):
        assert re.search(
            rf'hwcollab_notifier_bounce_webhooks_total\{{outcome="{outcome}",source="{source}"\}}'
            r" [1-9]",
            metrics,
        ), (source, outcome)


async def test_the_seven_day_rates_are_on_metrics(world: World) -> None:
    subscriber_id, address, message_id = await emailed(world, "rates")
    body = {"email": address, "source": "x", "type": "hard", "message_id": message_id}
    answer = await world.notifier.post("/api/webhooks/bounces", json=body, headers=GENERIC)
    assert answer.json()["outcome"] == "hard"

    def gauge(text: str, name: str) -> float:
        found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
        return float(found.group(1)) if found else -1.0

    async def rates_seen() -> bool:
        text = (await world.notifier.get("/metrics")).text
        return gauge(text, "hwcollab_emails_sent_7d") > 0 and (
            gauge(text, "hwcollab_bounce_rate_7d") > 0
        )

    await eventually(rates_seen, timeout=30, what="the 7-day rates on /metrics")
    text = (await world.notifier.get("/metrics")).text
    assert 0 < gauge(text, "hwcollab_bounce_rate_7d") <= 1
    assert 0 <= gauge(text, "hwcollab_complaint_rate_7d") <= 1
    assert subscriber_id


async def test_text_no_database_can_store_is_never_a_crash(world: World, sns: SnsHost) -> None:
    """JSON may escape a lone surrogate (``\\ud800``), which is no character: such an event is
    refused with the fields named (and not echoed back), never a 500."""
    bad = "\\ud800"
    postmark = (
        '{"RecordType": "Bounce", "ID": 7, "Type": "Hard'
        + bad
        + '", "Email": "a'
        + bad
        + '@example.org", "Metadata": {"message_id": "<x'
        + bad
        + '@y>"}}'
    )
    answer = await world.notifier.post(
        "/api/webhooks/postmark",
        content=postmark,
        headers={"Content-Type": "application/json"},
        auth=POSTMARK,
    )
    assert answer.status_code == 422, answer.text
    assert {tuple(e["loc"]) for e in answer.json()["detail"]} == {
        ("body", "Type"),
        ("body", "Email"),
    }
    generic = (
        '{"email": "a@example.org", "source": "x", "type": "hard", "message_id": "<x'
        + bad
        + '@y>"}'
    )
    answer = await world.notifier.post(
        "/api/webhooks/bounces",
        content=generic,
        headers=GENERIC | {"Content-Type": "application/json"},
    )
    assert answer.status_code in (200, 422), answer.text
    message = sns.notification(ses_bounce(message_id="<a@b>", recipient="a@example.org"))
    raw = json.dumps(message).replace('"Message": "', '"Message": "' + bad, 1)
    answer = await world.notifier.post("/api/webhooks/ses", content=raw, headers=SNS_HEADERS)
    assert answer.status_code in (401, 422), answer.text
