"""Provider events read into reports: SES bounce types and complaints, Postmark types, the
generic payload; what is refused as malformed, and the production settings of the webhooks."""

from __future__ import annotations

import email
import email.policy
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from pydantic import ValidationError

from hwcollab_common.runtime import ServiceRuntime
from hwcollab_notifier.provider_reports import (
    POSTMARK_TYPES,
    GenericBounce,
    PostmarkEvent,
    SesEvent,
    generic_report,
    message_id_of,
    postmark_message_id,
    postmark_report,
    ses_report,
)
from hwcollab_notifier.settings import Settings
from hwcollab_notifier.wiring import composer_for
from hwcollab_testing.sns import LOCAL_CERT_URL_PATTERN, ses_bounce, ses_complaint

from .mail_examples import opening, recipient

OURS = "<immediate.1.abc@hwcollab.example>"
SECRET = "s" * 40


def ses(event: dict[str, Any]) -> SesEvent:
    return SesEvent.model_validate_json(json.dumps(event))


@pytest.mark.parametrize(
    ("bounce_type", "status", "kind", "read_status"),
    [
        ("Permanent", "5.1.1", "hard", "5.1.1"),
        ("Transient", "4.2.2", "soft", "4.2.2"),
        ("Undetermined", "", "soft", "4.0.0"),
        ("Permanent", "2.0.0", "hard", "5.0.0"),
    ],
)
def test_ses_bounce_types(bounce_type: str, status: str, kind: str, read_status: str) -> None:
    event = ses_bounce(
        message_id=OURS, recipient="ana@example.org", bounce_type=bounce_type, status=status
    )
    report = ses_report(ses(event), raw=b"{}")
    assert report is not None
    assert report.report is not None
    assert (report.report.kind, report.report.status) == (kind, read_status)
    # SES's own id of the email (commonHeaders) is not ours; the original header is.
    assert report.report.original_message_id == OURS
    assert report.recipients == ("ana@example.org",)
    assert report.record_id is not None
    assert len(report.record_id) == 32


def test_ses_complaints_and_their_feedback_types() -> None:
    report = ses_report(ses(ses_complaint(message_id=OURS, recipient="a@example.org")), raw=b"")
    assert report is not None
    assert report.report is not None
    assert (report.report.kind, report.report.feedback_type) == ("complaint", "abuse")
    untyped = ses_complaint(message_id=OURS, recipient="a@example.org", feedback_type=None)
    typed = ses_report(ses(untyped), raw=b"")
    assert typed is not None
    assert typed.report is not None
    assert typed.report.feedback_type == "abuse"  # a feedback loop that names no type
    not_spam = ses_complaint(message_id=OURS, recipient="a@example.org", feedback_type="not-spam")
    kept = ses_report(ses(not_spam), raw=b"")
    assert kept is not None
    assert kept.report is not None
    assert kept.report.feedback_type == "not-spam"  # the intake keeps it, never acts on it


def test_ses_without_the_original_headers_uses_the_common_ones() -> None:
    event = ses_bounce(message_id=OURS, recipient="a@example.org")
    event["mail"]["headers"] = []
    event["mail"]["commonHeaders"]["messageId"] = "immediate.1.abc@hwcollab.example"
    report = ses_report(ses(event), raw=b"")
    assert report is not None
    assert report.report is not None
    assert report.report.original_message_id == OURS


def test_ses_deliveries_and_event_publishing_records() -> None:
    delivery = {"notificationType": "Delivery", "mail": {"messageId": "x"}, "delivery": {}}
    assert ses_report(ses(delivery), raw=b"") is None
    published = ses_bounce(message_id=OURS, recipient="a@example.org")
    published["eventType"] = published.pop("notificationType")
    report = ses_report(ses(published), raw=b"")
    assert report is not None
    assert report.report is not None
    assert report.report.kind == "hard"


@pytest.mark.parametrize(
    "event",
    [
        {"notificationType": "Bounce", "mail": {"messageId": "x"}},
        {"mail": {"messageId": "x"}},
        {"notificationType": "Complaint", "mail": {"messageId": "x"}},
        {"notificationType": "Bounce", "bounce": {"bounceType": "Sideways"}, "mail": {}},
    ],
)
def test_malformed_ses_events_are_refused(event: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ses(event)


def postmark(**fields: Any) -> PostmarkEvent:
    base: dict[str, Any] = {
        "RecordType": "Bounce",
        "ID": 4323372036854775807,
        "Type": "HardBounce",
        "TypeCode": 1,
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Email": "ana@example.org",
        "Description": "The server was unable to deliver your message.",
        "Details": "smtp;550 5.1.1 user unknown",
        "Metadata": {"message_id": OURS},
    }
    return PostmarkEvent.model_validate(base | fields)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("HardBounce", "hard"),
        ("BadEmailAddress", "hard"),
        ("SoftBounce", "soft"),
        ("Transient", "soft"),
        ("DnsError", "soft"),
        ("AutoResponder", "ignored"),
        ("DMARCPolicy", "ignored"),
        ("SomethingNew", "ignored"),
    ],
)
def test_postmark_types(kind: str, expected: str) -> None:
    report = postmark_report(postmark(Type=kind), raw=b"{}")
    assert report is not None
    if expected == "ignored":
        assert report.report is None
        assert kind in report.ignored
    else:
        assert report.report is not None
        assert report.report.kind == expected
        assert report.report.original_message_id == OURS


def test_every_mapped_postmark_type_is_one_of_the_actions() -> None:
    assert set(POSTMARK_TYPES.values()) == {"hard", "soft", "complaint", "ignored"}


def test_postmark_spam_complaints_and_our_message_id_in_the_headers() -> None:
    complaint = postmark(
        RecordType="SpamComplaint",
        Type="SpamComplaint",
        TypeCode=100001,
        Metadata={},
        Headers=[{"Name": "Message-ID", "Value": OURS}],
    )
    report = postmark_report(complaint, raw=b"")
    assert report is not None
    assert report.report is not None
    assert (report.report.kind, report.report.original_message_id) == ("complaint", OURS)
    assert report.event_id == "SpamComplaint:4323372036854775807"


def test_postmark_records_that_are_no_report() -> None:
    assert postmark_report(postmark(RecordType="Delivery"), raw=b"") is None
    with pytest.raises(ValidationError, match="needs Email"):
        PostmarkEvent.model_validate({"RecordType": "Bounce", "ID": 1, "Type": "HardBounce"})


@pytest.mark.parametrize(
    "body",
    [
        {"email": "a@example.org", "source": "relay", "type": "bounced"},
        {"email": "not an address", "source": "relay", "type": "hard"},
        {"email": "a@example.org", "source": "re lay", "type": "hard"},
        {"email": "a@example.org", "source": "relay", "type": "hard", "extra": 1},
        {"email": "a@example.org\r\nBcc: b@example.org", "source": "relay", "type": "hard"},
        {
            "email": "a@example.org",
            "source": "relay",
            "type": "hard",
            "message_id": "<a@b>\r\nBcc: x@example.org",
        },
    ],
)
def test_the_generic_payload_is_strict(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        GenericBounce.model_validate(body)


def test_the_generic_payload() -> None:
    body = GenericBounce.model_validate(
        {
            "email": "Ana@Example.org",
            "source": "listmonk",
            "type": "soft",
            "message_id": "immediate.1.abc@hwcollab.example",
            "meta": {"campaign": 3},
        }
    )
    report = generic_report(body, raw=b"{}")
    assert report.report is not None
    assert (report.report.kind, report.report.original_message_id) == ("soft", OURS)
    assert report.event_id is None
    assert report.record_id is None


def test_message_ids_are_read_on_one_line() -> None:
    assert message_id_of("  <a@b>  ") == "<a@b>"
    assert message_id_of("a@b") == "<a@b>"
    assert message_id_of("a b@c") is None
    assert message_id_of("") is None


def test_webhook_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOUNCE_WEBHOOKS", "ses, postmark")
    monkeypatch.setenv("SES_SNS_TOPIC_ARNS", "arn:aws:sns:us-east-1:1:a,arn:aws:sns:us-east-1:1:b")
    settings = Settings()
    assert settings.bounce_webhooks == {"ses", "postmark"}
    assert len(settings.ses_sns_topic_arns) == 2
    monkeypatch.setenv("BOUNCE_WEBHOOKS", "ses,mailgun")
    with pytest.raises(ValidationError):
        Settings()
    monkeypatch.setenv("BOUNCE_WEBHOOKS", "")
    monkeypatch.setenv("SES_SNS_CERT_URL_PATTERN", "([")
    with pytest.raises(ValidationError, match="regular expression"):
        Settings()


ED25519_PEM = (
    ed25519.Ed25519PrivateKey.generate()
    .private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    .decode()
)


def production(**overrides: Any) -> Settings:
    return Settings(
        hwcollab_env="prod",
        link_signing_key=SECRET,
        admin_token=SECRET,
        reach_token=SECRET,
        postal_address="HWcollab, 1 Real Road, Boston, MA 02110",
        dkim_private_key=ED25519_PEM,
        **overrides,
    )


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"bounce_webhooks": "ses"}, "SES_SNS_TOPIC_ARNS"),
        (
            {
                "bounce_webhooks": "ses",
                "ses_sns_topic_arns": "arn:aws:sns:us-east-1:1:t",
                "ses_sns_cert_url_pattern": LOCAL_CERT_URL_PATTERN,
            },
            "SES_SNS_CERT_URL_PATTERN",
        ),
        ({"bounce_webhooks": "postmark"}, "POSTMARK_WEBHOOK_PASSWORD"),
        (
            {"bounce_webhooks": "postmark", "postmark_webhook_password": "short"},
            "POSTMARK_WEBHOOK_PASSWORD",
        ),
        (
            {
                "bounce_webhooks": "postmark",
                "postmark_webhook_user": " ",
                "postmark_webhook_password": SECRET,
            },
            "POSTMARK_WEBHOOK_USER",
        ),
        ({"bounce_webhooks": "generic"}, "BOUNCE_WEBHOOK_TOKEN"),
    ],
)
def test_production_refuses_an_enabled_webhook_without_its_secret(
    overrides: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValidationError, match=problem):
        production(**overrides)


def test_production_takes_webhooks_with_their_secrets_and_none_without() -> None:
    assert production().bounce_webhooks == frozenset()
    enabled = production(
        bounce_webhooks="ses,postmark,generic",
        ses_sns_topic_arns="arn:aws:sns:us-east-1:123456789012:ses",
        postmark_webhook_user="postmark-hooks",
        postmark_webhook_password="p" * 40,
        bounce_webhook_token="t" * 40,
    )
    assert enabled.bounce_webhooks == {"ses", "postmark", "generic"}


def test_with_the_postmark_webhook_each_email_names_its_message_id_in_postmarks_metadata() -> None:
    """Postmark returns the metadata of an email with its bounce or complaint: that is how the
    webhook finds our Message-ID (Postmark's own MessageID is another)."""
    settings = Settings(bounce_webhooks="postmark")
    composer = composer_for(settings, ServiceRuntime(settings, name="notifier"))
    sent = composer.immediate(recipient(), opening())
    message = email.message_from_bytes(sent.data, policy=email.policy.default)
    assert message["X-PM-Metadata-message_id"] == sent.message_id
    event = postmark(Metadata={"message_id": message["X-PM-Metadata-message_id"]})
    assert postmark_message_id(event) == sent.message_id
    plain = composer_for(Settings(), ServiceRuntime(Settings(), name="notifier"))
    assert b"X-PM-Metadata" not in plain.immediate(recipient(), opening()).data


def test_postmark_fields_take_their_own_type_only() -> None:
    for changes in ({"TypeCode": False}, {"ID": "42"}, {"Email": 5}, {"Metadata": {"a": 1}}):
        with pytest.raises(ValidationError):
            postmark(**changes)
