"""Property: no run of estimates singles out a person.

An employer narrows an opening around one subscriber (the place moved ever closer to them, so
that fewer other people's radii cover it; credentials, setting, type and pay chosen to fit them
and few others) and compares what the estimate shows. Whatever the population and the run:

- with and without that person, every estimate whose audience (with them) is below 10 looks
  exactly the same: their presence never shows as a count changing by one;
- any two estimates of the run whose audiences are both below 10 look the same;
- every number shown is at least 10, and every share is a ratio of groups of at least 10.

The counts come from the notifier's match index, the rounding from the shared contract, as in
the product.
"""

from __future__ import annotations

import itertools
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwcollab_notifier.matching import MatchIndex, SubscriberCriteria
from hwcollab_notifier.reach import estimate
from hwcollab_schemas.reach import (
    SMALLEST_SHOWN,
    ReachEstimate,
    ReachQuery,
    public_estimate,
)
from hwcollab_schemas.taxonomy import (
    CREDENTIAL_CODES,
    EMPLOYMENT_TYPE_CODES,
    ROLE_CODES,
    SETTING_CODES,
)

# Around Worcester, MA: everyone within reach of everyone for the larger radii.
HOME = (42.26, -71.80)
ROLE = "care_manager"


def codes(pool: tuple[str, ...]) -> st.SearchStrategy[frozenset[str]]:
    return st.frozensets(st.sampled_from(pool), max_size=2)


@st.composite
def people(draw: st.DrawFn) -> SubscriberCriteria:
    return SubscriberCriteria(
        subscriber_id=str(uuid.uuid4()),
        roles=frozenset({ROLE}) | draw(codes(ROLE_CODES)),
        settings=draw(codes(SETTING_CODES)),
        credentials=draw(codes(CREDENTIAL_CODES)),
        employment_types=draw(codes(EMPLOYMENT_TYPE_CODES)),
        lat=HOME[0] + draw(st.floats(-0.6, 0.6)),
        lon=HOME[1] + draw(st.floats(-0.6, 0.6)),
        radius_miles=draw(st.sampled_from([1, 5, 10, 25, 50])),
        remote_ok=draw(st.booleans()),
        min_pay_hourly=draw(st.one_of(st.none(), st.sampled_from([18.0, 25.0, 35.0]))),
        digest=draw(st.booleans()),
    )


@st.composite
def narrowing(draw: st.DrawFn, target: SubscriberCriteria) -> list[ReachQuery]:
    """Openings ever closer to the target, with criteria that keep matching them."""
    steps = draw(st.lists(st.floats(0.0, 1.0), min_size=2, max_size=6))
    queries = []
    for fraction in sorted(steps, reverse=True):  # from far to on top of them
        offset = fraction * 0.5
        queries.append(
            ReachQuery(
                role=ROLE,
                setting=draw(st.sampled_from(sorted(target.settings) or SETTING_CODES)),
                required_credentials=tuple(
                    sorted(draw(st.frozensets(st.sampled_from(CREDENTIAL_CODES), max_size=2)))
                ),
                employment_type=draw(
                    st.sampled_from(sorted(target.employment_types) or EMPLOYMENT_TYPE_CODES)
                ),
                remote=draw(st.booleans()),
                lat=target.lat + offset,
                lon=target.lon - offset,
                pay_max_hourly=draw(st.one_of(st.none(), st.sampled_from([20.0, 30.0, 40.0]))),
            )
        )
    return queries


def _index(population: list[SubscriberCriteria]) -> MatchIndex:
    index = MatchIndex()
    index.build(population)
    return index


def _shown_numbers(shown: ReachEstimate) -> list[int]:
    return [n for n in (shown.subscribers, shown.immediate, shown.digest) if n is not None]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), others=st.lists(people(), min_size=0, max_size=30), target=people())
def test_narrowing_around_one_subscriber_never_singles_them_out(
    data: st.DataObject, others: list[SubscriberCriteria], target: SubscriberCriteria
) -> None:
    with_them = _index([*others, target])
    without_them = _index(others)
    run = data.draw(narrowing(target))

    seen: list[tuple[int, ReachEstimate]] = []
    for query in run:
        counts = estimate(with_them, query)
        shown = public_estimate(counts)
        if counts.subscribers < SMALLEST_SHOWN:
            assert public_estimate(estimate(without_them, query)) == shown, query
        assert all(n >= SMALLEST_SHOWN for n in _shown_numbers(shown))
        for cut in shown.cuts:
            wider = next(
                r.subscribers
                for r in counts.relaxed
                if (r.criterion, r.code) == (cut.criterion, cut.code)
            )
            assert counts.subscribers >= SMALLEST_SHOWN
            assert wider - counts.subscribers >= SMALLEST_SHOWN
        seen.append((counts.subscribers, shown))

    for (count_a, shown_a), (count_b, shown_b) in itertools.combinations(seen, 2):
        if count_a < SMALLEST_SHOWN and count_b < SMALLEST_SHOWN:
            assert shown_a == shown_b


@settings(max_examples=100, deadline=None)
@given(crowd=st.integers(min_value=0, max_value=25), extra=st.integers(min_value=1, max_value=9))
def test_a_small_crowd_looks_the_same_whatever_its_size(crowd: int, extra: int) -> None:
    """Between 0 and 9 people at the opening's door, one more or less never shows."""
    place = {"lat": HOME[0], "lon": HOME[1]}

    def person(number: int) -> SubscriberCriteria:
        return SubscriberCriteria(
            subscriber_id=f"p{number}",
            roles=frozenset({ROLE}),
            settings=frozenset(),
            credentials=frozenset({"ccm"}) if number % 2 else frozenset(),
            employment_types=frozenset(),
            radius_miles=10,
            remote_ok=False,
            digest=number % 3 == 0,
            **place,
        )

    query = ReachQuery(
        role=ROLE,
        setting="medical",
        employment_type="full_time",
        required_credentials=("ccm",),
        **place,
    )
    shown = [
        public_estimate(estimate(_index([person(n) for n in range(size)]), query))
        for size in (crowd, crowd + extra)
    ]
    counts = [crowd // 2, (crowd + extra) // 2]  # the odd-numbered hold CCM
    if max(counts) < SMALLEST_SHOWN:
        assert shown[0] == shown[1]
