"""In-memory fakes of the subscriber service's ports, and an app wired to them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI

from hwcollab_common.clock import FixedClock
from hwcollab_common.tokens import LinkSigner
from hwcollab_schemas import Event
from hwcollab_subscriber.app import create_app
from hwcollab_subscriber.dependencies import get_links, get_service
from hwcollab_subscriber.domain import Subscriber
from hwcollab_subscriber.handlers import Links, SubscriberService
from hwcollab_subscriber.ports import DuplicateEmailError, StaleSubscriberError, Work
from hwcollab_subscriber.settings import Settings

T = TypeVar("T")
PUBLIC_URL = "https://alerts.example.org"
EMPLOYER_URL = "https://jobs.example.org"
SIGNING_KEY = "unit-test-link-signing-key-0123456789"


class FakeSubscribers:
    def __init__(self, rows: dict[str, Subscriber]) -> None:
        self._rows = rows

    async def get(self, subscriber_id: str) -> Subscriber | None:
        return self._rows.get(subscriber_id)

    async def find_by_email_key(self, key: str) -> Subscriber | None:
        return next((s for s in self._rows.values() if s.email_key == key), None)

    async def add(self, subscriber: Subscriber) -> None:
        if await self.find_by_email_key(subscriber.email_key):
            raise DuplicateEmailError(subscriber.email_key)
        self._rows[subscriber.subscriber_id] = subscriber

    async def save(self, subscriber: Subscriber, *, read_version: int) -> None:
        stored = self._rows.get(subscriber.subscriber_id)
        if stored is None or stored.version != read_version:
            raise StaleSubscriberError(subscriber.subscriber_id)
        self._rows[subscriber.subscriber_id] = subscriber

    async def erase(self, subscriber_id: str) -> None:
        self._rows.pop(subscriber_id, None)


class FakeStore:
    """Transactions that roll back on error; committed events collect in ``events``."""

    def __init__(self) -> None:
        self.rows: dict[str, Subscriber] = {}
        self.events: list[Event] = []
        self.processed: set[str] = set()

    async def transact(self, work: Work[T]) -> T:
        snapshot = dict(self.rows)
        try:
            result, events = await work(FakeSubscribers(self.rows))
        except BaseException:
            self.rows.clear()
            self.rows.update(snapshot)
            raise
        self.events.extend(events)
        return result

    async def transact_once(self, event: Event, work: Work[None]) -> bool:
        if str(event.event_id) in self.processed:
            return False
        await self.transact(work)
        self.processed.add(str(event.event_id))
        return True

    async def record_engagement(
        self, subscriber_id: str, *, now: datetime, every: timedelta
    ) -> bool:
        subscriber = self.rows.get(subscriber_id)
        if subscriber is None or subscriber.status not in ("active", "paused"):
            return False
        if subscriber.last_engaged_at is not None and subscriber.last_engaged_at > now - every:
            return False
        self.rows[subscriber_id] = replace(
            subscriber,
            last_engaged_at=now,
            sunset_notice_at=None,
            updated_at=now,
            version=subscriber.version + 1,
        )
        return True

    async def silent_ids(self, *, cutoff: datetime, limit: int) -> list[str]:
        def quiet(moment: datetime | None) -> bool:
            return moment is None or moment <= cutoff

        found = [
            s
            for s in self.rows.values()
            if s.status == "active"
            and s.sunset_notice_at is None
            and s.confirmed_at is not None
            and s.confirmed_at <= cutoff
            and quiet(s.last_engaged_at)
            and quiet(s.kept_at)
        ]
        found.sort(key=lambda s: s.confirmed_at or cutoff)
        return [s.subscriber_id for s in found[:limit]]

    async def unanswered_ids(self, *, cutoff: datetime, limit: int) -> list[str]:
        return [
            s.subscriber_id
            for s in self.rows.values()
            if s.status == "active"
            and s.sunset_notice_at is not None
            and s.sunset_notice_at <= cutoff
        ][:limit]

    async def take_lease(self, name: str, *, owner: str, now: datetime, ttl: timedelta) -> bool:
        return True

    def events_of(self, event_type: str) -> list[Event]:
        return [e for e in self.events if e.event_type == event_type]

    def only(self) -> Subscriber:
        (subscriber,) = self.rows.values()
        return subscriber


def sign_up_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "email": "Jordan.Lee@Example.org",
        "first_name": "Jordan",
        "roles": ["care_coordination", "nurse_care_manager"],
        "settings": ["medical"],
        "credentials": ["rn"],
        "employment_types": ["full_time"],
        "zip": "01608",
        "radius_miles": 30,
        "remote_ok": True,
        "frequency": "daily",
        "digest_hour": 7,
        "digest_weekday": "tue",
        "min_pay_hourly": 30,
        "career_info": True,
    }
    body.update(changes)
    return body


def preferences_body(**changes: Any) -> dict[str, Any]:
    body = sign_up_body(**changes)
    body.pop("email")
    return body


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 3, 2, 14, 0, tzinfo=UTC))


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def links(clock: FixedClock) -> Links:
    return Links(
        LinkSigner(SIGNING_KEY, clock=clock),
        public_url=PUBLIC_URL,
        employer_public_url=EMPLOYER_URL,
    )


@pytest.fixture
def service(store: FakeStore, links: Links, clock: FixedClock) -> SubscriberService:
    return SubscriberService(store=store, links=links, clock=clock)


def make_app(
    store: FakeStore, clock: FixedClock, **settings: Any
) -> tuple[FastAPI, SubscriberService]:
    """The real app with its routers, error pages and limits, its service on the fake store in
    place of the MongoDB one (a dependency override, as any test replaces a use case)."""
    links = Links(
        LinkSigner(SIGNING_KEY, clock=clock),
        public_url=PUBLIC_URL,
        employer_public_url=EMPLOYER_URL,
    )
    service = SubscriberService(store=store, links=links, clock=clock)
    app = create_app(
        Settings(
            link_signing_key=SIGNING_KEY,
            subscriber_public_url=PUBLIC_URL,
            employer_public_url=EMPLOYER_URL,
            mongodb_database="unused",
            **settings,
        ),
        clock=clock,
        overrides={get_service: lambda: service, get_links: lambda: links},
    )
    return app, service


@pytest.fixture
async def client(store: FakeStore, clock: FixedClock) -> AsyncIterator[httpx.AsyncClient]:
    app, _ = make_app(store, clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as http:
        yield http


def token_from(url: str) -> str:
    return httpx.URL(url).params["token"]


def payload_of(events: Sequence[Event], event_type: str) -> Any:
    (event,) = [e for e in events if e.event_type == event_type]
    return event.payload


class Helpers:
    """Helpers for test modules (conftest is not importable under --import-mode=importlib)."""

    sign_up_body = staticmethod(sign_up_body)
    preferences_body = staticmethod(preferences_body)
    token_from = staticmethod(token_from)
    payload_of = staticmethod(payload_of)
    make_app = staticmethod(make_app)


@pytest.fixture
def helpers() -> type[Helpers]:
    return Helpers
