"""SNS messages are authenticated as AWS documents: real RSA keys and certificates, messages
signed as SNS signs them, the certificate fetched over HTTP from a local server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from hwcollab_notifier.mail.sns import (
    AWS_CERT_URL_PATTERN,
    SnsAuthenticationError,
    SnsMessage,
    SnsVerifier,
    string_to_sign,
)
from hwcollab_testing.sns import (
    LOCAL_CERT_URL_PATTERN,
    TOPIC,
    SnsHost,
    self_signed,
    ses_bounce,
    sign,
    sns_host,
)

BOUNCE = ses_bounce(message_id="<m1@hwcollab.example>", recipient="ana@example.org")


@pytest.fixture(scope="module")
def host() -> Iterator[SnsHost]:
    with sns_host() as running:
        yield running


@pytest.fixture
async def verifier() -> AsyncIterator[SnsVerifier]:
    checking = SnsVerifier(topic_arns=frozenset({TOPIC}), cert_url_pattern=LOCAL_CERT_URL_PATTERN)
    yield checking
    await checking.close()


def parsed(message: dict[str, Any]) -> SnsMessage:
    return SnsMessage.model_validate_json(json.dumps(message))


@pytest.mark.parametrize("version", ["1", "2"])
async def test_a_message_signed_by_sns_verifies(
    host: SnsHost, verifier: SnsVerifier, version: str
) -> None:
    await verifier.verify(parsed(host.notification(BOUNCE, version=version)))
    await verifier.verify(parsed(host.notification(BOUNCE, version=version, subject="Bounce")))
    await verifier.verify(parsed(host.confirmation(version=version)))
    await verifier.verify(parsed(host.confirmation(kind="UnsubscribeConfirmation")))


def test_the_string_to_sign_is_the_documented_one(host: SnsHost) -> None:
    message = parsed(host.notification(BOUNCE, subject="Hi"))
    assert string_to_sign(message).decode() == (
        f"Message\n{message.Message}\nMessageId\n{message.MessageId}\nSubject\nHi\n"
        f"Timestamp\n{message.Timestamp}\nTopicArn\n{TOPIC}\nType\nNotification\n"
    )
    without = parsed(host.notification(BOUNCE))
    assert b"\nSubject\n" not in string_to_sign(without)


@pytest.mark.parametrize(
    "field", ["Message", "MessageId", "Timestamp", "Type", "Subject", "Signature"]
)
async def test_a_tampered_field_is_refused(
    host: SnsHost, verifier: SnsVerifier, field: str
) -> None:
    message = host.notification(BOUNCE, subject="Bounce")
    tampered = {
        "Message": json.dumps(ses_bounce(message_id="<m1@x>", recipient="someone@else.org")),
        "MessageId": "another-id",
        "Timestamp": "2020-01-01T00:00:00.000Z",
        "Type": "SubscriptionConfirmation",
        "Subject": "Not a bounce",
        "Signature": sign(message | {"Message": "x"}, host.key)["Signature"],
    }[field]
    changed = message | {field: tampered}
    if field == "Type":
        changed |= {"Token": "t", "SubscribeURL": host.url + "/?Action=ConfirmSubscription"}
    with pytest.raises(SnsAuthenticationError):
        await verifier.verify(parsed(changed))


async def test_a_signature_of_the_wrong_version_is_refused(
    host: SnsHost, verifier: SnsVerifier
) -> None:
    signed_v1 = host.notification(BOUNCE, version="1")
    with pytest.raises(SnsAuthenticationError, match="does not verify"):
        await verifier.verify(parsed(signed_v1 | {"SignatureVersion": "2"}))
    with pytest.raises(ValidationError):
        parsed(signed_v1 | {"SignatureVersion": "3"})


async def test_a_key_other_than_the_certificates_is_refused(
    host: SnsHost, verifier: SnsVerifier
) -> None:
    other_key, _ = self_signed()
    forged = sign(host.notification(BOUNCE), other_key)
    with pytest.raises(SnsAuthenticationError, match="does not verify"):
        await verifier.verify(parsed(forged))


async def test_an_unknown_topic_is_refused_before_any_fetch(host: SnsHost) -> None:
    checking = SnsVerifier(topic_arns=frozenset({TOPIC}), cert_url_pattern=LOCAL_CERT_URL_PATTERN)
    before = len(host.requests)
    stranger = "arn:aws:sns:us-east-1:999999999999:someone-elses"
    with pytest.raises(SnsAuthenticationError, match="topic"):
        await checking.verify(parsed(host.notification(BOUNCE, topic=stranger)))
    assert len(host.requests) == before
    await checking.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.us-east-1.amazonaws.com.evil.example/SimpleNotificationService-abc.pem",
        "https://evil.example/sns.us-east-1.amazonaws.com/x.pem",
        "https://sns.us-east-1.amazonaws.com@evil.example/x.pem",
        "https://s3.amazonaws.com/sns.us-east-1.amazonaws.com/x.pem",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem?x=1",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.txt",
        "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-abc.pem",
    ],
)
async def test_with_amazons_pattern_only_sns_hosts_over_https_are_fetched(
    host: SnsHost, url: str
) -> None:
    checking = SnsVerifier(topic_arns=frozenset({TOPIC}))
    with pytest.raises(SnsAuthenticationError, match="certificate"):
        await checking.verify(parsed(host.notification(BOUNCE, cert_url=url)))
    await checking.close()


def test_amazons_pattern_takes_sns_hosts_of_every_region() -> None:
    checking = SnsVerifier(topic_arns=frozenset({TOPIC}), cert_url_pattern=AWS_CERT_URL_PATTERN)
    for url in (
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem",
        "https://sns.eu-central-1.amazonaws.com/SimpleNotificationService-01d088a6f77103d0fe307c0069e40ed6.pem",
        "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-3250158c6b6fd17e5ffd3ffbf8c1d6a3.pem",
    ):
        checking.check_cert_url(url)


async def test_the_local_server_pattern_refuses_other_hosts(
    host: SnsHost, verifier: SnsVerifier
) -> None:
    with pytest.raises(SnsAuthenticationError, match="certificate"):
        await verifier.verify(
            parsed(host.notification(BOUNCE, cert_url="http://localhost.evil.example/x.pem"))
        )


async def test_a_certificate_is_fetched_once_and_kept(host: SnsHost, verifier: SnsVerifier) -> None:
    before = host.fetches()
    for _ in range(3):
        await verifier.verify(parsed(host.notification(BOUNCE)))
    assert host.fetches() == before + 1


async def test_a_missing_or_garbled_certificate_is_refused(
    host: SnsHost, verifier: SnsVerifier
) -> None:
    missing = host.notification(BOUNCE, cert_url=host.url + "/gone.pem")
    with pytest.raises(SnsAuthenticationError, match="404"):
        await verifier.verify(parsed(missing))
    host.files["/garbled.pem"] = b"-----BEGIN CERTIFICATE-----\nnot base64\n"
    garbled = host.notification(BOUNCE, cert_url=host.url + "/garbled.pem")
    with pytest.raises(SnsAuthenticationError, match="not a PEM"):
        await verifier.verify(parsed(garbled))


async def test_a_subscription_is_confirmed_on_the_topics_sns_host_only(
    host: SnsHost, verifier: SnsVerifier
) -> None:
    confirmation = parsed(host.confirmation())
    await verifier.verify(confirmation)
    await verifier.confirm_subscription(confirmation)
    assert host.requests[-1].startswith("/?Action=ConfirmSubscription")
    elsewhere = host.confirmation() | {"SubscribeURL": "http://127.0.0.2:1/?Action=Confirm"}
    with pytest.raises(SnsAuthenticationError, match="SubscribeURL"):
        await verifier.confirm_subscription(parsed(sign(elsewhere, host.key)))
