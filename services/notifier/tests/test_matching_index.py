"""MatchIndex bookkeeping: upserts replace, removals stick, ids and distances come back intact."""

from __future__ import annotations

import math
import uuid
from dataclasses import replace

from hwcollab_common.geo import haversine_miles
from hwcollab_notifier.matching import MatchIndex, OpeningCriteria, SubscriberCriteria

HERE = (39.9526, -75.1652)
THERE = (40.0, -75.0)


def subscriber(subscriber_id: str | None = None, **changes: object) -> SubscriberCriteria:
    base = SubscriberCriteria(
        subscriber_id=subscriber_id or str(uuid.uuid4()),
        roles=frozenset({"case_manager"}),
        settings=frozenset(),
        credentials=frozenset(),
        employment_types=frozenset(),
        lat=THERE[0],
        lon=THERE[1],
        radius_miles=25,
        remote_ok=True,
        min_pay_hourly=None,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


OPENING = OpeningCriteria(
    role="case_manager",
    setting="social_service",
    required_credentials=frozenset(),
    employment_type="part_time",
    remote=False,
    lat=HERE[0],
    lon=HERE[1],
)


def test_match_reports_ids_and_distances() -> None:
    index = MatchIndex()
    sub = subscriber()
    index.build([sub])
    result = index.match(OPENING)
    assert len(result) == 1
    [(subscriber_id, distance)] = list(result)
    assert subscriber_id == sub.subscriber_id
    assert distance is not None
    assert math.isclose(distance, haversine_miles(*THERE, *HERE), rel_tol=1e-9)


def test_remote_match_has_no_distance() -> None:
    index = MatchIndex()
    sub = subscriber(lat=47.6, lon=-122.3)
    index.build([sub])
    remote = replace(OPENING, remote=True, lat=None, lon=None)
    assert list(index.match(remote)) == [(sub.subscriber_id, None)]


def test_upsert_replaces_criteria_and_remove_forgets() -> None:
    index = MatchIndex()
    sub = subscriber()
    index.build([sub, subscriber(roles=frozenset({"care_manager"}))])
    assert len(index) == 2
    assert sub.subscriber_id in index
    index.upsert(replace(sub, roles=frozenset({"rn_case_manager"})))
    assert len(index) == 2
    assert index.match(OPENING).subscriber_ids() == []
    index.upsert(sub)
    assert index.match(OPENING).subscriber_ids() == [sub.subscriber_id]
    assert index.remove(sub.subscriber_id) is True
    assert index.remove(sub.subscriber_id) is False
    assert sub.subscriber_id not in index
    assert len(index) == 1
    assert index.match(OPENING).subscriber_ids() == []


def test_ids_that_are_not_uuids_come_back_verbatim() -> None:
    index = MatchIndex()
    odd = subscriber("subscriber-42")
    upper = subscriber(str(uuid.uuid4()).upper())
    index.build([odd])
    index.upsert(upper)
    assert sorted(index.match(OPENING).subscriber_ids()) == sorted(
        [odd.subscriber_id, upper.subscriber_id]
    )


def test_last_criteria_win_in_a_bulk_build() -> None:
    index = MatchIndex()
    sub = subscriber()
    index.build([sub, replace(sub, roles=frozenset({"care_manager"}))])
    assert len(index) == 1
    assert index.match(OPENING).subscriber_ids() == []


def test_churn_through_merges_and_compaction_keeps_the_live_set() -> None:
    index = MatchIndex()
    everyone = [subscriber() for _ in range(3000)]
    index.build(everyone)
    for sub in everyone[:2500]:
        index.remove(sub.subscriber_id)
    newcomers = [subscriber() for _ in range(3000)]
    for sub in newcomers:
        index.upsert(sub)
    expected = {s.subscriber_id for s in everyone[2500:] + newcomers}
    assert len(index) == len(expected)
    assert set(index.match(OPENING).subscriber_ids()) == expected
    # the index stays far from holding one Python object per subscriber
    assert index.nbytes < 250 * len(expected) + 20_000_000


def test_a_result_stays_valid_after_later_updates() -> None:
    index = MatchIndex()
    first = subscriber()
    index.build([first])
    result = index.match(OPENING)
    for _ in range(5000):
        index.upsert(subscriber())
    index.remove(first.subscriber_id)
    assert result.subscriber_ids() == [first.subscriber_id]
