"""Searches of the directory ("Find a Local Employer") and of the job board, and their pages."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Generic, TypeVar

from hwcollab_common.geo import ZipPlace, lookup_zip
from hwcollab_employer.domain import Employer, InvalidFieldsError, Opening
from hwcollab_schemas import taxonomy

T = TypeVar("T")

DEFAULT_RADIUS_MILES = 25
MAX_RADIUS_MILES = 250
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 50
MAX_PAGE = 500
MAX_TEXT = 100


@dataclass(frozen=True, slots=True)
class DirectoryQuery:
    near: ZipPlace | None = None
    radius_miles: int = DEFAULT_RADIUS_MILES
    setting: str | None = None
    roles: tuple[str, ...] = ()
    text: str | None = None
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE


@dataclass(frozen=True, slots=True)
class BoardQuery:
    near: ZipPlace | None = None
    radius_miles: int = DEFAULT_RADIUS_MILES
    setting: str | None = None
    roles: tuple[str, ...] = ()
    text: str | None = None
    include_remote: bool = True
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE


@dataclass(frozen=True, slots=True)
class EmployerListing:
    employer: Employer
    distance_miles: float | None
    open_openings: int


@dataclass(frozen=True, slots=True)
class OpeningListing:
    opening: Opening
    distance_miles: float | None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.page_size))


def offset_of(page: int, page_size: int) -> int:
    return (page - 1) * page_size


@dataclass(frozen=True, slots=True)
class SearchParameters:
    """What a search form or query string says, before it is checked."""

    zip: str | None = None
    radius_miles: int | None = None
    setting: str | None = None
    role: str | None = None
    text: str | None = None
    remote: bool | None = None
    page: int | None = None
    page_size: int | None = None


@dataclass(frozen=True, slots=True)
class _Common:
    near: ZipPlace | None
    radius_miles: int
    setting: str | None
    roles: tuple[str, ...]
    page: int
    page_size: int


def _common(parameters: SearchParameters) -> _Common:
    errors: dict[str, str] = {}
    near: ZipPlace | None = None
    zip_code = (parameters.zip or "").strip()
    if zip_code:
        near = lookup_zip(zip_code) if len(zip_code) == 5 and zip_code.isdigit() else None
        if near is None:
            errors["zip"] = "is not a known 5-digit US ZIP code"
    radius = parameters.radius_miles or DEFAULT_RADIUS_MILES
    if not 1 <= radius <= MAX_RADIUS_MILES:
        errors["radius_miles"] = f"must be between 1 and {MAX_RADIUS_MILES}"
    setting = parameters.setting or None
    if setting and setting not in taxonomy.SETTING_CODES:
        errors["setting"] = f"unknown setting; allowed: {', '.join(taxonomy.SETTING_CODES)}"
    roles: tuple[str, ...] = ()
    if parameters.role:
        try:
            roles = tuple(sorted(taxonomy.expand_roles([parameters.role])))
        except taxonomy.UnknownCodeError:
            errors["role"] = "unknown role or family code"
    page = parameters.page or 1
    if not 1 <= page <= MAX_PAGE:
        errors["page"] = f"must be between 1 and {MAX_PAGE}"
    page_size = parameters.page_size or DEFAULT_PAGE_SIZE
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        errors["page_size"] = f"must be between 1 and {MAX_PAGE_SIZE}"
    if errors:
        raise InvalidFieldsError(errors, location="query")
    return _Common(near, radius, setting, roles, page, page_size)


def _text(parameters: SearchParameters) -> str | None:
    text = (parameters.text or "").strip()
    if len(text) > MAX_TEXT:
        raise InvalidFieldsError({"q": f"must be at most {MAX_TEXT} characters"}, location="query")
    return text or None


def directory_query(parameters: SearchParameters) -> DirectoryQuery:
    """The directory search these parameters ask for; raises :class:`InvalidFieldsError`."""
    text = _text(parameters)
    common = _common(parameters)
    return DirectoryQuery(
        near=common.near,
        radius_miles=common.radius_miles,
        setting=common.setting,
        roles=common.roles,
        text=text,
        page=common.page,
        page_size=common.page_size,
    )


def board_query(parameters: SearchParameters) -> BoardQuery:
    """The job-board search these parameters ask for; raises :class:`InvalidFieldsError`."""
    text = _text(parameters)
    common = _common(parameters)
    return BoardQuery(
        near=common.near,
        radius_miles=common.radius_miles,
        setting=common.setting,
        roles=common.roles,
        text=text,
        include_remote=parameters.remote is not False,
        page=common.page,
        page_size=common.page_size,
    )
