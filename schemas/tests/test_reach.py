"""The estimate an employer sees: counts rounded, shares only when based on 10+ people."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from hwcollab_schemas.reach import (
    ReachCounts,
    ReachQuery,
    Relaxed,
    cut_of,
    public_estimate,
    round_count,
)


@pytest.mark.parametrize(
    ("count", "shown"),
    [
        (0, None),
        (1, None),
        (9, None),
        (10, 10),
        (11, 11),
        (99, 99),
        (100, 100),
        (104, 100),
        (105, 110),
        (994, 990),
        (995, 1000),
        (1234, 1200),
        (1250, 1300),
        (98_765, 99_000),
        (1_000_000, 1_000_000),
        (1_049_999, 1_000_000),
    ],
)
def test_round_count(count: int, shown: int | None) -> None:
    assert round_count(count) == shown


@given(st.integers(min_value=10, max_value=10**9))
def test_rounding_keeps_two_significant_figures(count: int) -> None:
    shown = round_count(count)
    assert shown is not None
    assert abs(shown - count) <= 10 ** max(len(str(count)) - 2, 0) / 2
    assert len(str(shown).rstrip("0")) <= 2


def test_the_text_says_fewer_than_10() -> None:
    estimate = public_estimate(ReachCounts(subscribers=7, immediate=4, digest=3))
    assert estimate.subscribers is None
    assert estimate.text == "Fewer than 10 active subscribers would be emailed now."
    assert estimate.model_dump()["immediate"] is None


def test_the_text_splits_immediate_and_digest() -> None:
    estimate = public_estimate(ReachCounts(subscribers=1234, immediate=823, digest=411))
    assert (estimate.subscribers, estimate.immediate, estimate.digest) == (1200, 820, 410)
    assert estimate.text == (
        "About 1,200 active subscribers would be emailed now, 820 of them at once and the rest "
        "in their digest."
    )


def test_a_small_part_hides_the_split() -> None:
    """15 in all and 12 at once would give away that 3 take a digest."""
    estimate = public_estimate(ReachCounts(subscribers=15, immediate=12, digest=3))
    assert (estimate.subscribers, estimate.immediate, estimate.digest) == (15, None, None)
    assert "nearly all of them at once" in estimate.text
    later = public_estimate(ReachCounts(subscribers=15, immediate=3, digest=12))
    assert "nearly all of them in their digest" in later.text


def test_the_criteria_that_cut_most_come_first() -> None:
    counts = ReachCounts(
        subscribers=200,
        immediate=150,
        digest=50,
        relaxed=(
            Relaxed(criterion="credential", code="ccm", subscribers=1000),
            Relaxed(criterion="setting", subscribers=230),
            Relaxed(criterion="pay", subscribers=400),
            Relaxed(criterion="employment_type", subscribers=200),
        ),
    )
    cuts = public_estimate(counts).cuts
    assert [(c.criterion, c.leaves_out_percent) for c in cuts] == [("credential", 80), ("pay", 50)]
    assert cuts[0].text == "Requiring Certified Case Manager (CCM) leaves out 80 %"


@pytest.mark.parametrize(
    ("reached", "wider"),
    [
        (9, 100),  # the people reached are fewer than 10
        (50, 59),  # the people left out are fewer than 10
        (1000, 1030),  # leaves out about 3 %: rounds to nothing
    ],
)
def test_no_share_from_fewer_than_10_people(reached: int, wider: int) -> None:
    assert cut_of(Relaxed(criterion="pay", subscribers=wider), reached=reached) is None


def test_a_query_needs_a_place_unless_remote() -> None:
    with pytest.raises(ValidationError):
        ReachQuery(role="care_manager", setting="medical", employment_type="full_time")
    remote = ReachQuery(
        role="care_manager", setting="medical", employment_type="full_time", remote=True
    )
    assert remote.lat is None
