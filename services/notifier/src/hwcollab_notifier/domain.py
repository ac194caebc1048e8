"""The notifier's rules as plain functions: who is reachable, which openings may be announced,
when a digest is due, and how pairs and people are keyed. No I/O here."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final, Literal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hwcollab_common.geo import haversine_miles
from hwcollab_notifier.matching import (
    OpeningCriteria,
    SubscriberCriteria,
    subscriber_criteria,
)
from hwcollab_notifier.ports import Channel, RowStatus
from hwcollab_schemas.events import OpeningDetails, SubscriberProfile

ReadStatus = Literal["active", "paused", "bounced", "unsubscribed", "deleted"]
Period = Literal["daily", "weekly"]
WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FALLBACK_TIMEZONE: Final = "America/New_York"


def hash_id(value: str) -> str:
    """A one-way stand-in for an id or address, kept where the person's data must be erased."""
    return hashlib.sha256(f"hwcollab:{value}".encode()).hexdigest()


def pair_key(subscriber_id: str, opening_id: str) -> str:
    """The ledger key of a (subscriber, opening) pair; holds no personal data."""
    return hash_id(f"{subscriber_id}|{opening_id}")


def ledger_row(
    *, subscriber_id: str, opening_id: str, channel: Channel, now: datetime
) -> dict[str, object]:
    """A pair's ledger row, ``pending`` (see :mod:`hwcollab_notifier.ledger`)."""
    return {
        "_id": pair_key(subscriber_id, opening_id),
        "subscriber_id": subscriber_id,
        "subscriber_hash": hash_id(subscriber_id),
        "opening_id": opening_id,
        "channel": channel,
        "status": "pending",
        "matched_at": now,
        "updated_at": now,
        "attempts": 0,
    }


def recorded(
    row: Mapping[str, object],
    *,
    status: RowStatus,
    now: datetime,
    reason: str | None = None,
    count: bool = False,
) -> dict[str, object]:
    """``row`` as it is first written when its email has an outcome: an immediate pair has no
    row until then (``count``: the attempt was made and refused for now)."""
    written = {**row, "status": status, "updated_at": now}
    if reason is not None:
        written["reason"] = reason[:300]
    if count:
        attempts = row.get("attempts", 0)
        written["attempts"] = (attempts if isinstance(attempts, int) else 0) + 1
    return written


# Frequencies whose matches wait for a digest; every other one is emailed at once (the
# announcer's channel of a ledger row, and the reach estimate's split).
DIGEST_FREQUENCIES: Final = frozenset({"daily", "weekly"})


def criteria_of(profile: SubscriberProfile) -> SubscriberCriteria:
    return subscriber_criteria(
        subscriber_id=profile.subscriber_id,
        roles=profile.roles,
        settings=profile.settings,
        credentials=profile.credentials,
        employment_types=profile.employment_types,
        lat=profile.lat,
        lon=profile.lon,
        radius_miles=float(profile.radius_miles),
        remote_ok=profile.remote_ok,
        min_pay_hourly=profile.min_pay_hourly,
        digest=profile.frequency in DIGEST_FREQUENCIES,
    )


def opening_criteria(details: OpeningDetails) -> OpeningCriteria:
    return OpeningCriteria(
        role=details.role,
        setting=details.setting,
        required_credentials=frozenset(details.required_credentials),
        employment_type=details.employment_type,
        remote=details.remote,
        lat=details.lat,
        lon=details.lon,
        pay_max_hourly=details.pay_max_hourly(),
    )


def announceable(details: OpeningDetails, *, employer_status: str | None, now: datetime) -> bool:
    """SPEC §3 item 8: open, not expired, and its employer approved.

    The opening carries its employer's approval; the employer read model, when it knows the
    employer, must agree (an employer suspended since the opening was posted is not announced).
    """
    if details.status != "open" or details.expires_at <= now or not details.employer_approved:
        return False
    return employer_status in (None, "approved")


def distance_between(profile: SubscriberProfile, details: OpeningDetails) -> float | None:
    if details.remote or details.lat is None or details.lon is None:
        return None
    return haversine_miles(profile.lat, profile.lon, details.lat, details.lon)


def see_all_url(employer_public_url: str, profile: SubscriberProfile) -> str:
    query = urlencode({"zip": profile.zip, "radius_miles": profile.radius_miles})
    return f"{employer_public_url.rstrip('/')}/openings?{query}"


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(FALLBACK_TIMEZONE)


@dataclass(frozen=True, slots=True)
class DigestSchedule:
    """When a daily or weekly subscriber's digests go out: ``hour``:00 local time, every day or on
    ``weekday``. Local times that do not exist (spring forward) fall on the first instant after the
    gap; repeated ones (fall back) on the first of the two."""

    period: Period
    timezone: str
    hour: int
    weekday: str = "mon"

    @classmethod
    def of(cls, profile: SubscriberProfile) -> DigestSchedule | None:
        if profile.frequency == "immediate":
            return None
        return cls(
            period=profile.frequency,
            timezone=profile.timezone,
            hour=profile.digest_hour,
            weekday=profile.digest_weekday,
        )

    def _slot_on(self, day: date) -> datetime | None:
        if self.period == "weekly" and WEEKDAYS[day.weekday()] != self.weekday:
            return None
        # zoneinfo reads a wall time inside a spring-forward gap with the offset from before the
        # gap (PEP 495, fold=0), which is exactly the instant the clocks jump: 02:00 → 03:00 local.
        return datetime.combine(day, time(self.hour), tzinfo=zone(self.timezone)).astimezone(UTC)

    def last_due(self, as_of: datetime) -> datetime:
        """The latest scheduled instant at or before ``as_of`` (UTC)."""
        local_day = as_of.astimezone(zone(self.timezone)).date()
        for back in range(9):
            slot = self._slot_on(local_day - timedelta(days=back))
            if slot is not None and slot <= as_of:
                return slot
        raise AssertionError("a weekly schedule always has a slot within 9 days")

    def next_due(self, after: datetime) -> datetime:
        """The first scheduled instant strictly after ``after`` (UTC)."""
        local_day = after.astimezone(zone(self.timezone)).date()
        for ahead in range(9):
            slot = self._slot_on(local_day + timedelta(days=ahead))
            if slot is not None and slot > after:
                return slot
        raise AssertionError("a weekly schedule always has a slot within 9 days")

    def key(self, slot: datetime) -> str:
        """Names one digest: the period and its scheduled instant (the Message-ID key)."""
        return f"{self.period}:{slot.astimezone(UTC):%Y-%m-%dT%H:%MZ}"
