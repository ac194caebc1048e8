"""Settings shared by every service (SPEC section 8); each service extends :class:`ServiceSettings`.

This is the only place that reads the environment. Development defaults for secrets are public, so
``HWCOLLAB_ENV=prod`` refuses to start with them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEV_LINK_SIGNING_KEY = "dev-only-link-signing-key-change-me"
DEV_ADMIN_TOKEN = "dev-only-admin-token"  # noqa: S105 - public on purpose; prod refuses it
# Shared by the employer service and the notifier for the reach estimate's internal endpoint.
DEV_REACH_TOKEN = "dev-only-reach-token"  # noqa: S105 - public on purpose; prod refuses it
DEV_POSTAL_ADDRESS = "HWcollab, 100 Example Street, Worcester, MA 01608"
MIN_SECRET_LENGTH = 32


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    hwcollab_env: Literal["dev", "test", "prod"] = "dev"
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_topic_partitions: int = Field(default=6, ge=1, le=1000)
    mongodb_url: SecretStr = SecretStr(
        "mongodb://127.0.0.1:27017/?directConnection=true&retryWrites=false"
    )
    mongodb_database: str = "hwcollab"
    subscriber_public_url: str = "http://127.0.0.1:8001"
    employer_public_url: str = "http://127.0.0.1:8002"
    link_signing_key: SecretStr = SecretStr(DEV_LINK_SIGNING_KEY)
    link_signing_key_fallbacks: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    admin_token: SecretStr = SecretStr(DEV_ADMIN_TOKEN)
    hwcollab_data_dir: Path = Path("var")
    log_level: str = "INFO"
    log_json: bool | None = None
    """One JSON object per log line; unset means JSON when ``HWCOLLAB_ENV=prod``."""
    tracing_exporter: Literal["none", "console", "otlp"] = "none"
    otel_exporter_otlp_endpoint: str | None = None
    """The OTLP/HTTP collector's base URL (the standard variable); ``/v1/traces`` is appended."""
    metrics_sample_seconds: float = Field(default=15.0, gt=0)
    """How often consumer lag and the outbox backlog are sampled for ``/metrics``."""
    outbox_poll_seconds: float = Field(default=0.5, gt=0)
    consumer_group_suffix: str = Field(default="", max_length=100, pattern=r"^[A-Za-z0-9._-]*$")
    """Appended to the service's consumer group ids; empty in deployments. Tests give the
    processes they start groups of their own, so that no other process holds their partitions."""

    @field_validator("link_signing_key_fallbacks", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("subscriber_public_url", "employer_public_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _refuse_dev_secrets_in_prod(self) -> ServiceSettings:
        if self.hwcollab_env != "prod":
            return self
        problems = []
        key = self.link_signing_key.get_secret_value()
        if key == DEV_LINK_SIGNING_KEY or len(key) < MIN_SECRET_LENGTH:
            problems.append(f"LINK_SIGNING_KEY must be a secret of {MIN_SECRET_LENGTH}+ characters")
        token = self.admin_token.get_secret_value()
        if token == DEV_ADMIN_TOKEN or len(token) < MIN_SECRET_LENGTH:
            problems.append(f"ADMIN_TOKEN must be a secret of {MIN_SECRET_LENGTH}+ characters")
        problems.extend(self.production_problems())
        if problems:
            raise ValueError("refusing to start in production: " + "; ".join(problems))
        return self

    def production_problems(self) -> list[str]:
        """Service-specific reasons not to start with HWCOLLAB_ENV=prod; overridden by services."""
        return []

    @property
    def fallback_keys(self) -> tuple[str, ...]:
        return tuple(k.get_secret_value() for k in self.link_signing_key_fallbacks)
