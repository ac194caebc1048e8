"""How the match index lays subscribers out: bit codes, radius classes, grid cells, remote groups.

Pure functions of the taxonomy and of a few constants, shared by the index and its tests.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from hwcollab_common.geo import EARTH_RADIUS_MILES
from hwcollab_notifier.matching.criteria import DISTANCE_TOLERANCE_MILES
from hwcollab_schemas.taxonomy import (
    CREDENTIAL_CODES,
    EMPLOYMENT_TYPE_CODES,
    ROLE_CODES,
    SETTING_CODES,
)

I64 = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

ROLE_BIT = {code: 1 << i for i, code in enumerate(ROLE_CODES)}
ROLE_INDEX = {code: i for i, code in enumerate(ROLE_CODES)}
SETTING_BIT = {code: 1 << i for i, code in enumerate(SETTING_CODES)}
EMPLOYMENT_BIT = {code: 1 << i for i, code in enumerate(EMPLOYMENT_TYPE_CODES)}
CREDENTIAL_BIT = {code: 1 << i for i, code in enumerate(CREDENTIAL_CODES)}
N_ROLES = len(ROLE_CODES)
N_SETTING_MASKS = 1 << len(SETTING_CODES)
N_EMPLOYMENT_MASKS = 1 << len(EMPLOYMENT_TYPE_CODES)
N_CREDENTIAL_MASKS = 1 << len(CREDENTIAL_CODES)

# A subscriber's "profile" is one uint16: what it accepts, and two state flags.
EMPLOYMENT_SHIFT = 3
CREDENTIAL_SHIFT = 7
REMOTE_OK = 1 << 12
ALIVE = 1 << 13
PROFILE_SPACE = 1 << 14
# Kept beside the role bits: the id is not a canonical UUID string, the index keeps it verbatim.
VERBATIM_ID = 1 << 15
# Kept beside the role bits too: the subscriber takes matches in a digest (the reach estimate).
DIGEST = 1 << 14
assert N_ROLES <= 14, "role bits, DIGEST and VERBATIM_ID share one uint16"


def unit_vectors(
    lat: npt.NDArray[np.float64], lon: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Points on the unit sphere: the squared chord between two of them orders like distance."""
    phi, lam = np.radians(lat), np.radians(lon)
    return np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)


def squared_chord(miles: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Squared chord (unit sphere) of a great-circle distance, tolerance included."""
    angle = np.minimum((miles + DISTANCE_TOLERANCE_MILES) / EARTH_RADIUS_MILES, math.pi)
    result: npt.NDArray[np.float64] = (2.0 * np.sin(angle / 2.0)) ** 2
    return result


def reach_miles(squared: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The radius a squared chord from :func:`squared_chord` stands for (to rounding)."""
    return chord_miles(squared) - DISTANCE_TOLERANCE_MILES


def chord_miles(squared: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    result: npt.NDArray[np.float64] = (
        2.0 * EARTH_RADIUS_MILES * np.arcsin(np.minimum(1.0, np.sqrt(squared) / 2.0))
    )
    return result


# Radius classes: a subscriber sits in the first class whose bound covers its radius, on a grid
# whose cells are half as wide as that bound, so a query reads about 5x5 cells (5 key runs) per
# class, covering ~2.5x2.5 bounds around a disk of 2x2.
RADIUS_CLASS_BOUNDS = (10.0, 25.0, 50.0, 100.0, 250.0)
CELLS_PER_BOUND = 2
MILES_PER_DEGREE = EARTH_RADIUS_MILES * math.pi / 180.0


class Grid:
    """One radius class's grid; cell keys of all classes and roles share one int32 key space."""

    def __init__(self, *, bound_miles: float, key_offset: int) -> None:
        self.bound_miles = bound_miles
        self.width = bound_miles / (CELLS_PER_BOUND * MILES_PER_DEGREE)
        self.n_lat = math.ceil(180.0 / self.width) + 1
        self.n_lon = math.ceil(360.0 / self.width) + 1
        self.role_stride = self.n_lat * self.n_lon
        self.key_offset = key_offset
        self.key_end = key_offset + N_ROLES * self.role_stride

    def cell_keys(self, lat: npt.NDArray[np.float64], lon: npt.NDArray[np.float64]) -> I64:
        """Key of each point's cell for role 0; add ``role * role_stride`` for another role."""
        lat_bin = np.clip(np.floor((lat + 90.0) / self.width), 0, self.n_lat - 1).astype(np.int64)
        lon_bin = np.clip(np.floor((lon + 180.0) / self.width), 0, self.n_lon - 1).astype(np.int64)
        return self.key_offset + lat_bin * self.n_lon + lon_bin

    def _lat_bin(self, lat: float) -> int:
        return min(max(math.floor((lat + 90.0) / self.width), 0), self.n_lat - 1)

    def _lon_bin(self, lon: float) -> int:
        return min(max(math.floor((lon + 180.0) / self.width), 0), self.n_lon - 1)

    def key_ranges(self, *, role: int, lat: float, lon: float) -> tuple[list[int], list[int]]:
        """Half-open key ranges covering every cell within ``bound_miles`` of (lat, lon)."""
        reach = (self.bound_miles + 10 * DISTANCE_TOLERANCE_MILES) / EARTH_RADIUS_MILES
        dlat = math.degrees(reach) + 1e-9
        lat_lo, lat_hi = lat - dlat, lat + dlat
        full_lon = lat_lo <= -90.0 or lat_hi >= 90.0
        if not full_lon:
            # Widest longitude span of a spherical cap that does not contain a pole.
            dlon = math.degrees(math.asin(min(1.0, math.sin(reach) / math.cos(math.radians(lat)))))
            dlon += 1e-9
            full_lon = lon - dlon < -180.0 or lon + dlon > 180.0
        if full_lon:
            lon_first, lon_last = 0, self.n_lon - 1
        else:
            lon_first, lon_last = self._lon_bin(lon - dlon), self._lon_bin(lon + dlon)
        base = self.key_offset + role * self.role_stride
        starts: list[int] = []
        ends: list[int] = []
        for lat_bin in range(self._lat_bin(lat_lo), self._lat_bin(lat_hi) + 1):
            row = base + lat_bin * self.n_lon
            starts.append(row + lon_first)
            ends.append(row + lon_last + 1)
        return starts, ends


def _grids() -> tuple[Grid, ...]:
    grids: list[Grid] = []
    offset = 0
    for bound in RADIUS_CLASS_BOUNDS:
        grid = Grid(bound_miles=bound, key_offset=offset)
        grids.append(grid)
        offset = grid.key_end
    assert offset < 2**31, "geo keys must fit in int32"
    return tuple(grids)


GRIDS = _grids()

# Remote groups: remote_ok subscribers sorted by (role, settings, employment types, credentials,
# minimum-pay bucket), so a remote opening's matches are a union of contiguous runs. Bucket 0 means
# "no minimum"; bucket b >= 1 holds minimums in [PAY_EDGES[b-2], PAY_EDGES[b-1]).
PAY_EDGES = np.arange(10.0, 70.0, 2.0)
N_PAY_BUCKETS = len(PAY_EDGES) + 2
N_REMOTE_KEYS = N_ROLES * N_SETTING_MASKS * N_EMPLOYMENT_MASKS * N_CREDENTIAL_MASKS * N_PAY_BUCKETS


def pay_buckets(min_pay: npt.NDArray[np.float64]) -> I64:
    buckets = 1 + np.searchsorted(PAY_EDGES, min_pay, side="right")
    result: I64 = np.where(np.isnan(min_pay), 0, buckets).astype(np.int64)
    return result


def pay_bucket_of(pay: float) -> int:
    return 1 + int(np.searchsorted(PAY_EDGES, pay, side="right"))


def remote_group_keys(*, role: I64, profile: I64) -> I64:
    """Remote group key without the pay bucket (multiply by N_PAY_BUCKETS and add it)."""
    settings = profile & (N_SETTING_MASKS - 1)
    employment = (profile >> EMPLOYMENT_SHIFT) & (N_EMPLOYMENT_MASKS - 1)
    credentials = (profile >> CREDENTIAL_SHIFT) & (N_CREDENTIAL_MASKS - 1)
    group = (role * N_SETTING_MASKS + settings) * N_EMPLOYMENT_MASKS + employment
    result: I64 = group * N_CREDENTIAL_MASKS + credentials
    return result


@lru_cache(maxsize=512)
def remote_group_bases(*, role: int, setting_bit: int, employment_bit: int, required: int) -> I64:
    """First remote key (pay bucket 0) of every group that accepts such an opening."""
    settings = np.array([m for m in range(N_SETTING_MASKS) if m == 0 or m & setting_bit])
    employment = np.array([m for m in range(N_EMPLOYMENT_MASKS) if m == 0 or m & employment_bit])
    credentials = np.array([m for m in range(N_CREDENTIAL_MASKS) if m & required == required])
    keys = (
        (role * N_SETTING_MASKS + settings[:, None, None]) * N_EMPLOYMENT_MASKS
        + employment[None, :, None]
    ) * N_CREDENTIAL_MASKS + credentials[None, None, :]
    result: I64 = (keys.ravel() * N_PAY_BUCKETS).astype(np.int64)
    return result


@lru_cache(maxsize=1024)
def accepting_profiles(
    *, setting_bit: int, employment_bit: int, required: int, exclude_remote_ok: bool
) -> BoolArray:
    """Lookup table over profiles: alive and accepting the opening's setting, type, credentials."""
    profile = np.arange(PROFILE_SPACE, dtype=np.int64)
    settings = profile & (N_SETTING_MASKS - 1)
    employment = (profile >> EMPLOYMENT_SHIFT) & (N_EMPLOYMENT_MASKS - 1)
    credentials = (profile >> CREDENTIAL_SHIFT) & (N_CREDENTIAL_MASKS - 1)
    table: BoolArray = (
        ((profile & ALIVE) != 0)
        & ((settings == 0) | ((settings & setting_bit) != 0))
        & ((employment == 0) | ((employment & employment_bit) != 0))
        & ((credentials & required) == required)
    )
    if exclude_remote_ok:
        table &= (profile & REMOTE_OK) == 0
    return table
