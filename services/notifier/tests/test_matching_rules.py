"""The match rule (SPEC §3) case by case, checked on the reference and on the index alike."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace

import pytest

from hwcollab_common.geo import haversine_miles
from hwcollab_notifier.matching import (
    MatchIndex,
    OpeningCriteria,
    SubscriberCriteria,
    hourly_pay,
    subscriber_criteria,
)
from hwcollab_notifier.matching.reference import match_all
from hwcollab_schemas.taxonomy import FAMILIES, UnknownCodeError

Engine = Callable[[Sequence[SubscriberCriteria], OpeningCriteria], set[str]]

PHILADELPHIA = (39.9526, -75.1652)
HARRISBURG = (40.2732, -76.8867)


def by_reference(subs: Sequence[SubscriberCriteria], opening: OpeningCriteria) -> set[str]:
    return set(match_all(subs, opening))


def by_index(subs: Sequence[SubscriberCriteria], opening: OpeningCriteria) -> set[str]:
    index = MatchIndex()
    index.build(subs)
    return set(index.match(opening).subscriber_ids())


def by_index_updates(subs: Sequence[SubscriberCriteria], opening: OpeningCriteria) -> set[str]:
    """Subscribers arriving one by one (the delta path) rather than in bulk."""
    index = MatchIndex()
    for sub in subs:
        index.upsert(sub)
    return set(index.match(opening).subscriber_ids())


@pytest.fixture(params=[by_reference, by_index, by_index_updates])
def engine(request: pytest.FixtureRequest) -> Engine:
    chosen: Engine = request.param
    return chosen


def subscriber(**changes: object) -> SubscriberCriteria:
    base = SubscriberCriteria(
        subscriber_id=str(uuid.uuid4()),
        roles=frozenset({"care_coordinator"}),
        settings=frozenset(),
        credentials=frozenset(),
        employment_types=frozenset(),
        lat=PHILADELPHIA[0],
        lon=PHILADELPHIA[1],
        radius_miles=25,
        remote_ok=False,
        min_pay_hourly=None,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def opening(**changes: object) -> OpeningCriteria:
    base = OpeningCriteria(
        role="care_coordinator",
        setting="medical",
        required_credentials=frozenset(),
        employment_type="full_time",
        remote=False,
        lat=PHILADELPHIA[0],
        lon=PHILADELPHIA[1],
        pay_max_hourly=None,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_nearby_subscriber_with_the_role_matches(engine: Engine) -> None:
    sub = subscriber()
    assert engine([sub], opening()) == {sub.subscriber_id}


def test_other_role_does_not_match(engine: Engine) -> None:
    assert engine([subscriber(roles=frozenset({"case_manager"}))], opening()) == set()


def test_family_stands_for_all_its_roles(engine: Engine) -> None:
    family = subscriber_criteria(
        subscriber_id=str(uuid.uuid4()),
        roles=["care_management"],
        settings=[],
        credentials=[],
        employment_types=[],
        lat=PHILADELPHIA[0],
        lon=PHILADELPHIA[1],
        radius_miles=25,
        remote_ok=False,
        min_pay_hourly=None,
    )
    for role in FAMILIES["care_management"].roles:
        assert engine([family], opening(role=role)) == {family.subscriber_id}
    assert engine([family], opening(role="care_coordinator")) == set()


def test_unknown_role_code_is_refused() -> None:
    with pytest.raises(UnknownCodeError):
        subscriber_criteria(
            subscriber_id="x",
            roles=["astronaut"],
            settings=[],
            credentials=[],
            employment_types=[],
            lat=0.0,
            lon=0.0,
            radius_miles=25,
            remote_ok=False,
            min_pay_hourly=None,
        )


def test_empty_settings_and_types_mean_any(engine: Engine) -> None:
    anything = subscriber()
    picky = subscriber(
        settings=frozenset({"behavioral_health"}), employment_types=frozenset({"part_time"})
    )
    subs = [anything, picky]
    assert engine(subs, opening()) == {anything.subscriber_id}
    wanted = opening(setting="behavioral_health", employment_type="part_time")
    assert engine(subs, wanted) == {anything.subscriber_id, picky.subscriber_id}
    assert engine(subs, opening(setting="behavioral_health")) == {anything.subscriber_id}


def test_subscriber_must_hold_every_required_credential(engine: Engine) -> None:
    nurse = subscriber(credentials=frozenset({"rn"}))
    nurse_manager = subscriber(credentials=frozenset({"rn", "ccm", "chw"}))
    none = subscriber()
    subs = [nurse, nurse_manager, none]
    everyone = {s.subscriber_id for s in subs}
    assert engine(subs, opening()) == everyone
    assert engine(subs, opening(required_credentials=frozenset({"rn"}))) == {
        nurse.subscriber_id,
        nurse_manager.subscriber_id,
    }
    both = opening(required_credentials=frozenset({"rn", "ccm"}))
    assert engine(subs, both) == {nurse_manager.subscriber_id}
    assert engine(subs, opening(required_credentials=frozenset({"lpn"}))) == set()


def test_radius_boundary_is_inclusive(engine: Engine) -> None:
    far = haversine_miles(*PHILADELPHIA, *HARRISBURG)
    assert 250 > far > 50
    exactly = subscriber(radius_miles=far)
    short = subscriber(radius_miles=far - 0.01)
    in_harrisburg = opening(lat=HARRISBURG[0], lon=HARRISBURG[1])
    assert engine([exactly, short], in_harrisburg) == {exactly.subscriber_id}


@pytest.mark.parametrize("radius", [1, 10, 25, 50, 100, 250])
def test_each_radius_class_reaches_its_edge(engine: Engine, radius: float) -> None:
    # 1 degree of latitude is ~69.1 miles: put the opening just inside and just outside.
    step = radius / 69.09
    sub = subscriber(lat=40.0, lon=-100.0, radius_miles=radius)
    inside = opening(lat=40.0 + step * 0.999, lon=-100.0)
    outside = opening(lat=40.0 + step * 1.01, lon=-100.0)
    assert engine([sub], inside) == {sub.subscriber_id}
    assert engine([sub], outside) == set()


def test_remote_opening_reaches_remote_ok_subscribers_anywhere(engine: Engine) -> None:
    remote_ok_far = subscriber(lat=HARRISBURG[0], lon=HARRISBURG[1], remote_ok=True)
    local_only_far = subscriber(lat=HARRISBURG[0], lon=HARRISBURG[1])
    local_only_near = subscriber()
    subs = [remote_ok_far, local_only_far, local_only_near]
    placed = opening(remote=True)
    assert engine(subs, placed) == {remote_ok_far.subscriber_id, local_only_near.subscriber_id}
    nowhere = opening(remote=True, lat=None, lon=None)
    assert engine(subs, nowhere) == {remote_ok_far.subscriber_id}


def test_on_site_opening_ignores_remote_ok(engine: Engine) -> None:
    far = subscriber(lat=HARRISBURG[0], lon=HARRISBURG[1], remote_ok=True)
    assert engine([far], opening()) == set()


def test_minimum_pay(engine: Engine) -> None:
    wants_25 = subscriber(min_pay_hourly=25.0)
    any_pay = subscriber()
    subs = [wants_25, any_pay]
    both = {wants_25.subscriber_id, any_pay.subscriber_id}
    assert engine(subs, opening(pay_max_hourly=None)) == both
    assert engine(subs, opening(pay_max_hourly=25.0)) == both
    assert engine(subs, opening(pay_max_hourly=24.99)) == {any_pay.subscriber_id}
    remote = opening(remote=True, lat=None, lon=None, pay_max_hourly=24.99)
    assert engine([replace(wants_25, remote_ok=True)], remote) == set()


def test_hourly_pay_conversion() -> None:
    assert hourly_pay(pay_min=None, pay_max=None, pay_period="year") is None
    assert hourly_pay(pay_min=20, pay_max=28, pay_period="hour") == 28.0
    assert hourly_pay(pay_min=52_000, pay_max=None, pay_period="year") == 25.0
    assert hourly_pay(pay_min=41_600, pay_max=62_400, pay_period="year") == 30.0


def test_yearly_pay_meets_an_hourly_minimum(engine: Engine) -> None:
    sub = subscriber(min_pay_hourly=25.0)
    meets = hourly_pay(pay_min=None, pay_max=52_000, pay_period="year")
    misses = hourly_pay(pay_min=40_000, pay_max=51_999, pay_period="year")
    assert engine([sub], opening(pay_max_hourly=meets)) == {sub.subscriber_id}
    assert engine([sub], opening(pay_max_hourly=misses)) == set()


def test_radius_outside_1_to_250_is_refused() -> None:
    with pytest.raises(ValueError, match="radius_miles"):
        subscriber(radius_miles=0.5)
    with pytest.raises(ValueError, match="radius_miles"):
        subscriber(radius_miles=251)
