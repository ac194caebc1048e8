"""The notifier's configuration (SPEC section 8); the only place it reads the environment."""

from __future__ import annotations

import re
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from hwcollab_common.dkim_keys import DkimKeyError, SigningKey, load_signing_key
from hwcollab_common.settings import (
    DEV_POSTAL_ADDRESS,
    DEV_REACH_TOKEN,
    MIN_SECRET_LENGTH,
    ServiceSettings,
)
from hwcollab_notifier.mail.sns import AWS_CERT_URL_PATTERN
from hwcollab_schemas.topics import NOTIFIER_DELIVERY_GROUP, NOTIFIER_GROUP

# Public on purpose, for development: production refuses them for an enabled webhook.
DEV_POSTMARK_WEBHOOK_PASSWORD = "dev-only-postmark-webhook-password"  # noqa: S105
DEV_BOUNCE_WEBHOOK_TOKEN = "dev-only-bounce-webhook-token"  # noqa: S105
Webhook = Literal["ses", "postmark", "generic"]


class Settings(ServiceSettings):
    mongodb_database: str = "hwcollab_notifier"

    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_pool_size: int = Field(default=4, ge=1, le=64)
    smtp_max_attempts: int = Field(default=5, ge=1, le=20)
    smtp_backoff_base_seconds: float = Field(default=0.2, gt=0)
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)
    mail_from: str = "HWcollab Opportunities <opportunities@hwcollab.example>"
    postal_address: str = DEV_POSTAL_ADDRESS
    list_id: str = "HWcollab Opportunities <opportunities.hwcollab.example>"
    message_id_domain: str = "hwcollab.example"

    dkim_private_key: SecretStr | None = None
    """PEM private key (RSA of 2048+ bits or Ed25519) that signs every email; no key, no
    signature (development only: production refuses to start without one)."""
    dkim_private_key_file: Path | None = None
    """The same key read from a file, instead of DKIM_PRIVATE_KEY."""
    dkim_selector: str = Field(
        default="hwcollab1", max_length=63, pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]*$"
    )
    """The key's DNS name is ``<selector>._domainkey.<domain>``; a new key gets a new selector."""
    dkim_domain: str | None = None
    """The signing domain (``d=``); unset, MAIL_FROM's domain (DMARC wants them aligned)."""
    bounce_domain: str | None = Field(
        default=None,
        max_length=253,
        pattern=r"^([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z0-9-]{2,}$",
    )
    """Set: each email's envelope sender is ``bounces+<signed token>@<bounce_domain>`` (VERP),
    naming its message and subscriber. Unset: the MAIL_FROM address."""
    bounce_listen_host: str = "0.0.0.0"
    bounce_listen_port: int = Field(default=0, ge=0, le=65535)
    """The SMTP port on which this process receives bounces and complaint reports for
    BOUNCE_DOMAIN (its MX delivers there); 0 (default) starts no listener."""
    bounce_max_bytes: int = Field(default=1024 * 1024, ge=10 * 1024, le=50 * 1024 * 1024)
    """A report larger than this is refused (552) before it is stored."""
    bounce_webhooks: Annotated[frozenset[Webhook], NoDecode] = frozenset()
    """The provider webhooks that answer (``ses,postmark,generic``); the others answer 404."""
    bounce_webhook_max_bytes: int = Field(default=256 * 1024, ge=64 * 1024, le=1024 * 1024)
    """A webhook body larger than this is refused (413); other routes keep the usual limit."""
    ses_sns_topic_arns: Annotated[frozenset[str], NoDecode] = frozenset()
    """The SNS topics (ARNs, comma-separated) whose SES notifications are accepted."""
    ses_sns_cert_url_pattern: str = AWS_CERT_URL_PATTERN
    """Where an SNS signing certificate may be fetched from (a regular expression over the
    URL); production accepts only Amazon's."""
    postmark_webhook_user: str = Field(default="postmark", max_length=200)
    postmark_webhook_password: SecretStr = SecretStr(DEV_POSTMARK_WEBHOOK_PASSWORD)
    """The HTTP Basic credentials of the Postmark webhook URL."""
    bounce_webhook_token: SecretStr = SecretStr(DEV_BOUNCE_WEBHOOK_TOKEN)
    """The bearer token of the generic bounce webhook."""
    delivery_rates_seconds: float = Field(default=60.0, gt=0)
    """How often the 7-day bounce and complaint rates are recomputed (and sends tallied)."""
    soft_bounce_limit: int = Field(default=3, ge=1, le=100)
    soft_bounce_days: float = Field(default=7.0, gt=0, le=365)
    """SOFT_BOUNCE_LIMIT soft bounces of one address (each of another email) within
    SOFT_BOUNCE_DAYS count as a hard bounce."""

    digest_max_items: int = Field(default=25, ge=1, le=100)
    digest_interval_seconds: float = Field(default=60.0, gt=0)
    """How often each replica looks for digests that are due."""
    delivery_max_attempts: int = Field(default=5, ge=1, le=50)
    """Send attempts (each with the sender's own retries) before a job is given up."""
    sweep_interval_seconds: float = Field(default=30.0, gt=0)
    sweep_stale_seconds: float = Field(default=60.0, gt=0)
    """A pending delivery older than this is published again by the sweeper."""
    index_refresh_seconds: float = Field(default=5.0, gt=0)
    """How often each replica folds read-model changes into its match index (catch-up path)."""
    send_lease_seconds: float = Field(default=300.0, gt=0)
    """How long a sender holds a Message-ID before another may try it (longer than SMTP retries)."""
    consumer_group_suffix: str = Field(default="", max_length=100, pattern=r"^[A-Za-z0-9._-]*$")
    """Appended to the notifier's consumer group ids; empty in deployments. Tests give each
    notifier they start a group of its own, so that no earlier process (or a killed one, which a
    broker may keep as a member) holds its partitions."""
    # Delivery consumers per process, each a member of the delivery group owning its own
    # partitions and sending one batch at a time. Keep replicas × this ≤ the delivery topic's
    # partitions, or extra members idle (the default of 1 lets replicas, scaled on lag, share the
    # partitions).
    delivery_concurrency: int = Field(default=1, ge=1, le=64)
    delivery_batch_size: int = Field(default=500, ge=1, le=1000)
    """Readers per delivery job, and the most emails one batch claims, sends and settles
    together (also the page size of a digest run and of a sweep)."""
    delivery_batch_jobs: int = Field(default=8, ge=1, le=500)
    """The most delivery jobs a consumer takes from Kafka at once."""
    lag_sample_seconds: float = Field(default=15.0, gt=0)
    reach_token: SecretStr = SecretStr(DEV_REACH_TOKEN)
    """The bearer token the employer service presents for reach estimates (the same value)."""

    @field_validator("bounce_webhooks", "ses_sns_topic_arns", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("ses_sns_cert_url_pattern")
    @classmethod
    def _a_regular_expression(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as error:
            raise ValueError(f"not a regular expression: {error}") from None
        return value

    @field_validator(
        "dkim_private_key", "dkim_private_key_file", "dkim_domain", "bounce_domain", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # Compose and Kubernetes pass an unset optional variable as an empty string.
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _dkim_key_is_usable(self) -> Settings:
        if self.dkim_private_key is not None and self.dkim_private_key_file is not None:
            raise ValueError("set DKIM_PRIVATE_KEY or DKIM_PRIVATE_KEY_FILE, not both")
        try:
            self.dkim_key()
        except (DkimKeyError, OSError) as error:
            raise ValueError(str(error)) from None
        return self

    def dkim_key(self) -> SigningKey | None:
        """The DKIM signing key, or None when signing is off."""
        if self.dkim_private_key_file is not None:
            try:
                pem = self.dkim_private_key_file.read_bytes()
            except OSError as error:
                raise OSError(
                    f"DKIM_PRIVATE_KEY_FILE {self.dkim_private_key_file} cannot be read: "
                    f"{error.strerror}"
                ) from None
            try:
                return load_signing_key(pem)
            except DkimKeyError as error:
                raise DkimKeyError(
                    f"DKIM_PRIVATE_KEY_FILE {self.dkim_private_key_file}: {error}"
                ) from None
        if self.dkim_private_key is not None:
            # A PEM in one line (as some secret stores hold it) has "\n" for its line breaks.
            text = self.dkim_private_key.get_secret_value().replace("\\n", "\n").strip()
            try:
                return load_signing_key(text.encode())
            except DkimKeyError as error:
                raise DkimKeyError(f"DKIM_PRIVATE_KEY: {error}") from None
        return None

    @property
    def dkim_signing_domain(self) -> str:
        return (self.dkim_domain or self.mail_from_address.rpartition("@")[2]).lower()

    @property
    def read_model_group(self) -> str:
        return NOTIFIER_GROUP + self.consumer_group_suffix

    @property
    def delivery_group(self) -> str:
        return NOTIFIER_DELIVERY_GROUP + self.consumer_group_suffix

    @property
    def mail_from_address(self) -> str:
        return parseaddr(self.mail_from)[1]

    def production_problems(self) -> list[str]:
        problems = []
        if self.postal_address.strip() == DEV_POSTAL_ADDRESS or not self.postal_address.strip():
            problems.append("POSTAL_ADDRESS must be the sender's real postal address (CAN-SPAM)")
        if "@" not in self.mail_from_address:
            problems.append("MAIL_FROM must contain an email address")
        token = self.reach_token.get_secret_value()
        if token == DEV_REACH_TOKEN or len(token) < MIN_SECRET_LENGTH:
            problems.append(f"REACH_TOKEN must be a secret of {MIN_SECRET_LENGTH}+ characters")
        if self.dkim_private_key_file is None and self.dkim_private_key is None:
            problems.append(
                "DKIM_PRIVATE_KEY must be set (or DKIM_PRIVATE_KEY_FILE): Gmail and Yahoo send "
                "unsigned bulk mail to spam (deploy/README.md, Sending domain)"
            )
        problems.extend(self._webhook_problems())
        sender_domain = self.mail_from_address.rpartition("@")[2].lower()
        signing_domain = self.dkim_signing_domain
        if sender_domain != signing_domain and not sender_domain.endswith("." + signing_domain):
            problems.append(
                f"DKIM_DOMAIN {signing_domain} must be MAIL_FROM's domain {sender_domain} or a "
                "parent of it, or DMARC does not count the signature"
            )
        return problems

    def _webhook_problems(self) -> list[str]:
        problems = []
        if "ses" in self.bounce_webhooks:
            if not self.ses_sns_topic_arns:
                problems.append("SES_SNS_TOPIC_ARNS must name the SNS topics of the SES webhook")
            if self.ses_sns_cert_url_pattern != AWS_CERT_URL_PATTERN:
                problems.append("SES_SNS_CERT_URL_PATTERN must be Amazon's (unset it)")
        if "postmark" in self.bounce_webhooks:
            password = self.postmark_webhook_password.get_secret_value()
            if password == DEV_POSTMARK_WEBHOOK_PASSWORD or len(password) < MIN_SECRET_LENGTH:
                problems.append(
                    f"POSTMARK_WEBHOOK_PASSWORD must be a secret of {MIN_SECRET_LENGTH}+ characters"
                )
            if not self.postmark_webhook_user.strip():
                problems.append("POSTMARK_WEBHOOK_USER must be set")
        if "generic" in self.bounce_webhooks:
            token = self.bounce_webhook_token.get_secret_value()
            if token == DEV_BOUNCE_WEBHOOK_TOKEN or len(token) < MIN_SECRET_LENGTH:
                problems.append(
                    f"BOUNCE_WEBHOOK_TOKEN must be a secret of {MIN_SECRET_LENGTH}+ characters"
                )
        return problems
