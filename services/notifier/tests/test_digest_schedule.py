"""When digests are due: local 08:00 (or the chosen hour), Mondays (or the chosen weekday) for
weekly, in the subscriber's time zone, across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hwcollab_common.clock import FixedClock
from hwcollab_notifier.domain import DigestSchedule


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def daily(tz: str, hour: int = 8) -> DigestSchedule:
    return DigestSchedule(period="daily", timezone=tz, hour=hour)


def weekly(tz: str, weekday: str = "mon", hour: int = 8) -> DigestSchedule:
    return DigestSchedule(period="weekly", timezone=tz, hour=hour, weekday=weekday)


@pytest.mark.parametrize(
    ("tz", "expected"),
    [
        ("America/New_York", utc(2026, 11, 24, 13)),  # EST, UTC-5
        ("America/Chicago", utc(2026, 11, 24, 14)),
        ("America/Denver", utc(2026, 11, 24, 15)),
        ("America/Phoenix", utc(2026, 11, 24, 15)),  # no DST
        ("America/Los_Angeles", utc(2026, 11, 24, 16)),
        ("America/Anchorage", utc(2026, 11, 24, 17)),
        ("Pacific/Honolulu", utc(2026, 11, 24, 18)),
    ],
)
def test_daily_digest_is_due_at_eight_local_time_in_each_zone(tz: str, expected: datetime) -> None:
    clock = FixedClock(utc(2026, 11, 24, 12))
    schedule = daily(tz)
    assert schedule.next_due(clock.now()) == expected
    clock.set(expected - timedelta(seconds=1))
    assert schedule.last_due(clock.now()) == expected - timedelta(days=1)
    clock.set(expected)
    assert schedule.last_due(clock.now()) == expected


def test_daily_digest_follows_the_spring_forward_change() -> None:
    schedule = daily("America/New_York")
    # 2026-03-08: clocks go from 02:00 EST to 03:00 EDT; 08:00 is 13:00Z before and 12:00Z after
    assert schedule.next_due(utc(2026, 3, 7, 14)) == utc(2026, 3, 8, 12)
    assert schedule.next_due(utc(2026, 3, 6, 14)) == utc(2026, 3, 7, 13)
    assert schedule.next_due(utc(2026, 3, 8, 12)) == utc(2026, 3, 9, 12)


def test_daily_digest_follows_the_fall_back_change() -> None:
    schedule = daily("America/New_York")
    # 2026-11-01: clocks go from 02:00 EDT back to 01:00 EST
    assert schedule.next_due(utc(2026, 10, 31, 13)) == utc(2026, 11, 1, 13)
    assert schedule.next_due(utc(2026, 10, 30, 13)) == utc(2026, 10, 31, 12)


def test_an_hour_skipped_by_spring_forward_goes_out_when_the_clocks_jump() -> None:
    schedule = daily("America/New_York", hour=2)
    # 02:00 does not exist on 2026-03-08; it goes out at 03:00 EDT = 07:00Z
    assert schedule.next_due(utc(2026, 3, 8, 0)) == utc(2026, 3, 8, 7)
    assert schedule.last_due(utc(2026, 3, 8, 7, 30)) == utc(2026, 3, 8, 7)


def test_an_hour_repeated_by_fall_back_goes_out_once_at_the_first() -> None:
    schedule = daily("America/New_York", hour=1)
    first = utc(2026, 11, 1, 5)  # 01:00 EDT; 01:00 EST (06:00Z) is not a second slot
    assert schedule.next_due(utc(2026, 11, 1, 0)) == first
    assert schedule.next_due(first) == utc(2026, 11, 2, 6)


def test_weekly_digest_is_on_monday_by_default_and_on_the_chosen_weekday() -> None:
    wednesday = utc(2026, 11, 25, 12)
    assert weekly("America/New_York").next_due(wednesday) == utc(2026, 11, 30, 13)
    assert weekly("America/New_York", weekday="fri").next_due(wednesday) == utc(2026, 11, 27, 13)
    assert weekly("America/New_York").last_due(wednesday) == utc(2026, 11, 23, 13)


def test_weekly_digest_across_the_spring_forward_week() -> None:
    schedule = weekly("America/Los_Angeles")
    # Monday 2026-03-02 08:00 PST = 16:00Z; Monday 2026-03-09 08:00 PDT = 15:00Z
    assert schedule.next_due(utc(2026, 3, 2, 16)) == utc(2026, 3, 9, 15)
    assert schedule.last_due(utc(2026, 3, 9, 14, 59)) == utc(2026, 3, 2, 16)


def test_a_chosen_hour_and_a_zone_east_of_utc() -> None:
    schedule = daily("Pacific/Guam", hour=18)  # UTC+10, no DST
    assert schedule.next_due(utc(2026, 6, 1, 0)) == utc(2026, 6, 1, 8)


def test_an_unknown_time_zone_falls_back_to_eastern() -> None:
    assert daily("Mars/Olympus_Mons").next_due(utc(2026, 11, 24, 12)) == utc(2026, 11, 24, 13)


def test_each_slot_has_its_own_key_and_a_slot_keeps_its_key() -> None:
    schedule = daily("America/Chicago")
    first = schedule.last_due(utc(2026, 11, 24, 20))
    again = schedule.last_due(utc(2026, 11, 24, 23, 59))
    tomorrow = schedule.last_due(utc(2026, 11, 25, 20))
    assert schedule.key(first) == schedule.key(again) == "daily:2026-11-24T14:00Z"
    assert schedule.key(tomorrow) != schedule.key(first)
