"""The match rule (SPEC §3, items 2–7) written as plainly as possible.

This is the executable definition that :class:`~.index.MatchIndex` is tested against, and the
brute-force baseline of ``bench/match.py``. Item 1 (the subscriber is active) holds because only
active subscribers are given; item 8 (open opening, approved employer) is the caller's check.
"""

from __future__ import annotations

from collections.abc import Iterable

from hwcollab_common.geo import haversine_miles
from hwcollab_notifier.matching.criteria import (
    OpeningCriteria,
    SubscriberCriteria,
    within_radius,
)


def location_matches(sub: SubscriberCriteria, opening: OpeningCriteria) -> bool:
    if opening.remote and sub.remote_ok:
        return True
    if opening.lat is None or opening.lon is None:
        return False
    distance = haversine_miles(sub.lat, sub.lon, opening.lat, opening.lon)
    return within_radius(distance, sub.radius_miles)


def matches(sub: SubscriberCriteria, opening: OpeningCriteria) -> bool:
    """Whether ``opening`` is one that ``sub`` wants to hear about."""
    if opening.role not in sub.roles:
        return False
    if sub.settings and opening.setting not in sub.settings:
        return False
    if not opening.required_credentials <= sub.credentials:
        return False
    if sub.employment_types and opening.employment_type not in sub.employment_types:
        return False
    if (
        sub.min_pay_hourly is not None
        and opening.pay_max_hourly is not None
        and opening.pay_max_hourly < sub.min_pay_hourly
    ):
        return False
    return location_matches(sub, opening)


def match_all(subs: Iterable[SubscriberCriteria], opening: OpeningCriteria) -> list[str]:
    """The ids of every subscriber in ``subs`` that ``opening`` matches, in the given order."""
    return [sub.subscriber_id for sub in subs if matches(sub, opening)]
