"""The match index's storage: subscriber rows as numpy columns, the id map, the sorted geo and
remote entry arrays, and the delta of rows not yet merged into them (see :mod:`.index`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice

import numpy as np
import numpy.typing as npt

from hwcollab_notifier.matching.criteria import SubscriberCriteria
from hwcollab_notifier.matching.idmap import IdMap
from hwcollab_notifier.matching.ids import id_key, split_key
from hwcollab_notifier.matching.layout import (
    ALIVE,
    CREDENTIAL_BIT,
    CREDENTIAL_SHIFT,
    DIGEST,
    EMPLOYMENT_BIT,
    EMPLOYMENT_SHIFT,
    GRIDS,
    N_PAY_BUCKETS,
    N_REMOTE_KEYS,
    N_ROLES,
    RADIUS_CLASS_BOUNDS,
    REMOTE_OK,
    ROLE_BIT,
    SETTING_BIT,
    VERBATIM_ID,
    pay_buckets,
    reach_miles,
    remote_group_keys,
    squared_chord,
    unit_vectors,
)
from hwcollab_schemas.taxonomy import UnknownCodeError

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
_COLUMNS = {
    "hi": np.uint64,
    "lo": np.uint64,
    "sphere": np.float64,
    "min_pay": np.float64,
    "profile": np.uint16,
    "roles": np.uint16,
}
_LOW64 = 0xFFFF_FFFF_FFFF_FFFF
_BUILD_CHUNK = 16384
_MIN_DELTA = 1024
_DELTA_FRACTION = 256  # merge when the delta reaches 1/256 of the indexed rows
_DEAD_FRACTION = 4  # rebuild when a quarter of the rows are tombstones
_DICT_ENTRY_BYTES = 120  # a small dict entry with an int key and value, roughly


def batched(items: Iterable[SubscriberCriteria], size: int) -> Iterator[list[SubscriberCriteria]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


class _Masks:
    """Code sets → bitmasks, validated against the taxonomy and cached (profiles repeat a lot)."""

    def __init__(self, kind: str, bits: dict[str, int]) -> None:
        self._kind = kind
        self._bits = bits
        self._cache: dict[frozenset[str], int] = {}

    def __call__(self, codes: frozenset[str]) -> int:
        mask = self._cache.get(codes)
        if mask is None:
            mask = 0
            for code in codes:
                if code not in self._bits:
                    raise UnknownCodeError(self._kind, code, self._bits)
                mask |= self._bits[code]
            self._cache[codes] = mask
        return mask


class RowStore:
    ALIVE = ALIVE

    def __init__(self, capacity: int = 1024) -> None:
        self.size = 0
        self.indexed = 0
        self.live = 0
        self.dead_indexed = 0
        self.dead_total = 0
        self._allocate(capacity)
        self.verbatim: dict[int, str] = {}
        self.ids = IdMap()
        self.geo_keys = np.empty(0, dtype=np.int32)
        self.geo_rows = np.empty(0, dtype=np.uint32)
        self.remote_keys = np.empty(0, dtype=np.int32)
        self.remote_rows = np.empty(0, dtype=np.uint32)
        self.remote_offsets = np.zeros(N_REMOTE_KEYS + 1, dtype=np.int32)
        self.grids = GRIDS
        self._roles = _Masks("role", ROLE_BIT)
        self._settings = _Masks("setting", SETTING_BIT)
        self._employment = _Masks("employment type", EMPLOYMENT_BIT)
        self._credentials = _Masks("credential", CREDENTIAL_BIT)

    def _allocate(self, capacity: int) -> None:
        self.hi = np.empty(capacity, dtype=np.uint64)
        self.lo = np.empty(capacity, dtype=np.uint64)
        # Unit vector (x, y, z) and squared-chord radius side by side: the distance test is a dot
        # product, and one gathered row is one cache line. Lat, lon and radius are derived from it.
        self.sphere = np.empty((capacity, 4), dtype=np.float64)
        self.min_pay = np.empty(capacity, dtype=np.float64)
        self.profile = np.empty(capacity, dtype=np.uint16)
        self.roles = np.empty(capacity, dtype=np.uint16)

    @property
    def capacity(self) -> int:
        return len(self.hi)

    def _grow(self, capacity: int) -> None:
        # New arrays rather than resizing in place: results handed out keep the old ones valid.
        for name, dtype in _COLUMNS.items():
            grown = np.empty((capacity, *getattr(self, name).shape[1:]), dtype=dtype)
            grown[: self.size] = getattr(self, name)[: self.size]
            setattr(self, name, grown)

    # -- encoding -------------------------------------------------------------------------------

    def _encode(
        self, sub: SubscriberCriteria
    ) -> tuple[int, tuple[float, float, float, float, int, int]]:
        key, canonical = id_key(sub.subscriber_id)
        profile = (
            self._settings(sub.settings)
            | self._employment(sub.employment_types) << EMPLOYMENT_SHIFT
            | self._credentials(sub.credentials) << CREDENTIAL_SHIFT
            | (REMOTE_OK if sub.remote_ok else 0)
            | ALIVE
        )
        min_pay = np.nan if sub.min_pay_hourly is None else float(sub.min_pay_hourly)
        columns = (
            float(sub.lat),
            float(sub.lon),
            float(sub.radius_miles),
            min_pay,
            profile,
            self._roles(sub.roles)
            | (0 if canonical else VERBATIM_ID)
            | (DIGEST if sub.digest else 0),
        )
        if not canonical:
            self.verbatim[key] = sub.subscriber_id
        return key, columns

    def _place(self, rows: slice, *, lat: F64, lon: F64, radius: F64) -> None:
        x, y, z = unit_vectors(lat, lon)
        self.sphere[rows, 0], self.sphere[rows, 1], self.sphere[rows, 2] = x, y, z
        self.sphere[rows, 3] = squared_chord(radius)

    def _coordinates(self, rows: I64) -> tuple[F64, F64]:
        """Latitude and longitude (degrees) of rows, back from their unit vectors."""
        sphere = self.sphere[rows]
        lat = np.degrees(np.arcsin(np.clip(sphere[:, 2], -1.0, 1.0)))
        lon = np.degrees(np.arctan2(sphere[:, 1], sphere[:, 0]))
        return lat, lon

    @classmethod
    def from_criteria(cls, subscribers: Iterable[SubscriberCriteria]) -> RowStore:
        fresh = cls()
        n = 0
        for chunk in batched(subscribers, _BUILD_CHUNK):
            # Chunks keep the Python objects of the encoding few and short-lived.
            encoded = [fresh._encode(sub) for sub in chunk]
            end = n + len(encoded)
            if end > fresh.capacity:
                fresh._grow(max(end, fresh.capacity * 2))
            fresh.hi[n:end] = np.array([key >> 64 for key, _ in encoded], dtype=np.uint64)
            fresh.lo[n:end] = np.array([key & _LOW64 for key, _ in encoded], dtype=np.uint64)
            table = np.array([columns for _, columns in encoded], dtype=np.float64)
            fresh._place(slice(n, end), lat=table[:, 0], lon=table[:, 1], radius=table[:, 2])
            fresh.min_pay[n:end] = table[:, 3]
            fresh.profile[n:end] = table[:, 4].astype(np.uint16)
            fresh.roles[n:end] = table[:, 5].astype(np.uint16)
            n = fresh.size = end
        fresh.size = fresh.live = n
        # The last criteria given for an id wins.
        order = np.lexsort((np.arange(n), fresh.lo[:n], fresh.hi[:n]))
        same_as_next = (fresh.hi[order[:-1]] == fresh.hi[order[1:]]) & (
            fresh.lo[order[:-1]] == fresh.lo[order[1:]]
        )
        for row in order[:-1][same_as_next].tolist():
            fresh._kill(row)
        fresh.reindex()
        return fresh

    # -- id map ---------------------------------------------------------------------------------

    def _find_key(self, key: int) -> int | None:
        row = self.ids.find(key, low_column=self.lo)
        if row is None or not self.profile[row] & ALIVE:
            return None
        return row

    def find(self, subscriber_id: str) -> int | None:
        return self._find_key(id_key(subscriber_id)[0])

    # -- updates --------------------------------------------------------------------------------

    def _kill(self, row: int) -> None:
        self.profile[row] &= ~np.uint16(ALIVE)
        self.live -= 1
        self.dead_total += 1
        if row < self.indexed:
            self.dead_indexed += 1

    def upsert(self, sub: SubscriberCriteria) -> None:
        key, (lat, lon, radius, min_pay, profile, roles) = self._encode(sub)
        previous = self._find_key(key)
        if previous is not None:
            self._kill(previous)
        if self.size == self.capacity:
            self._grow(self.capacity + max(1024, self.capacity // 4))
        row = self.size
        self.hi[row], self.lo[row] = split_key(key)
        self._place(
            slice(row, row + 1), lat=np.array([lat]), lon=np.array([lon]), radius=np.array([radius])
        )
        self.min_pay[row], self.profile[row], self.roles[row] = min_pay, profile, roles
        self.size += 1
        self.live += 1
        self.ids.assign(key, row)
        if self.size - self.indexed >= max(_MIN_DELTA, self.indexed // _DELTA_FRACTION):
            self.merge()

    def remove(self, subscriber_id: str) -> bool:
        row = self.find(subscriber_id)
        if row is None:
            return False
        self._kill(row)
        return True

    # -- sorted structures ----------------------------------------------------------------------

    def _geo_entries(self, rows: I64) -> tuple[I64, I64]:
        radius_class = np.minimum(
            np.searchsorted(np.array(RADIUS_CLASS_BOUNDS), reach_miles(self.sphere[rows, 3])),
            len(RADIUS_CLASS_BOUNDS) - 1,
        )
        lat, lon = self._coordinates(rows)
        cell = np.empty(len(rows), dtype=np.int64)
        stride = np.empty(len(rows), dtype=np.int64)
        for index, grid in enumerate(self.grids):
            members = radius_class == index
            cell[members] = grid.cell_keys(lat[members], lon[members])
            stride[members] = grid.role_stride
        return self._per_role(rows, lambda role, picked: cell[picked] + role * stride[picked])

    def _remote_entries(self, rows: I64) -> tuple[I64, I64]:
        rows = rows[(self.profile[rows] & REMOTE_OK) != 0]
        profile = self.profile[rows].astype(np.int64)
        bucket = pay_buckets(self.min_pay[rows])

        def keys(role: int, picked: I64) -> I64:
            role_column = np.full(len(picked), role, dtype=np.int64)
            group = remote_group_keys(role=role_column, profile=profile[picked])
            return group * N_PAY_BUCKETS + bucket[picked]

        return self._per_role(rows, keys)

    def _per_role(self, rows: I64, keys_of: Callable[[int, I64], I64]) -> tuple[I64, I64]:
        """Sorted (key, row) entries, one per (row, wanted role)."""
        roles = self.roles[rows]
        all_keys: list[I64] = [np.empty(0, dtype=np.int64)]
        all_rows: list[I64] = [np.empty(0, dtype=np.int64)]
        for role in range(N_ROLES):
            picked = np.flatnonzero(roles & (1 << role))
            all_keys.append(keys_of(role, picked))
            all_rows.append(rows[picked])
        keys = np.concatenate(all_keys)
        order = np.argsort(keys, kind="stable")
        return keys[order], np.concatenate(all_rows)[order]

    def reindex(self) -> None:
        """Rebuild every sorted structure from the live rows, dropping tombstones."""
        n = self.size
        keep = np.flatnonzero(self.profile[:n] & ALIVE)
        # Neighbours in space become neighbours in memory, so a query's gathers stay cache-local.
        spatial = GRIDS[1].cell_keys(*self._coordinates(keep))
        keep = keep[np.argsort(spatial, kind="stable")]
        capacity = len(keep) + max(1024, len(keep) // 16)
        for name, dtype in _COLUMNS.items():
            column = np.empty((capacity, *getattr(self, name).shape[1:]), dtype=dtype)
            column[: len(keep)] = getattr(self, name)[keep]
            setattr(self, name, column)
        self.size = self.indexed = self.live = len(keep)
        self.dead_indexed = self.dead_total = 0
        rows = np.arange(self.size, dtype=np.int64)
        self.ids.rebuild(self.hi[: self.size])
        geo_keys, geo_rows = self._geo_entries(rows)
        self.geo_keys, self.geo_rows = geo_keys.astype(np.int32), geo_rows.astype(np.uint32)
        remote_keys, remote_rows = self._remote_entries(rows)
        self.remote_keys = remote_keys.astype(np.int32)
        self.remote_rows = remote_rows.astype(np.uint32)
        self.remote_offsets = np.zeros(N_REMOTE_KEYS + 1, dtype=np.int32)
        np.cumsum(np.bincount(remote_keys, minlength=N_REMOTE_KEYS), out=self.remote_offsets[1:])
        verbatim_rows = np.flatnonzero(self.roles[: self.size] & VERBATIM_ID)
        kept = ((int(self.hi[r]) << 64) | int(self.lo[r]) for r in verbatim_rows.tolist())
        self.verbatim = {key: self.verbatim[key] for key in kept}

    def merge(self) -> None:
        """Fold the delta rows into the sorted structures."""
        if self.dead_total * _DEAD_FRACTION > self.size:
            self.reindex()
            return
        delta = np.arange(self.indexed, self.size, dtype=np.int64)
        delta = delta[(self.profile[delta] & ALIVE) != 0]
        keys, rows = self._geo_entries(delta)
        at = np.searchsorted(self.geo_keys, keys, side="right")
        self.geo_keys = np.insert(self.geo_keys, at, keys.astype(np.int32))
        self.geo_rows = np.insert(self.geo_rows, at, rows.astype(np.uint32))
        keys, rows = self._remote_entries(delta)
        at = np.searchsorted(self.remote_keys, keys, side="right")
        self.remote_keys = np.insert(self.remote_keys, at, keys.astype(np.int32))
        self.remote_rows = np.insert(self.remote_rows, at, rows.astype(np.uint32))
        added = np.cumsum(np.bincount(keys, minlength=N_REMOTE_KEYS)).astype(np.int32)
        self.remote_offsets[1:] += added
        self.ids.merge(low_column=self.lo)
        self.indexed = self.size
        self.dead_indexed = self.dead_total

    @property
    def nbytes(self) -> int:
        arrays = (
            *(getattr(self, name) for name in _COLUMNS),
            self.geo_keys,
            self.geo_rows,
            self.remote_keys,
            self.remote_rows,
            self.remote_offsets,
        )
        verbatim = len(self.verbatim) * _DICT_ENTRY_BYTES
        return int(sum(a.nbytes for a in arrays)) + self.ids.nbytes + verbatim
