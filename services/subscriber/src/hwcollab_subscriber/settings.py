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
    # Engagement and sunsetting (see the service's README).
    sunset_after_days: int = Field(default=180, ge=0)
    """Active subscribers with no click, keep or resume for this many days (counted from their
    confirmation) get one "still interested?" email; 0 turns sunsetting off."""
    sunset_grace_days: int = Field(default=14, ge=1)
    """Unanswered this many days after that email, alerts pause (reason "inactive")."""
    sunset_interval_seconds: float = Field(default=3600.0, gt=0)
    """How often one replica (holding a lease) looks for silent subscribers."""
    sunset_batch: int = Field(default=1000, ge=1, le=100_000)
    """At most this many asked, and as many paused, per run; the rest the next run."""
