"""Events that tests put straight onto the product topics, as the services would publish them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from aiokafka import AIOKafkaProducer

from hwcollab_schemas import Event
from hwcollab_schemas.events import (
    ManageLinkRequestedPayload,
    OpeningDetails,
    OpeningPosted,
    SubscriberManageLinkRequested,
    SubscriberProfile,
    SubscriberRegistered,
    SubscriberUpdated,
)
from hwcollab_schemas.taxonomy import Frequency

__all__ = [
    "Location",
    "Place",
    "Publish",
    "event_publisher",
    "manage_link_requested",
    "posted",
    "registered",
]

Publish = Callable[[Event], Awaitable[None]]


class Location(Protocol):
    """Where a subscriber lives: a ``Place``, or a ``hwcollab_common.geo.ZipPlace``."""

    @property
    def zip(self) -> str: ...
    @property
    def lat(self) -> float: ...
    @property
    def lon(self) -> float: ...
    @property
    def timezone(self) -> str: ...


@dataclass(frozen=True)
class Place:
    zip: str
    lat: float
    lon: float
    timezone: str = "America/Chicago"


def registered(
    subscriber_id: str,
    email: str,
    *,
    place: Location,
    now: datetime,
    version: int = 1,
    radius_miles: int = 25,
    frequency: Frequency = "immediate",
    credentials: tuple[str, ...] = (),
) -> Event:
    """An active care-management subscriber at ``place`` (immediate unless ``frequency`` says
    otherwise); a later ``version`` is their ``subscriber.updated``."""
    kind = SubscriberRegistered if version == 1 else SubscriberUpdated
    return kind.create(
        SubscriberProfile(
            subscriber_id=subscriber_id,
            version=version,
            radius_miles=radius_miles,
            email=email,
            roles=("care_management",),
            frequency=frequency,
            credentials=credentials,
            zip=place.zip,
            lat=place.lat,
            lon=place.lon,
            timezone=place.timezone,
            confirmed_at=now,
        ),
        producer="test",
        occurred_at=now,
    )


def manage_link_requested(subscriber_id: str, email: str, *, now: datetime) -> Event:
    return SubscriberManageLinkRequested.create(
        ManageLinkRequestedPayload(
            subscriber_id=subscriber_id,
            email=email,
            manage_url=f"http://127.0.0.1:8001/preferences?token={subscriber_id}",
        ),
        producer="test",
        occurred_at=now,
    )


def posted(opening_id: str, *, employer_id: str, place: Location, now: datetime) -> Event:
    """An open care-manager opening about a mile from ``place``, employer approved."""
    return OpeningPosted.create(
        OpeningDetails(
            opening_id=opening_id,
            employer_id=employer_id,
            version=1,
            organization_name="North Star Health",
            employer_approved=True,
            title="Care Manager",
            role="care_manager",
            setting="medical",
            employment_type="full_time",
            zip=place.zip,
            lat=place.lat + 0.015,
            lon=place.lon,
            apply_url="https://northstar.example/apply",
            posted_at=now,
            expires_at=now + timedelta(days=30),
        ),
        producer="test",
        occurred_at=now,
    )


@asynccontextmanager
async def event_publisher(bootstrap: str) -> AsyncIterator[Publish]:
    """``publish(event)``: straight to the event's topic, keyed like the services key it."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()

    async def publish(event: Event) -> None:
        await producer.send_and_wait(event.topic, event.to_bytes(), key=event.key.encode())

    try:
        yield publish
    finally:
        await producer.stop()
