"""Employer service settings (SPEC section 8); the only place this service reads the environment."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from hwcollab_common.settings import DEV_REACH_TOKEN, MIN_SECRET_LENGTH, ServiceSettings

DEV_EMPLOYER_SESSION_KEY = "dev-only-employer-session-key-change-me"


class Settings(ServiceSettings):
    mongodb_database: str = "hwcollab_employer"
    # auto: new organizations are approved at once; manual: they wait for an operator.
    employer_approval: Literal["auto", "manual"] = "auto"
    # Signs API bearer tokens and page sessions (never the link tokens of LINK_SIGNING_KEY).
    employer_session_key: SecretStr = SecretStr(DEV_EMPLOYER_SESSION_KEY)
    access_token_ttl_seconds: int = Field(default=3600, ge=60, le=86_400)
    session_ttl_seconds: int = Field(default=8 * 3600, ge=300, le=7 * 86_400)
    # How often the background task closes openings past their expires_at.
    opening_expiry_interval_seconds: float = Field(default=60.0, gt=0)
    # Limits per client address (login also per email address).
    login_rate_limit: str = "10/minute"
    signup_rate_limit: str = "30/hour"
    write_rate_limit: str = "120/minute"
    # "Forgot your password?": per client address and per email address asked about.
    password_reset_rate_limit: str = "5/hour"  # noqa: S105 - a limit, not a secret
    # Reach estimates: per employer (a form asks again as it changes, a little after each edit).
    estimate_rate_limit: str = "60/minute"
    # The notifier's internal reach endpoint (base URL), its token, and how long to wait for it.
    notifier_url: str = "http://127.0.0.1:8003"
    reach_token: SecretStr = SecretStr(DEV_REACH_TOKEN)
    reach_timeout_seconds: float = Field(default=0.3, gt=0, le=10)

    def production_problems(self) -> list[str]:
        problems = []
        key = self.employer_session_key.get_secret_value()
        if key == DEV_EMPLOYER_SESSION_KEY or len(key) < MIN_SECRET_LENGTH:
            problems.append(
                f"EMPLOYER_SESSION_KEY must be a secret of {MIN_SECRET_LENGTH}+ characters"
            )
        token = self.reach_token.get_secret_value()
        if token == DEV_REACH_TOKEN or len(token) < MIN_SECRET_LENGTH:
            problems.append(f"REACH_TOKEN must be a secret of {MIN_SECRET_LENGTH}+ characters")
        return problems

    @property
    def secure_cookies(self) -> bool:
        """Cookies carry ``Secure`` when the service is reached over https."""
        return self.employer_public_url.startswith("https://")
