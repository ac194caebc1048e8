"""Settings of the subscriber service (SPEC section 8 plus its own limits)."""

from __future__ import annotations

from pydantic import Field

from hwcollab_common.settings import ServiceSettings


class Settings(ServiceSettings):
    mongodb_database: str = "hwcollab_subscriber"
    # Rate limits in the ``limits`` notation ("N/second|minute|hour|day"), per replica.
    signup_rate_limit: str = "20/minute"
    """Sign-ups per client IP (``SIGNUP_RATE_LIMIT``)."""
    signup_address_rate_limit: str = "6/hour"
    """Sign-ups per email address (``SIGNUP_ADDRESS_RATE_LIMIT``)."""
    link_rate_limit: str = "20/minute"
    """"Email me a link" requests per client IP (``LINK_RATE_LIMIT``)."""
    link_address_rate_limit: str = "5/hour"
    """"Email me a link" requests per email address (``LINK_ADDRESS_RATE_LIMIT``)."""
    confirmation_resend_seconds: int = Field(default=600, ge=0)
    """At most one confirmation (or reminder) email per address in this window."""
    max_body_bytes: int = Field(default=32 * 1024, ge=1024)
    """Larger request bodies are refused with 413."""
