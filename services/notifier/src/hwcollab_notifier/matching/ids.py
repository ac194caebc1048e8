"""Subscriber ids as 128-bit keys held in two uint64 columns, and back to strings in bulk.

A million Python ``str`` ids in a dict cost ~150 bytes each; as two uint64 columns they cost 16.
Ids are UUIDs in practice; a canonical UUID string maps to its own 128 bits and comes back
unchanged. Any other string gets a BLAKE2b-128 key and is remembered verbatim by the caller.
"""

from __future__ import annotations

import hashlib
import uuid

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]
_MASK64 = (1 << 64) - 1
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
# Where each of the 32 hex digits goes in the 36-character canonical form (dashes at 8, 13, 18, 23).
_DIGIT_COLUMNS = np.array([i + (i >= 8) + (i >= 12) + (i >= 16) + (i >= 20) for i in range(32)])


def id_key(subscriber_id: str) -> tuple[int, bool]:
    """The 128-bit key of an id, and whether the id is a canonical UUID string (round-trips)."""
    try:
        parsed = uuid.UUID(subscriber_id)
    except ValueError:
        parsed = None
    if parsed is not None and str(parsed) == subscriber_id:
        return parsed.int, True
    digest = hashlib.blake2b(subscriber_id.encode(), digest_size=16).digest()
    return int.from_bytes(digest, "big"), False


def split_key(key: int) -> tuple[int, int]:
    return key >> 64, key & _MASK64


def format_uuids(hi: U64, lo: U64) -> list[str]:
    """Canonical UUID strings for parallel (hi, lo) arrays, vectorized."""
    n = len(hi)
    if n == 0:
        return []
    raw = np.empty((n, 16), dtype=np.uint8)
    raw[:, :8] = hi.astype(">u8").view(np.uint8).reshape(n, 8)
    raw[:, 8:] = lo.astype(">u8").view(np.uint8).reshape(n, 8)
    digits = np.empty((n, 32), dtype=np.uint8)
    digits[:, 0::2] = _HEX[raw >> 4]
    digits[:, 1::2] = _HEX[raw & 15]
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    text[:, _DIGIT_COLUMNS] = digits
    joined = text.tobytes().decode("ascii")
    return [joined[i : i + 36] for i in range(0, 36 * n, 36)]
