from __future__ import annotations

import pytest

from hwcollab_common.geo import (
    EARTH_RADIUS_MILES,
    MILES_PER_MONGODB_METER,
    MONGODB_EARTH_RADIUS_METERS,
    haversine_miles,
    lookup_zip,
    mongodb_meters,
)


def test_known_zip() -> None:
    place = lookup_zip("01608")
    assert place is not None
    assert (place.city, place.state, place.timezone) == ("Worcester", "MA", "America/New_York")


@pytest.mark.parametrize("zip_code", ["00000", "99999", "abcde", ""])
def test_unknown_zip(zip_code: str) -> None:
    assert lookup_zip(zip_code) is None


def test_time_zones_follow_the_zip() -> None:
    assert lookup_zip("94103").timezone == "America/Los_Angeles"  # type: ignore[union-attr]
    assert lookup_zip("60601").timezone == "America/Chicago"  # type: ignore[union-attr]


def test_worcester_to_boston_is_about_39_miles() -> None:
    worcester, boston = lookup_zip("01608"), lookup_zip("02108")
    assert worcester
    assert boston
    assert haversine_miles(worcester.lat, worcester.lon, boston.lat, boston.lon) == pytest.approx(
        39, abs=1.5
    )


def test_distance_is_symmetric_and_zero_on_itself() -> None:
    assert haversine_miles(42.0, -71.0, 42.0, -71.0) == 0
    a = haversine_miles(42.26, -71.80, 40.71, -74.0)
    assert a == pytest.approx(haversine_miles(40.71, -74.0, 42.26, -71.80))


def test_a_radius_given_to_mongodb_is_the_same_angle_on_the_product_sphere() -> None:
    # 25 miles on the mean sphere is a little more than 25 miles' worth of meters on MongoDB's.
    assert mongodb_meters(25) > 25 * 1609.344
    assert mongodb_meters(25) * MILES_PER_MONGODB_METER == pytest.approx(25)
    angle = 25 / EARTH_RADIUS_MILES
    assert mongodb_meters(25) == pytest.approx(angle * MONGODB_EARTH_RADIUS_METERS)
