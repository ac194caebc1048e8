"""What the routes receive: the use cases, the links and the request limits, each behind a
dependency that ``create_app`` answers and a test replaces through ``overrides``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from hwcollab_common.composition import from_state
from hwcollab_common.emails import email_key
from hwcollab_common.ratelimit import RateLimiter, client_ip
from hwcollab_subscriber.handlers import Links, SubscriberService
from hwcollab_subscriber.settings import Settings

get_settings = from_state("settings", Settings)
get_service = from_state("service", SubscriberService)
get_links = from_state("links", Links)
get_limiter = from_state("limiter", RateLimiter)


@dataclass(frozen=True, slots=True)
class RequestLimits:
    """The sign-up and link-request limits of one request's client: a 429 when exceeded."""

    limiter: RateLimiter
    settings: Settings
    client: str

    def sign_up(self, address: str) -> None:
        """429 when this client or this address signs up too often."""
        self.limiter.hit(self.settings.signup_rate_limit, "signup-ip", self.client)
        self.limiter.hit(
            self.settings.signup_address_rate_limit, "signup-address", email_key(address)
        )

    def link_request(self, address: str) -> None:
        """429 when this client or this address asks for a preferences link too often."""
        self.limiter.hit(self.settings.link_rate_limit, "link-ip", self.client)
        self.limiter.hit(self.settings.link_address_rate_limit, "link-address", email_key(address))


AppSettings = Annotated[Settings, Depends(get_settings)]
Service = Annotated[SubscriberService, Depends(get_service)]
SignedLinks = Annotated[Links, Depends(get_links)]
Limiter = Annotated[RateLimiter, Depends(get_limiter)]


def get_limits(request: Request, limiter: Limiter, settings: AppSettings) -> RequestLimits:
    return RequestLimits(limiter=limiter, settings=settings, client=client_ip(request))


Limits = Annotated[RequestLimits, Depends(get_limits)]
