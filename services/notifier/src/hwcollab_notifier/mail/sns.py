"""Amazon SNS messages posted to an HTTP(S) endpoint, authenticated as AWS documents
("Verifying the signatures of Amazon SNS messages"): the signature in the message is checked
against the certificate at its ``SigningCertURL``, which must be an https URL of an SNS host
(``sns.<region>.amazonaws.com``), over the documented string to sign; ``SignatureVersion`` 1 is
SHA1withRSA, 2 is SHA256withRSA. The topic must be one of ours.

Why not an SDK's validator: boto3 has none, and the ``sns-message-validator`` packages fetch the
certificate with blocking ``requests`` and cache nothing; the check is a few lines over
``cryptography``, which the notifier already uses for DKIM.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import time
from typing import Literal
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pydantic import BaseModel, ConfigDict, Field

AWS_CERT_URL_PATTERN = r"^https://sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[A-Za-z0-9._/-]+\.pem$"
"""Where SNS keeps its signing certificates; anything else is refused."""
MAX_CERT_BYTES = 16 * 1024
CERT_CACHE_SECONDS = 24 * 3600.0
MAX_CACHED_CERTS = 32

_NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_CONFIRMATION_FIELDS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
SnsType = Literal["Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"]


class SnsMessage(BaseModel):
    """The JSON document SNS posts (its field names as AWS spells them)."""

    model_config = ConfigDict(extra="ignore", strict=True)

    Type: SnsType
    MessageId: str = Field(min_length=1, max_length=100)
    TopicArn: str = Field(min_length=1, max_length=256, pattern=r"^arn:aws[a-z-]*:sns:")
    Message: str = Field(max_length=256 * 1024)
    Timestamp: str = Field(min_length=1, max_length=40)
    SignatureVersion: Literal["1", "2"]
    Signature: str = Field(min_length=1, max_length=2048)
    SigningCertURL: str = Field(min_length=1, max_length=1024)
    Subject: str | None = Field(None, max_length=100)
    SubscribeURL: str | None = Field(None, max_length=2048)
    UnsubscribeURL: str | None = Field(None, max_length=2048)
    Token: str | None = Field(None, max_length=2048)


class SnsAuthenticationError(ValueError):
    """The message is not one SNS signed for a topic of ours (the reason says which check)."""


def string_to_sign(message: SnsMessage) -> bytes:
    """The documented string to sign: ``name\\nvalue\\n`` for each field of the type, in order;
    a Notification's Subject only when present."""
    fields = _NOTIFICATION_FIELDS if message.Type == "Notification" else _CONFIRMATION_FIELDS
    lines: list[str] = []
    for name in fields:
        value = getattr(message, name)
        if value is None:
            if name == "Subject":
                continue
            raise SnsAuthenticationError(f"a {message.Type} without {name}")
        lines.extend((name, value))
    # (A lone surrogate, which JSON can carry, stays as it is and fails the signature.)
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")


class SnsVerifier:
    """Checks SNS messages; keeps the certificates it fetched (by URL) for a day."""

    def __init__(
        self,
        *,
        topic_arns: frozenset[str],
        cert_url_pattern: str = AWS_CERT_URL_PATTERN,
        http: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._topics = topic_arns
        self._cert_url = re.compile(cert_url_pattern)
        self._http = http or httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._certs: dict[str, tuple[float, rsa.RSAPublicKey]] = {}
        self._fetching: dict[str, asyncio.Lock] = {}

    async def close(self) -> None:
        await self._http.aclose()

    def topic_allowed(self, topic_arn: str) -> bool:
        return topic_arn in self._topics

    def check_cert_url(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.username or parts.password or parts.query or parts.fragment:
            raise SnsAuthenticationError("the signing certificate URL is not a plain URL")
        if not self._cert_url.fullmatch(url):
            raise SnsAuthenticationError(
                "the signing certificate is not on an Amazon SNS host over https"
            )

    async def verify(self, message: SnsMessage) -> None:
        """Raises :class:`SnsAuthenticationError` unless SNS signed ``message`` for one of our
        topics. The topic is checked first: nothing is fetched for a stranger's topic."""
        if not self.topic_allowed(message.TopicArn):
            raise SnsAuthenticationError("the topic is not one of SES_SNS_TOPIC_ARNS")
        self.check_cert_url(message.SigningCertURL)
        try:
            signature = base64.b64decode(message.Signature, validate=True)
        except (binascii.Error, ValueError):
            raise SnsAuthenticationError("the signature is not base64") from None
        algorithm: hashes.HashAlgorithm = (
            hashes.SHA1() if message.SignatureVersion == "1" else hashes.SHA256()  # noqa: S303
        )
        key = await self._public_key(message.SigningCertURL)
        try:
            key.verify(signature, string_to_sign(message), padding.PKCS1v15(), algorithm)
        except InvalidSignature:
            raise SnsAuthenticationError("the signature does not verify") from None

    async def _public_key(self, url: str) -> rsa.RSAPublicKey:
        cached = self._certs.get(url)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        lock = self._fetching.setdefault(url, asyncio.Lock())
        async with lock:
            cached = self._certs.get(url)
            if cached is not None and cached[0] > time.monotonic():
                return cached[1]
            key = await self._fetch(url)
            if len(self._certs) >= MAX_CACHED_CERTS:
                self._certs.clear()
            self._certs[url] = (time.monotonic() + CERT_CACHE_SECONDS, key)
            return key

    async def _fetch(self, url: str) -> rsa.RSAPublicKey:
        try:
            async with self._http.stream("GET", url) as answer:
                if answer.status_code != 200:
                    raise SnsAuthenticationError(
                        f"the signing certificate could not be fetched ({answer.status_code})"
                    )
                body = b""
                async for chunk in answer.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_CERT_BYTES:
                        raise SnsAuthenticationError("the signing certificate is too large")
        except httpx.HTTPError as error:
            raise SnsAuthenticationError(
                f"the signing certificate could not be fetched: {type(error).__name__}"
            ) from None
        try:
            certificate = x509.load_pem_x509_certificate(body)
        except ValueError:
            raise SnsAuthenticationError(
                "the signing certificate is not a PEM certificate"
            ) from None
        key = certificate.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise SnsAuthenticationError("the signing certificate's key is not RSA")
        return key

    async def confirm_subscription(self, message: SnsMessage) -> None:
        """Visit the SubscribeURL of a verified SubscriptionConfirmation (an SNS host's)."""
        url = message.SubscribeURL or ""
        subscribe, cert = urlsplit(url), urlsplit(message.SigningCertURL)
        if (subscribe.scheme, subscribe.netloc) != (cert.scheme, cert.netloc):
            raise SnsAuthenticationError("the SubscribeURL is not on the topic's SNS host")
        try:
            answer = await self._http.get(url)
        except httpx.HTTPError as error:
            raise ConnectionError(f"confirming the subscription failed: {error!r}") from None
        if answer.status_code != 200:
            raise ConnectionError(f"confirming the subscription failed ({answer.status_code})")
