"""US ZIP codes → place (centroid, city, state, time zone), and great-circle distances.

Built on the offline ``zipcodes`` package; its 42k records are indexed once, on first use.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import zipcodes

EARTH_RADIUS_MILES = 3958.8
"""The mean radius of the Earth: every distance the product shows or matches on is on this
sphere (:func:`haversine_miles`)."""
MONGODB_EARTH_RADIUS_METERS = 6_378_100.0
"""The sphere MongoDB's spherical queries (``$geoNear``, ``$centerSphere``) measure on, a little
larger than the mean one; convert with :func:`mongodb_meters` and :data:`MILES_PER_MONGODB_METER`
so that a query's radius and answers agree with :func:`haversine_miles`."""
MILES_PER_MONGODB_METER = EARTH_RADIUS_MILES / MONGODB_EARTH_RADIUS_METERS
"""A ``$geoNear`` ``distanceMultiplier``: its distances in miles on the product's sphere."""


def mongodb_meters(miles: float) -> float:
    """``miles`` on the product's sphere as MongoDB measures the same angle (a ``maxDistance``)."""
    return miles / MILES_PER_MONGODB_METER


@dataclass(frozen=True, slots=True)
class ZipPlace:
    zip: str
    city: str
    state: str
    lat: float
    lon: float
    timezone: str


_places: dict[str, ZipPlace] | None = None
_lock = threading.Lock()


def _load() -> dict[str, ZipPlace]:
    global _places
    with _lock:
        if _places is None:
            places: dict[str, ZipPlace] = {}
            for record in zipcodes.list_all():  # type: ignore[no-untyped-call]
                if not record.get("lat") or not record.get("long") or not record.get("timezone"):
                    continue  # military and a few other ZIPs have no place
                places[record["zip_code"]] = ZipPlace(
                    zip=record["zip_code"],
                    city=record["city"].title(),
                    state=record["state"],
                    lat=float(record["lat"]),
                    lon=float(record["long"]),
                    timezone=record["timezone"],
                )
            _places = places
        return _places


def lookup_zip(zip_code: str) -> ZipPlace | None:
    """The place of a 5-digit US ZIP, or None when it is not a real, locatable ZIP."""
    return _load().get(zip_code.strip())


def haversine_miles(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in miles between two points given in degrees."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlambda = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_MILES * math.asin(min(1.0, math.sqrt(a)))
