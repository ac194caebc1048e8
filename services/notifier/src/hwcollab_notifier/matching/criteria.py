"""What the match rule (SPEC §3) looks at, as plain frozen data, and the rule's arithmetic.

The notifier builds a :class:`SubscriberCriteria` from each active subscriber's profile and an
:class:`OpeningCriteria` from each open opening of an approved employer; the matching code (the
reference in :mod:`.reference` and the index in :mod:`.index`) only ever sees these.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hwcollab_schemas.taxonomy import HOURS_PER_YEAR, PayPeriod, expand_roles

MIN_RADIUS_MILES = 1.0
MAX_RADIUS_MILES = 250.0
# Distances are compared with this slack (about 1.6 mm) so that the vectorized index and the plain
# reference agree even where their floating-point rounding differs in the last bits.
DISTANCE_TOLERANCE_MILES = 1e-6


@dataclass(frozen=True, slots=True)
class SubscriberCriteria:
    """An active subscriber as the match rule sees it; ``roles`` are already family-expanded.

    Empty ``settings`` or ``employment_types`` mean "any".
    """

    subscriber_id: str
    roles: frozenset[str]
    settings: frozenset[str]
    credentials: frozenset[str]
    employment_types: frozenset[str]
    lat: float
    lon: float
    radius_miles: float
    remote_ok: bool
    min_pay_hourly: float | None = None
    digest: bool = False
    """Matches reach this subscriber in a digest (daily or weekly) rather than at once; the match
    rule ignores it, the reach estimate counts by it."""

    def __post_init__(self) -> None:
        if not MIN_RADIUS_MILES <= self.radius_miles <= MAX_RADIUS_MILES:
            raise ValueError(
                f"radius_miles must be within {MIN_RADIUS_MILES:g}–{MAX_RADIUS_MILES:g}, "
                f"got {self.radius_miles}"
            )
        if not self.roles:
            raise ValueError("a subscriber wants at least one role")


@dataclass(frozen=True, slots=True)
class OpeningCriteria:
    """An open opening as the match rule sees it; a remote opening may still have a place."""

    role: str
    setting: str
    required_credentials: frozenset[str]
    employment_type: str
    remote: bool
    lat: float | None
    lon: float | None
    pay_max_hourly: float | None = None

    def __post_init__(self) -> None:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("an opening's lat and lon are given together or not at all")
        if not self.remote and self.lat is None:
            raise ValueError("an opening that is not remote needs a place (lat, lon)")


def subscriber_criteria(
    *,
    subscriber_id: str,
    roles: Iterable[str],
    settings: Iterable[str],
    credentials: Iterable[str],
    employment_types: Iterable[str],
    lat: float,
    lon: float,
    radius_miles: float,
    remote_ok: bool,
    min_pay_hourly: float | None,
    digest: bool = False,
) -> SubscriberCriteria:
    """Criteria from a profile as the subscriber chose it (role and family codes mixed)."""
    return SubscriberCriteria(
        subscriber_id=subscriber_id,
        roles=expand_roles(roles),
        settings=frozenset(settings),
        credentials=frozenset(credentials),
        employment_types=frozenset(employment_types),
        lat=lat,
        lon=lon,
        radius_miles=radius_miles,
        remote_ok=remote_ok,
        min_pay_hourly=min_pay_hourly,
        digest=digest,
    )


def hourly_pay(
    *, pay_min: float | None, pay_max: float | None, pay_period: PayPeriod
) -> float | None:
    """The opening's stated maximum pay per hour, or None when it states no pay.

    A yearly figure is divided by ``HOURS_PER_YEAR`` (2080); when only a minimum is stated, it is
    the most the opening says it pays.
    """
    top = pay_max if pay_max is not None else pay_min
    if top is None:
        return None
    if pay_period == "year":
        return top / HOURS_PER_YEAR
    return float(top)


def within_radius(distance: float, radius_miles: float) -> bool:
    return distance <= radius_miles + DISTANCE_TOLERANCE_MILES
