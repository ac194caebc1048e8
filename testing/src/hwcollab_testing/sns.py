"""Amazon SNS as tests need it: a real RSA key and a self-signed certificate (``cryptography``),
SNS messages signed with them as SNS signs (SignatureVersion 1 and 2 over the documented string
to sign), and a local HTTP server on 127.0.0.1 that serves the certificate and answers
SubscribeURL visits, counting what it was asked."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

LOCAL_CERT_URL_PATTERN = r"^http://127\.0\.0\.1:\d+/[A-Za-z0-9._/-]+\.pem$"
"""The SES_SNS_CERT_URL_PATTERN that lets a notifier fetch certificates from :class:`SnsHost`."""
TOPIC = "arn:aws:sns:us-east-1:123456789012:hwcollab-ses-events"

_NOTIFICATION = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_CONFIRMATION = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")


def self_signed(common_name: str = "sns.amazonaws.com") -> tuple[rsa.RSAPrivateKey, bytes]:
    """A fresh RSA-2048 key and its self-signed certificate (PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return key, certificate.public_bytes(serialization.Encoding.PEM)


def sign(message: dict[str, Any], key: rsa.RSAPrivateKey) -> dict[str, Any]:
    """``message`` with its ``Signature``, made as SNS makes it for its ``SignatureVersion``."""
    fields = _NOTIFICATION if message["Type"] == "Notification" else _CONFIRMATION
    text = "".join(f"{name}\n{message[name]}\n" for name in fields if name in message)
    algorithm = hashes.SHA1() if message["SignatureVersion"] == "1" else hashes.SHA256()  # noqa: S303
    signature = key.sign(text.encode(), padding.PKCS1v15(), algorithm)
    return message | {"Signature": base64.b64encode(signature).decode()}


class SnsHost:
    """A local stand-in for ``sns.<region>.amazonaws.com``: serves certificates at
    ``/<name>.pem`` and records every request (path), answering SubscribeURLs with 200."""

    def __init__(self) -> None:
        self.key, self.cert_pem = self_signed()
        self.files: dict[str, bytes] = {"/SimpleNotificationService-test.pem": self.cert_pem}
        self.requests: list[str] = []
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host.requests.append(self.path)
                body = host.files.get(self.path.split("?", 1)[0])
                if body is None and self.path.startswith("/?Action=ConfirmSubscription"):
                    body = b"<ConfirmSubscriptionResponse/>"
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.cert_url = self.url + "/SimpleNotificationService-test.pem"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> SnsHost:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fetches(self, path: str = "/SimpleNotificationService-test.pem") -> int:
        return sum(1 for p in self.requests if p == path)

    def notification(
        self,
        ses_event: dict[str, Any],
        *,
        topic: str = TOPIC,
        version: str = "2",
        subject: str | None = None,
        cert_url: str | None = None,
    ) -> dict[str, Any]:
        """A signed SNS Notification carrying ``ses_event`` as its Message."""
        message: dict[str, Any] = {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "TopicArn": topic,
            "Message": json.dumps(ses_event),
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z",
            "SignatureVersion": version,
            "SigningCertURL": cert_url or self.cert_url,
            "UnsubscribeURL": f"{self.url}/?Action=Unsubscribe&SubscriptionArn={topic}:1",
        }
        if subject is not None:
            message["Subject"] = subject
        return sign(message, self.key)

    def confirmation(
        self, *, topic: str = TOPIC, version: str = "2", kind: str = "SubscriptionConfirmation"
    ) -> dict[str, Any]:
        token = uuid.uuid4().hex * 2
        message: dict[str, Any] = {
            "Type": kind,
            "MessageId": str(uuid.uuid4()),
            "Token": token,
            "TopicArn": topic,
            "Message": f"You have chosen to subscribe to the topic {topic}.",
            "SubscribeURL": (
                f"{self.url}/?Action=ConfirmSubscription&TopicArn={topic}&Token={token}"
            ),
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z",
            "SignatureVersion": version,
            "SigningCertURL": self.cert_url,
        }
        return sign(message, self.key)


@contextmanager
def sns_host() -> Iterator[SnsHost]:
    host = SnsHost().start()
    try:
        yield host
    finally:
        host.stop()


def ses_bounce(
    *,
    message_id: str,
    recipient: str,
    bounce_type: str = "Permanent",
    status: str = "5.1.1",
    feedback_id: str | None = None,
) -> dict[str, Any]:
    """An SES Bounce notification about our email ``message_id`` to ``recipient``."""
    return {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": bounce_type,
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": recipient,
                    "action": "failed",
                    "status": status,
                    "diagnosticCode": f"smtp; {status[:1] or 5}50 {status} user unknown",
                }
            ],
            "timestamp": datetime.now(UTC).isoformat(),
            "feedbackId": feedback_id or f"0100{uuid.uuid4().hex}-000000",
        },
        "mail": _mail(message_id, recipient),
    }


def ses_complaint(
    *, message_id: str, recipient: str, feedback_type: str | None = "abuse"
) -> dict[str, Any]:
    complaint: dict[str, Any] = {
        "complainedRecipients": [{"emailAddress": recipient}],
        "timestamp": datetime.now(UTC).isoformat(),
        "feedbackId": f"0100{uuid.uuid4().hex}-000000",
    }
    if feedback_type is not None:
        complaint["complaintFeedbackType"] = feedback_type
    return {
        "notificationType": "Complaint",
        "complaint": complaint,
        "mail": _mail(message_id, recipient),
    }


def _mail(message_id: str, recipient: str) -> dict[str, Any]:
    # SES gives the email an id of its own; ours is in the original headers.
    return {
        "timestamp": datetime.now(UTC).isoformat(),
        "messageId": f"0100{uuid.uuid4().hex}-000000",
        "source": "opportunities@hwcollab.example",
        "destination": [recipient],
        "headersTruncated": False,
        "headers": [
            {"name": "From", "value": "HWcollab Opportunities <opportunities@hwcollab.example>"},
            {"name": "To", "value": recipient},
            {"name": "Message-ID", "value": message_id},
            {"name": "Subject", "value": "A new opening"},
        ],
        "commonHeaders": {
            "from": ["opportunities@hwcollab.example"],
            "to": [recipient],
            "messageId": f"<0100{uuid.uuid4().hex}@email.amazonses.com>",
            "subject": "A new opening",
        },
    }
