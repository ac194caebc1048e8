"""Subscriber id (128-bit key) → row, without one Python object per subscriber.

Rows folded into the index are found through a sorted uint64 array of the keys' high halves and a
parallel uint32 row array (binary search, then the low half is checked against the store's column);
keys given rows since the last merge sit in a small dict.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from hwcollab_notifier.matching.ids import split_key

U64 = npt.NDArray[np.uint64]
_LOW64 = 0xFFFF_FFFF_FFFF_FFFF
_DICT_ENTRY_BYTES = 120  # a small dict entry with an int key and value, roughly


class IdMap:
    def __init__(self) -> None:
        self.high = np.empty(0, dtype=np.uint64)
        self.rows = np.empty(0, dtype=np.uint32)
        self.recent: dict[int, int] = {}

    def find(self, key: int, *, low_column: U64) -> int | None:
        """The row last given to ``key`` (alive or not), or None."""
        row = self.recent.get(key)
        if row is not None:
            return row
        hi, lo = split_key(key)
        position = int(np.searchsorted(self.high, np.uint64(hi)))
        while position < len(self.high) and int(self.high[position]) == hi:
            candidate = int(self.rows[position])
            if int(low_column[candidate]) == lo:
                return candidate
            position += 1
        return None

    def assign(self, key: int, row: int) -> None:
        self.recent[key] = row

    def rebuild(self, high_column: U64) -> None:
        """Map every row ``0..len(high_column)`` (their keys are unique)."""
        order = np.argsort(high_column, kind="stable")
        self.high = high_column[order]
        self.rows = order.astype(np.uint32)
        self.recent = {}

    def merge(self, *, low_column: U64) -> None:
        """Fold the recent assignments into the sorted arrays."""
        if not self.recent:
            return
        keys = list(self.recent)
        his = np.array([k >> 64 for k in keys], dtype=np.uint64)
        los = np.array([k & _LOW64 for k in keys], dtype=np.uint64)
        rows = np.array(list(self.recent.values()), dtype=np.uint32)
        at = np.searchsorted(self.high, his)
        found = np.zeros(len(keys), dtype=np.bool_)
        if len(self.high):
            clipped = np.minimum(at, len(self.high) - 1)
            found = (at < len(self.high)) & (self.high[clipped] == his)
        for i in np.flatnonzero(found).tolist():
            # Usually the first entry with this high half is the id itself; walk on otherwise.
            position = int(at[i])
            while position < len(self.high) and self.high[position] == his[i]:
                if low_column[self.rows[position]] == los[i]:
                    break
                position += 1
            if position < len(self.high) and self.high[position] == his[i]:
                at[i] = position
            else:
                found[i] = False
        self.rows[at[found]] = rows[found]
        new = np.flatnonzero(~found)
        order = new[np.argsort(his[new], kind="stable")]
        self.high = np.insert(self.high, at[order], his[order])
        self.rows = np.insert(self.rows, at[order], rows[order])
        self.recent = {}

    @property
    def nbytes(self) -> int:
        return int(self.high.nbytes + self.rows.nbytes) + len(self.recent) * _DICT_ENTRY_BYTES
