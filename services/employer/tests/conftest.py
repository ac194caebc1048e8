"""In-memory fakes of the employer service's ports, and an app built on them (no network)."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import pytest
from argon2 import PasswordHasher

from hwcollab_common.clock import FixedClock
from hwcollab_common.geo import ZipPlace, haversine_miles
from hwcollab_employer.app import create_app
from hwcollab_employer.context import get_service
from hwcollab_employer.domain import ConflictError, Employer, Opening, Place
from hwcollab_employer.handlers import EmployerService
from hwcollab_employer.idempotency import IdempotencyRecord
from hwcollab_employer.listing import (
    BoardQuery,
    DirectoryQuery,
    EmployerListing,
    OpeningListing,
    Page,
    offset_of,
)
from hwcollab_employer.ports import (
    ApiKeyRecord,
    DuplicateEmailError,
    DuplicateExternalIdError,
    EmployerTransaction,
    IdempotencyKeyTakenError,
    PasswordResetRecord,
    Work,
)
from hwcollab_employer.reach import NoReach, reach_source
from hwcollab_employer.security import Passwords
from hwcollab_employer.settings import Settings
from hwcollab_schemas import Event

T = TypeVar("T")
E = TypeVar("E", bound=Event)

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
ADMIN_TOKEN = "test-admin-token"
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
"""Tests create accounts as an operator does (verified at once); sign-up has tests of its own."""


def geo_near_miles(near: ZipPlace, place: Place) -> float:
    """The distance ``$geoNear`` gives between a searched ZIP and a stored place, in miles."""
    return haversine_miles(near.lat, near.lon, place.lat, place.lon)


def _contains(text: str | None, *fields: str) -> bool:
    """MongoDB's case-insensitive match of ``text`` in any one of ``fields`` (never across two)."""
    return not text or any(text.lower() in field.lower() for field in fields)


def _newest_first(opening: Opening) -> tuple[float, str]:
    """MongoDB's order of openings: newest first, then by id."""
    return (-opening.posted_at.timestamp(), opening.opening_id)


class FakeRepository:
    """Both ports in memory: the reads outside a transaction and, handed to the work of a
    :class:`FakeUnitOfWork`, the :class:`EmployerTransaction` (whose all-or-nothing the unit of
    work gives by restoring a snapshot)."""

    def __init__(self) -> None:
        self.employers: dict[str, Employer] = {}
        self.openings: dict[str, Opening] = {}
        self.api_keys_by_id: dict[str, ApiKeyRecord] = {}
        self.idempotency: dict[tuple[str, str], IdempotencyRecord] = {}
        self.password_resets: dict[str, PasswordResetRecord] = {}

    def snapshot(self) -> dict[str, Any]:
        return {k: (v.copy() if hasattr(v, "copy") else v) for k, v in vars(self).items()}

    def restore(self, state: dict[str, Any]) -> None:
        vars(self).update(state)

    async def add_employer(self, employer: Employer) -> None:
        if any(e.contact_email == employer.contact_email for e in self.employers.values()):
            raise DuplicateEmailError(employer.contact_email)
        self.employers[employer.employer_id] = employer

    async def get_employer(self, employer_id: str) -> Employer | None:
        return self.employers.get(employer_id)

    async def employer_by_email(self, email: str) -> Employer | None:
        return next((e for e in self.employers.values() if e.contact_email == email), None)

    async def save_employer(self, employer: Employer) -> None:
        if any(
            e.contact_email == employer.contact_email and e.employer_id != employer.employer_id
            for e in self.employers.values()
        ):
            raise DuplicateEmailError(employer.contact_email)
        self.employers[employer.employer_id] = employer

    async def employers_with_status(self, status: str, *, limit: int) -> list[Employer]:
        found = [e for e in self.employers.values() if e.status == status]
        return sorted(found, key=lambda e: e.created_at)[:limit]

    def _check_external_id(self, opening: Opening) -> None:
        external_id = opening.fields.external_id
        if external_id is not None and any(
            o.employer_id == opening.employer_id
            and o.fields.external_id == external_id
            and o.opening_id != opening.opening_id
            for o in self.openings.values()
        ):
            raise DuplicateExternalIdError(external_id)

    async def add_opening(self, opening: Opening) -> None:
        self._check_external_id(opening)
        self.openings[opening.opening_id] = opening

    async def opening_by_external_id(self, employer_id: str, external_id: str) -> Opening | None:
        return next(
            (
                o
                for o in self.openings.values()
                if o.employer_id == employer_id and o.fields.external_id == external_id
            ),
            None,
        )

    async def idempotency_record(self, principal: str, key: str) -> IdempotencyRecord | None:
        return self.idempotency.get((principal, key))

    async def keep_idempotency_record(
        self, record: IdempotencyRecord, *, replaces: IdempotencyRecord | None
    ) -> None:
        at = (record.claim.principal, record.claim.key)
        if self.idempotency.get(at) != replaces:
            raise IdempotencyKeyTakenError(record.claim.key)
        self.idempotency[at] = record

    async def get_opening(self, opening_id: str) -> Opening | None:
        return self.openings.get(opening_id)

    async def save_opening(self, opening: Opening, *, previous_version: int) -> None:
        current = self.openings.get(opening.opening_id)
        if current is None or current.version != previous_version:
            raise ConflictError("changed meanwhile")
        self._check_external_id(opening)
        self.openings[opening.opening_id] = dataclasses.replace(opening, notified=current.notified)

    async def openings_of(self, employer_id: str, *, open_only: bool = False) -> list[Opening]:
        found = [
            o
            for o in self.openings.values()
            if o.employer_id == employer_id and (o.is_open or not open_only)
        ]
        return sorted(found, key=lambda o: o.posted_at, reverse=True)

    async def recent_openings(self, *, limit: int) -> list[Opening]:
        return sorted(self.openings.values(), key=lambda o: o.posted_at, reverse=True)[:limit]

    async def expired_openings(self, *, now: datetime, limit: int) -> list[Opening]:
        due = [o for o in self.openings.values() if o.is_open and o.expires_at <= now]
        return sorted(due, key=lambda o: o.expires_at)[:limit]

    async def refresh_listing(self, employer_id: str) -> None:
        """Counts are computed at search time in this fake."""

    def _open_of(self, employer_id: str) -> list[Opening]:
        return [o for o in self.openings.values() if o.employer_id == employer_id and o.is_open]

    async def search_employers(self, query: DirectoryQuery) -> Page[EmployerListing]:
        found: list[EmployerListing] = []
        for employer in self.employers.values():
            if not employer.approved or (query.setting and query.setting not in employer.settings):
                continue
            openings = self._open_of(employer.employer_id)
            if query.roles and not {o.fields.role for o in openings} & set(query.roles):
                continue
            place = employer.place
            if not _contains(
                query.text, employer.organization_name, employer.description, place.city
            ):
                continue
            distance = None
            if query.near:
                distance = geo_near_miles(query.near, place)
                if distance > query.radius_miles:
                    continue
            found.append(EmployerListing(employer, distance, len(openings)))
        if query.near:
            found.sort(key=lambda item: item.distance_miles or 0.0)
        else:
            found.sort(
                key=lambda item: (item.employer.organization_name, item.employer.employer_id)
            )
        start = offset_of(query.page, query.page_size)
        return Page(found[start : start + query.page_size], len(found), query.page, query.page_size)

    async def search_openings(self, query: BoardQuery, *, now: datetime) -> Page[OpeningListing]:
        local: list[OpeningListing] = []
        remote: list[OpeningListing] = []
        for o in sorted(self.openings.values(), key=_newest_first):
            if not (o.is_open and o.employer_approved and o.expires_at > now):
                continue
            if (query.roles and o.fields.role not in query.roles) or (
                query.setting and o.fields.setting != query.setting
            ):
                continue
            if not _contains(query.text, o.fields.title, o.organization_name, o.fields.description):
                continue
            if o.fields.remote:
                if query.include_remote:
                    remote.append(OpeningListing(o, None))
                continue
            distance = None
            if query.near and o.place:
                distance = geo_near_miles(query.near, o.place)
                if distance > query.radius_miles:
                    continue
            local.append(OpeningListing(o, distance))
        if query.near:
            local.sort(key=lambda item: item.distance_miles or 0.0)
            found = local + remote
        else:
            found = sorted(local + remote, key=lambda i: _newest_first(i.opening))
        start = offset_of(query.page, query.page_size)
        return Page(found[start : start + query.page_size], len(found), query.page, query.page_size)

    async def add_api_key(self, record: ApiKeyRecord) -> None:
        self.api_keys_by_id[record.key_id] = record

    async def api_keys_of(self, employer_id: str) -> list[ApiKeyRecord]:
        return [k for k in self.api_keys_by_id.values() if k.employer_id == employer_id]

    async def api_key(self, key_id: str) -> ApiKeyRecord | None:
        return self.api_keys_by_id.get(key_id)

    async def revoke_api_key(self, employer_id: str, key_id: str, *, now: datetime) -> bool:
        record = self.api_keys_by_id.get(key_id)
        if record is None or record.employer_id != employer_id or record.revoked_at is not None:
            return False
        self.api_keys_by_id[key_id] = dataclasses.replace(record, revoked_at=now)
        return True

    async def add_password_reset(self, record: PasswordResetRecord) -> None:
        self.password_resets[record.token_hash] = record

    async def password_reset(self, token_hash: str, *, now: datetime) -> PasswordResetRecord | None:
        record = self.password_resets.get(token_hash)
        return record if record is not None and record.expires_at > now else None

    async def take_password_reset(
        self, token_hash: str, *, now: datetime
    ) -> PasswordResetRecord | None:
        record = await self.password_reset(token_hash, now=now)
        if record is not None:
            del self.password_resets[token_hash]
        return record

    async def drop_password_resets(self, employer_id: str) -> None:
        self.password_resets = {
            h: r for h, r in self.password_resets.items() if r.employer_id != employer_id
        }

    async def count_reach(self, counts: Mapping[str, int]) -> None:
        for opening_id, count in counts.items():
            opening = self.openings.get(opening_id)
            if opening is not None:
                self.openings[opening_id] = dataclasses.replace(
                    opening, notified=opening.notified + count
                )


class FakeUnitOfWork:
    """Runs work against the fake repository, all or nothing, and keeps the events 'published'."""

    def __init__(self, repository: FakeRepository) -> None:
        self._repository = repository
        self.events: list[Event] = []
        self.applied: set[str] = set()

    async def commit(self, work: Work[T]) -> T:
        state = self._repository.snapshot()
        try:
            result, events = await work(self._repository)
        except BaseException:
            self._repository.restore(state)
            raise
        self.events.extend(events)
        return result

    async def apply_once(
        self, event: Event, work: Callable[[EmployerTransaction], Awaitable[None]]
    ) -> bool:
        if str(event.event_id) in self.applied:
            return False
        state = self._repository.snapshot()
        try:
            await work(self._repository)
        except BaseException:
            self._repository.restore(state)
            raise
        self.applied.add(str(event.event_id))
        return True

    def of_type(self, event_type: str) -> list[Event]:
        return [e for e in self.events if e.event_type == event_type]

    def of_class(self, event_class: type[E]) -> list[E]:
        """The published events of ``event_class``, typed as such."""
        return [e for e in self.events if isinstance(e, event_class)]


# Cheap Argon2id parameters: the tests check behaviour, not hashing cost.
FAST_PASSWORDS = Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


class Harness:
    def __init__(self, *, auto_approve: bool = True, settings: Settings | None = None) -> None:
        self.clock = FixedClock(NOW)
        self.repository = FakeRepository()
        self.uow = FakeUnitOfWork(self.repository)
        self.service = EmployerService(
            repository=self.repository,
            unit_of_work=self.uow,
            clock=self.clock,
            passwords=FAST_PASSWORDS,
            auto_approve=auto_approve,
        )
        self.settings = settings or Settings(
            admin_token=ADMIN_TOKEN,
            employer_approval="auto" if auto_approve else "manual",
            login_rate_limit="5/minute",
        )
        # The real app with its routers, error pages and limits; its use cases on the fakes.
        self.app = create_app(
            self.settings,
            clock=self.clock,
            overrides={get_service: lambda: self.service, reach_source: NoReach},
        )

    def client(self, ip: str = "127.0.0.1") -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app, client=(ip, 123)),
            base_url="http://employer.test",
        )


@pytest.fixture
def harness() -> Harness:
    return Harness()


@pytest.fixture
def manual_harness() -> Harness:
    return Harness(auto_approve=False)


def signup_body(email: str = "hr@worcester-care.example", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "organization_name": "Worcester Care Partners",
        "contact_email": email,
        "password": "a very long passphrase",
        "website": "https://worcester-care.example",
        "description": "Care coordination in Worcester County.",
        "address": {"street": "1 Main St", "city": "Worcester", "state": "MA", "zip": "01608"},
        "settings": ["medical"],
    }
    return body | changes


def opening_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "RN Care Manager",
        "role": "nurse_care_manager",
        "setting": "medical",
        "required_credentials": ["rn"],
        "employment_type": "full_time",
        "zip": "01608",
        "pay_min": 38,
        "pay_max": 46,
        "pay_period": "hour",
        "description": "Coordinate care for adults.",
        "apply_url": "https://worcester-care.example/jobs/1",
    }
    return body | changes


BodyFactory = Callable[..., dict[str, Any]]
"""What the ``signup`` and ``opening_json`` fixtures give: a JSON body, with changes as keywords."""


@pytest.fixture
def signup() -> BodyFactory:
    return signup_body


@pytest.fixture
def opening_json() -> BodyFactory:
    return opening_body
