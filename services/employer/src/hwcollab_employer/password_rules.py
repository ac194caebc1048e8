"""What a new password must be: at least PASSWORD_MIN characters and not one of the 20,000 most
common passwords found in breaches (Django's list, shipped in ``data/``; see ``data/NOTICE.md``),
compared case-insensitively. Checked without any network call, on sign-up, reset and change."""

from __future__ import annotations

import gzip
from functools import cache
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field

PASSWORD_MIN = 12
PASSWORD_MAX = 256
COMMON_PASSWORDS_FILE = Path(__file__).resolve().parent / "data" / "common-passwords.txt.gz"
TOO_COMMON = "This password is on a list of common passwords found in breaches: choose another one."


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list, lower-cased, read once per process."""
    with gzip.open(COMMON_PASSWORDS_FILE, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip().lower() for line in lines if line.strip())


def is_common(password: str) -> bool:
    return password.strip().lower() in common_passwords()


def _not_common(password: str) -> str:
    if is_common(password):
        raise ValueError(TOO_COMMON)
    return password


NewPassword = Annotated[
    str,
    Field(
        min_length=PASSWORD_MIN,
        max_length=PASSWORD_MAX,
        description=f"At least {PASSWORD_MIN} characters, not a common breached password",
    ),
    AfterValidator(_not_common),
]
"""A password being set: length first, then the list (a field gets one message)."""
