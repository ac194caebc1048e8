"""Property: the index answers exactly what the plain reference rule answers, before and after any
sequence of upserts and removals."""

from __future__ import annotations

import math
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwcollab_common.geo import haversine_miles
from hwcollab_notifier.matching import MatchIndex, OpeningCriteria, SubscriberCriteria
from hwcollab_notifier.matching.reference import match_all
from hwcollab_schemas.taxonomy import (
    CREDENTIAL_CODES,
    EMPLOYMENT_TYPE_CODES,
    ROLE_CODES,
    SETTING_CODES,
)

# A small world (so that matches are common) plus whole-globe points (poles, the antimeridian).
local_lat = st.floats(min_value=39.0, max_value=41.0)
local_lon = st.floats(min_value=-76.0, max_value=-74.0)
any_lat = st.floats(min_value=-90.0, max_value=90.0)
any_lon = st.floats(min_value=-180.0, max_value=180.0)
places = st.one_of(
    st.tuples(local_lat, local_lon), st.tuples(local_lat, local_lon), st.tuples(any_lat, any_lon)
)
pays = st.one_of(
    st.none(), st.sampled_from([9.0, 15.0, 20.0, 24.5, 25.0, 40.0, 80.0]), st.floats(5, 100)
)
ids = st.one_of(st.uuids().map(str), st.text(min_size=1, max_size=8))


def codes(pool: tuple[str, ...], *, min_size: int = 0) -> st.SearchStrategy[frozenset[str]]:
    return st.frozensets(st.sampled_from(pool), min_size=min_size, max_size=3)


@st.composite
def subscribers(draw: st.DrawFn, subscriber_id: str | None = None) -> SubscriberCriteria:
    lat, lon = draw(places)
    return SubscriberCriteria(
        subscriber_id=subscriber_id if subscriber_id is not None else draw(ids),
        roles=draw(codes(ROLE_CODES, min_size=1)),
        settings=draw(codes(SETTING_CODES)),
        credentials=draw(codes(CREDENTIAL_CODES)),
        employment_types=draw(codes(EMPLOYMENT_TYPE_CODES)),
        lat=lat,
        lon=lon,
        radius_miles=draw(st.one_of(st.sampled_from([1, 10, 25, 50, 100, 250]), st.floats(1, 250))),
        remote_ok=draw(st.booleans()),
        min_pay_hourly=draw(pays),
    )


@st.composite
def openings(draw: st.DrawFn) -> OpeningCriteria:
    remote = draw(st.booleans())
    placed = not remote or draw(st.booleans())
    lat, lon = draw(places) if placed else (None, None)
    return OpeningCriteria(
        role=draw(st.sampled_from(ROLE_CODES)),
        setting=draw(st.sampled_from(SETTING_CODES)),
        required_credentials=draw(st.frozensets(st.sampled_from(CREDENTIAL_CODES), max_size=2)),
        employment_type=draw(st.sampled_from(EMPLOYMENT_TYPE_CODES)),
        remote=remote,
        lat=lat,
        lon=lon,
        pay_max_hourly=draw(pays),
    )


def assert_same_answer(
    index: MatchIndex, population: dict[str, SubscriberCriteria], opening: OpeningCriteria
) -> None:
    expected = sorted(match_all(population.values(), opening))
    result = index.match(opening)
    assert sorted(result.subscriber_ids()) == expected
    for subscriber_id, distance in result:
        sub = population[subscriber_id]
        if distance is None:
            assert opening.remote
            assert sub.remote_ok
        else:
            assert opening.lat is not None
            assert opening.lon is not None
            reference = haversine_miles(sub.lat, sub.lon, opening.lat, opening.lon)
            assert math.isclose(distance, reference, rel_tol=1e-9, abs_tol=1e-9)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    population=st.lists(subscribers(), max_size=40),
    queries=st.lists(openings(), min_size=1, max_size=5),
)
def test_index_agrees_with_reference(
    population: list[SubscriberCriteria], queries: list[OpeningCriteria]
) -> None:
    latest = {sub.subscriber_id: sub for sub in population}
    index = MatchIndex()
    index.build(population)
    assert len(index) == len(latest)
    for opening in queries:
        assert_same_answer(index, latest, opening)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    population=st.lists(subscribers(), max_size=30),
    steps=st.lists(st.tuples(st.booleans(), st.integers(0, 40)), max_size=40),
    data=st.data(),
    queries=st.lists(openings(), min_size=1, max_size=4),
)
def test_index_agrees_with_reference_after_updates(
    population: list[SubscriberCriteria],
    steps: list[tuple[bool, int]],
    data: st.DataObject,
    queries: list[OpeningCriteria],
) -> None:
    latest = {sub.subscriber_id: sub for sub in population}
    index = MatchIndex()
    index.build(population)
    known = [*latest, *(str(uuid.UUID(int=i)) for i in range(10))]
    for is_upsert, pick in steps:
        subscriber_id = known[pick % len(known)]
        if is_upsert:
            sub = data.draw(subscribers(subscriber_id))
            index.upsert(sub)
            latest[subscriber_id] = sub
        else:
            assert index.remove(subscriber_id) == (subscriber_id in latest)
            latest.pop(subscriber_id, None)
        assert len(index) == len(latest)
    for opening in queries:
        assert_same_answer(index, latest, opening)
    # folding the delta into the sorted structures, or compacting, changes nothing
    index.merge_updates()
    for opening in queries:
        assert_same_answer(index, latest, opening)
    index.compact()
    assert len(index) == len(latest)
    for opening in queries:
        assert_same_answer(index, latest, opening)
