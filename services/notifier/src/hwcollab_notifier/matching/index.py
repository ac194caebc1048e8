"""The in-memory match index: which active subscribers does an opening match, in about a millisecond
for a million subscribers, in ~130 bytes per subscriber.

Layout (everything is numpy; no Python object per subscriber):

- **Rows.** Each upsert appends a row to column arrays: id as two uint64, minimum pay (float64,
  NaN = none), the place as a unit vector beside the radius as a squared chord (one (N, 4) float64
  array: the distance test is a dot product and one gathered row is one cache line; lat, lon and
  radius are derived from it when needed), a uint16 *profile* (settings, employment-type and
  credential bitmasks, ``remote_ok``, ``alive``) and a uint16 role bitmask. A removed or replaced
  subscriber's row is a tombstone (``alive`` cleared) until the next compaction, which also sorts
  rows by place so that neighbours share cache lines.
- **Id map** (:mod:`.idmap`). Indexed rows are found by a sorted uint64 array of the ids' high
  halves plus a parallel row array (binary search, then the low half is compared); rows added
  since the last merge are in a small dict. Id strings are made only for matched rows
  (:meth:`MatchResult.subscriber_ids`).
- **Geo path.** For every role a subscriber wants, one int32 key: (radius class, role, grid cell).
  Radius classes are ≤10, ≤25, ≤50, ≤100, ≤250 miles and each class has its own grid with cells
  half as wide as its bound, so an opening reads ~5 rows of cells per class: ~25 contiguous runs
  of one sorted array. Those candidates are filtered with one table lookup on the profile, then the
  distance test and pay; distances (great-circle miles) are computed for the matches only.
- **Remote path.** ``remote_ok`` subscribers are also keyed by (role, settings mask, employment
  mask, credentials mask, minimum-pay bucket) with a dense offsets table, so a remote opening's
  matches are a union of contiguous runs: no per-subscriber test except in the one pay bucket that
  straddles the opening's pay. Remote openings can match a large share of all subscribers; the
  result stays a row array until ids are asked for.
- **Delta.** Rows appended since the last merge are matched by a vectorized scan. When the delta
  reaches ~1/256 of the index it is merged into the sorted arrays (``np.insert``: tens of ms at 1M,
  amortized to microseconds per update); when tombstones pass a quarter of the rows, everything is
  rebuilt from the live rows.

The index is not thread-safe: use it from one thread (the service's event loop).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from hwcollab_notifier.matching.criteria import OpeningCriteria, SubscriberCriteria
from hwcollab_notifier.matching.ids import format_uuids
from hwcollab_notifier.matching.layout import (
    CREDENTIAL_BIT,
    DIGEST,
    EMPLOYMENT_BIT,
    N_EMPLOYMENT_MASKS,
    N_PAY_BUCKETS,
    N_SETTING_MASKS,
    REMOTE_OK,
    ROLE_INDEX,
    SETTING_BIT,
    VERBATIM_ID,
    accepting_profiles,
    chord_miles,
    pay_bucket_of,
    remote_group_bases,
)
from hwcollab_notifier.matching.store import I64, RowStore

F64 = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.signedinteger[Any]]


@dataclass(frozen=True, slots=True)
class MatchResult:
    """Matched subscribers as rows of the index; ids and distances are materialized on demand.

    ``distances`` is in miles, NaN where the match is by remote work. It stays valid after later
    updates to the index (rows are never rewritten in place).
    """

    rows: I64
    distances: F64
    _store_hi: npt.NDArray[np.uint64]
    _store_lo: npt.NDArray[np.uint64]
    _verbatim: dict[int, str]
    _verbatim_rows: I64
    _roles: npt.NDArray[np.uint16]

    def __len__(self) -> int:
        return len(self.rows)

    def digest_count(self) -> int:
        """How many of the matched subscribers take their matches in a digest."""
        return int(np.count_nonzero(self._roles[self.rows] & DIGEST))

    def digest_flags(self) -> list[bool]:
        """Whether each matched subscriber (in the order of :meth:`subscriber_ids`) takes their
        matches in a digest."""
        return ((self._roles[self.rows] & DIGEST) != 0).tolist()  # type: ignore[no-any-return]

    def subscriber_ids(self) -> list[str]:
        ids = format_uuids(self._store_hi[self.rows], self._store_lo[self.rows])
        for position in self._verbatim_rows.tolist():
            row = int(self.rows[position])
            key = (int(self._store_hi[row]) << 64) | int(self._store_lo[row])
            ids[position] = self._verbatim[key]
        return ids

    def distances_miles(self) -> list[float | None]:
        return [None if math.isnan(d) else d for d in self.distances.tolist()]

    def __iter__(self) -> Iterator[tuple[str, float | None]]:
        return zip(self.subscriber_ids(), self.distances_miles(), strict=True)


def _gather_runs(values: npt.NDArray[np.uint32], starts: IntArray, ends: IntArray) -> I64:
    """``values[s:e]`` for every run, concatenated, without a Python loop over runs."""
    lengths = ends - starts
    keep = lengths > 0
    starts, lengths = starts[keep], lengths[keep]
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    if len(starts) == 1:
        first = int(starts[0])
        return values[first : first + total].astype(np.int64)
    offsets = np.cumsum(lengths) - lengths
    positions = np.repeat(starts - offsets, lengths) + np.arange(total)
    return values[positions].astype(np.int64)


def _within_reach(store: RowStore, rows: I64, *, lat: float, lon: float) -> tuple[BoolArray, F64]:
    """Which rows' reach covers (lat, lon), and the squared chord (unit sphere) to each."""
    phi, lam = math.radians(lat), math.radians(lon)
    at = np.array(
        [math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi), 0.0]
    )
    difference = store.sphere.take(rows, axis=0)
    reach = difference[:, 3].copy()
    difference -= at
    difference[:, 3] = 0.0
    squared: F64 = np.einsum("ij,ij->i", difference, difference)
    return squared <= reach, squared


class MatchIndex:
    """Active subscribers' criteria, indexed to answer "who does this opening match?"."""

    def __init__(self) -> None:
        self._store = RowStore()

    def build(self, subscribers: Iterable[SubscriberCriteria]) -> None:
        """Replace the contents with ``subscribers`` (start-up bulk load)."""
        self._store = RowStore.from_criteria(subscribers)

    def upsert(self, criteria: SubscriberCriteria) -> None:
        """Add a subscriber or replace its criteria."""
        self._store.upsert(criteria)

    def remove(self, subscriber_id: str) -> bool:
        """Forget a subscriber (paused, unsubscribed, bounced, deleted); False if not present."""
        return self._store.remove(subscriber_id)

    def merge_updates(self) -> None:
        """Fold recent updates into the sorted structures now (else done as they accumulate)."""
        self._store.merge()

    def compact(self) -> None:
        """Drop tombstones and rebuild (about a second at 1M; otherwise done at 25% tombstones)."""
        self._store.reindex()

    def __len__(self) -> int:
        return self._store.live

    def __contains__(self, subscriber_id: object) -> bool:
        return isinstance(subscriber_id, str) and self._store.find(subscriber_id) is not None

    @property
    def nbytes(self) -> int:
        """Bytes held by the index's arrays and id maps."""
        return self._store.nbytes

    def match(
        self,
        opening: OpeningCriteria,
        *,
        any_setting: bool = False,
        any_employment_type: bool = False,
    ) -> MatchResult:
        """Every active subscriber that ``opening`` matches (SPEC §3 items 2–7).

        ``any_setting`` / ``any_employment_type`` relax that item, as if the opening were in
        every setting or of every type (the reach estimate: how many people a choice leaves out).
        """
        store = self._store
        role = ROLE_INDEX.get(opening.role)
        required = 0
        for credential in opening.required_credentials:
            if credential not in CREDENTIAL_BIT:
                role = None  # nobody holds a credential the taxonomy does not know
            else:
                required |= CREDENTIAL_BIT[credential]
        if role is None:
            return self._result(np.empty(0, np.int64), np.empty(0, np.float64))
        setting_bit = N_SETTING_MASKS - 1 if any_setting else SETTING_BIT.get(opening.setting, 0)
        employment_bit = (
            N_EMPLOYMENT_MASKS - 1
            if any_employment_type
            else EMPLOYMENT_BIT.get(opening.employment_type, 0)
        )
        table = accepting_profiles(
            setting_bit=setting_bit,
            employment_bit=employment_bit,
            required=required,
            exclude_remote_ok=opening.remote,
        )
        pay = opening.pay_max_hourly
        rows: list[I64] = []
        distances: list[F64] = []
        if opening.lat is not None and opening.lon is not None:
            starts: list[int] = []
            ends: list[int] = []
            for grid in store.grids:
                s, e = grid.key_ranges(role=role, lat=opening.lat, lon=opening.lon)
                starts += s
                ends += e
            bounds = np.searchsorted(store.geo_keys, np.array(starts + ends, dtype=np.int32))
            candidates = _gather_runs(store.geo_rows, bounds[: len(starts)], bounds[len(starts) :])
            near, distance = self._near(candidates, table, opening.lat, opening.lon, pay)
            rows.append(near)
            distances.append(distance)
        if opening.remote:
            remote = self._remote(
                role=role,
                setting_bit=setting_bit,
                employment_bit=employment_bit,
                required=required,
                pay=pay,
            )
            rows.append(remote)
            distances.append(np.full(len(remote), np.nan))
        delta_rows, delta_distances = self._scan_delta(
            opening=opening,
            role_bit=1 << role,
            pay=pay,
            required=required,
            setting_bit=setting_bit,
            employment_bit=employment_bit,
        )
        rows.append(delta_rows)
        distances.append(delta_distances)
        return self._result(np.concatenate(rows), np.concatenate(distances))

    def _result(self, rows: I64, distances: F64) -> MatchResult:
        store = self._store
        verbatim_rows = (
            np.flatnonzero(store.roles[rows] & VERBATIM_ID)
            if store.verbatim
            else np.empty(0, dtype=np.int64)
        )
        return MatchResult(
            rows=rows,
            distances=distances,
            _store_hi=store.hi,
            _store_lo=store.lo,
            _verbatim=store.verbatim,
            _verbatim_rows=verbatim_rows,
            _roles=store.roles,
        )

    def _near(
        self, rows: I64, table: npt.NDArray[np.bool_], lat: float, lon: float, pay: float | None
    ) -> tuple[I64, F64]:
        store = self._store
        rows = rows[table[store.profile[rows]]]
        inside, squared = _within_reach(store, rows, lat=lat, lon=lon)
        rows, squared = rows[inside], squared[inside]
        if pay is not None:
            affordable = ~(store.min_pay[rows] > pay)
            rows, squared = rows[affordable], squared[affordable]
        return rows, chord_miles(squared)

    def _remote(
        self, *, role: int, setting_bit: int, employment_bit: int, required: int, pay: float | None
    ) -> I64:
        store = self._store
        bases = remote_group_bases(
            role=role, setting_bit=setting_bit, employment_bit=employment_bit, required=required
        )
        offsets = store.remote_offsets
        if pay is None:
            rows = _gather_runs(store.remote_rows, offsets[bases], offsets[bases + N_PAY_BUCKETS])
        else:
            bucket = pay_bucket_of(pay)
            straddling = _gather_runs(
                store.remote_rows, offsets[bases + bucket], offsets[bases + bucket + 1]
            )
            rows = np.concatenate(
                (
                    _gather_runs(store.remote_rows, offsets[bases], offsets[bases + bucket]),
                    straddling[~(store.min_pay[straddling] > pay)],
                )
            )
        if store.dead_indexed:
            rows = rows[(store.profile[rows] & store.ALIVE) != 0]
        return rows

    def _scan_delta(
        self,
        *,
        opening: OpeningCriteria,
        role_bit: int,
        pay: float | None,
        required: int,
        setting_bit: int,
        employment_bit: int,
    ) -> tuple[I64, F64]:
        store = self._store
        first, end = store.indexed, store.size
        if first == end:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        table = accepting_profiles(
            setting_bit=setting_bit,
            employment_bit=employment_bit,
            required=required,
            exclude_remote_ok=False,
        )
        profile = store.profile[first:end]
        ok = table[profile] & ((store.roles[first:end] & role_bit) != 0)
        if pay is not None:
            ok &= ~(store.min_pay[first:end] > pay)
        rows = np.flatnonzero(ok) + first
        distance = np.full(len(rows), np.nan)
        by_remote = np.zeros(len(rows), dtype=np.bool_)
        if opening.remote:
            by_remote = (store.profile[rows] & REMOTE_OK) != 0
        if opening.lat is not None and opening.lon is not None:
            near = ~by_remote
            inside, squared = _within_reach(store, rows[near], lat=opening.lat, lon=opening.lon)
            distance[near] = chord_miles(squared)
            within = np.zeros(len(rows), dtype=np.bool_)
            within[near] = inside
            keep = by_remote | within
        else:
            keep = by_remote
        return rows[keep], distance[keep]
