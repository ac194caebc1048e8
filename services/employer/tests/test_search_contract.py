"""The directory and job-board searches of the in-memory fake repository against MongoDB's
(``$geoNear``): the same employers and openings around New England, the same searches by ZIP and
radius, filters and pages, and the same answers, in the same order, from both.

MongoDB's behaviour is the product's; the fake the other tests use must give what it gives. No two
places of the scenario are at the same distance from a searched ZIP: ``$geoNear`` leaves the order
of equal distances open, so no answer could be held to one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest

from hwcollab_common.geo import lookup_zip
from hwcollab_common.mongo import create_client
from hwcollab_employer.commands import EmployerSignup, OpeningFields
from hwcollab_employer.domain import Employer
from hwcollab_employer.listing import BoardQuery, DirectoryQuery, EmployerListing, OpeningListing
from hwcollab_employer.repository import MongoEmployerRepository

from .conftest import NOW, FakeRepository, Harness, opening_body, signup_body

pytestmark = pytest.mark.integration

APP = "hwcollab-employer-search-contract"

EMPLOYERS = {
    # name: (ZIP, city, state, settings, description)
    "Worcester Care Partners": (
        "01608",
        "Worcester",
        "MA",
        ["medical"],
        "Care coordination in Worcester County.",
    ),
    "Shrewsbury Family Health": (
        "01545",
        "Shrewsbury",
        "MA",
        ["medical", "behavioral_health"],
        "Primary care and counseling for families.",
    ),
    "Framingham Recovery Center": (
        "01701",
        "Framingham",
        "MA",
        ["behavioral_health"],
        "Outpatient recovery services.",
    ),
    "Lowell Community Partners": (
        "01852",
        "Lowell",
        "MA",
        ["behavioral_health", "social_service"],
        "Community partner program for the Merrimack Valley.",
    ),
    "Pioneer Valley Supports": (
        "01103",
        "Springfield",
        "MA",
        ["social_service"],
        "Residential supports for adults with disabilities.",
    ),
    "Narragansett Family Services": (
        "02903",
        "Providence",
        "RI",
        ["social_service", "behavioral_health"],
        "Family services in Providence and the East Bay.",
    ),
    "Seacoast Care Network": (
        "03801",
        "Portsmouth",
        "NH",
        ["medical"],
        "Home care for older adults on the Seacoast.",
    ),
    "Champlain Health Home": (
        "05401",
        "Burlington",
        "VT",
        ["medical"],
        "A health home for Chittenden County.",
    ),
    # Never listed: waits for approval, and suspended (its openings leave the board).
    "Marlborough Waiting Room": ("01752", "Marlborough", "MA", ["medical"], "Not approved yet."),
    "Boston Suspended Care": ("02108", "Boston", "MA", ["medical"], "Suspended for review."),
}

OPENINGS = [
    # employer, title, role, setting, ZIP (None: remote), hours after the first post
    ("Worcester Care Partners", "RN Care Manager", "nurse_care_manager", "medical", "01608", 0),
    ("Worcester Care Partners", "Care Coordinator", "care_coordinator", "medical", "01610", 1),
    ("Worcester Care Partners", "Telehealth Coordinator", "care_coordinator", "medical", None, 2),
    ("Shrewsbury Family Health", "Case Manager", "case_manager", "behavioral_health", "01545", 3),
    (
        "Framingham Recovery Center",
        "Recovery Coach",
        "case_manager",
        "behavioral_health",
        "01701",
        3,
    ),
    (
        "Lowell Community Partners",
        "Complex Care Manager",
        "complex_care_manager",
        "behavioral_health",
        "01843",
        4,
    ),
    ("Lowell Community Partners", "Remote Case Manager", "case_manager", "social_service", None, 4),
    (
        "Pioneer Valley Supports",
        "Direct Support Professional",
        "direct_support_professional",
        "social_service",
        "01060",
        5,
    ),
    (
        "Narragansett Family Services",
        "Family Care Coordinator",
        "care_coordinator",
        "behavioral_health",
        "02860",
        6,
    ),
    ("Seacoast Care Network", "RN Case Manager", "rn_case_manager", "medical", "03833", 7),
    ("Seacoast Care Network", "Utilization Reviewer", "care_manager", "medical", None, 8),
    (
        "Champlain Health Home",
        "Health Home Care Manager",
        "health_home_care_manager",
        "medical",
        "05401",
        9,
    ),
    # Never on the board: closed, expired, and the suspended employer's.
    ("Worcester Care Partners", "Closed Coordinator", "care_coordinator", "medical", "01609", 10),
    ("Shrewsbury Family Health", "Expired Case Manager", "case_manager", "medical", "01545", 11),
    ("Boston Suspended Care", "Suspended Care Manager", "care_manager", "medical", "02108", 12),
]

WORCESTER = lookup_zip("01608")
PROVIDENCE = lookup_zip("02903")


async def _scenario(harness: Harness) -> None:
    """The employers and openings, made through the service on the fake repository."""
    by_name: dict[str, Employer] = {}
    zip_code: str | None  # an opening's is None when it is remote
    for number, (name, (zip_code, city, state, settings, description)) in enumerate(
        EMPLOYERS.items()
    ):
        signup = signup_body(
            f"hr{number}@contract.example",
            organization_name=name,
            description=description,
            settings=settings,
            address={"street": f"{number} Main St", "city": city, "state": state, "zip": zip_code},
        )
        by_name[name] = await harness.service.create_employer(EmployerSignup.model_validate(signup))
    for employer, title, role, setting, zip_code, hours in OPENINGS:
        harness.clock.set(NOW + timedelta(hours=hours))
        body = opening_body(title=title, role=role, setting=setting, required_credentials=[])
        body |= {"zip": zip_code, "remote": zip_code is None}
        await harness.service.post_opening(
            by_name[employer].employer_id, OpeningFields.model_validate(body)
        )
    _amend(harness.repository, by_name)


def _amend(fake: FakeRepository, by_name: dict[str, Employer]) -> None:
    """Close, expire and take off the board what the scenario keeps off it."""
    waiting = by_name["Marlborough Waiting Room"]
    fake.employers[waiting.employer_id] = dataclasses.replace(waiting, status="pending")
    suspended = by_name["Boston Suspended Care"]
    fake.employers[suspended.employer_id] = dataclasses.replace(suspended, status="suspended")
    for opening in list(fake.openings.values()):
        change: dict[str, Any] = {}
        if opening.fields.title == "Closed Coordinator":
            change = {"status": "closed", "closed_at": NOW, "close_reason": "closed"}
        elif opening.fields.title == "Expired Case Manager":
            change = {"expires_at": NOW + timedelta(hours=20)}
        elif opening.employer_id == suspended.employer_id:
            change = {"employer_approved": False}
        fake.openings[opening.opening_id] = dataclasses.replace(opening, **change)


@pytest.fixture
async def repositories(
    mongo_url: str,
) -> AsyncIterator[tuple[FakeRepository, MongoEmployerRepository]]:
    """The scenario in the fake repository and, copied, in a fresh MongoDB database."""
    harness = Harness()
    await _scenario(harness)
    fake = harness.repository
    client = create_client(mongo_url, app_name=APP)
    name = f"search_contract_{uuid4().hex[:12]}"
    mongo = MongoEmployerRepository(client[name])
    try:
        await mongo.ensure_indexes()
        for employer in fake.employers.values():
            await mongo.add_employer(employer, session=None)
        for opening in fake.openings.values():
            await mongo.add_opening(opening, session=None)
        for employer in fake.employers.values():
            await mongo.refresh_listing(employer.employer_id, session=None)
        yield fake, mongo
    finally:
        await client.drop_database(name)
        await client.close()


def _employers(items: Sequence[EmployerListing]) -> list[tuple[str, float | None, int]]:
    return [(i.employer.organization_name, i.distance_miles, i.open_openings) for i in items]


def _openings(items: Sequence[OpeningListing]) -> list[tuple[str, str, float | None]]:
    return [(i.opening.fields.title, i.opening.opening_id, i.distance_miles) for i in items]


def _same(faked: list[tuple[Any, ...]], stored: list[tuple[Any, ...]]) -> None:
    """The same rows in the same order, distances to within a millionth of a mile (the same
    sphere, but not the same arithmetic)."""
    assert len(faked) == len(stored), (faked, stored)
    for fake_row, mongo_row in zip(faked, stored, strict=True):
        assert len(fake_row) == len(mongo_row)
        for fake_value, mongo_value in zip(fake_row, mongo_row, strict=True):
            if isinstance(mongo_value, float):
                assert fake_value == pytest.approx(mongo_value, abs=1e-6), (faked, stored)
            else:
                assert fake_value == mongo_value, (faked, stored)


async def test_mongodb_answers_what_the_scenario_means(
    repositories: tuple[FakeRepository, MongoEmployerRepository],
) -> None:
    """The answers both must give: the approved employers by distance, the open, unexpired
    openings of approved employers by distance, then the remote ones newest first."""
    _, mongo = repositories
    directory = await mongo.search_employers(DirectoryQuery(near=WORCESTER, radius_miles=40))
    assert [item.employer.organization_name for item in directory.items] == [
        "Worcester Care Partners",
        "Shrewsbury Family Health",
        "Framingham Recovery Center",
        "Lowell Community Partners",
        "Narragansett Family Services",
    ]
    assert [item.open_openings for item in directory.items] == [3, 2, 1, 2, 1]
    board = await mongo.search_openings(
        BoardQuery(near=WORCESTER, radius_miles=25), now=NOW + timedelta(days=1)
    )
    assert [(item.opening.fields.title, item.distance_miles is None) for item in board.items] == [
        ("RN Care Manager", False),
        ("Care Coordinator", False),
        ("Case Manager", False),
        ("Recovery Coach", False),
        ("Utilization Reviewer", True),
        ("Remote Case Manager", True),
        ("Telehealth Coordinator", True),
    ]


DIRECTORY_QUERIES = {
    "near Worcester, 25 miles": DirectoryQuery(near=WORCESTER, radius_miles=25),
    "near Worcester, 40 miles": DirectoryQuery(near=WORCESTER, radius_miles=40),
    "near Worcester, 250 miles": DirectoryQuery(near=WORCESTER, radius_miles=250),
    "near Providence, 10 miles": DirectoryQuery(near=PROVIDENCE, radius_miles=10),
    "nothing within a mile": DirectoryQuery(near=WORCESTER, radius_miles=1, text="Lowell"),
    "everywhere, by name": DirectoryQuery(),
    "setting near Worcester": DirectoryQuery(
        near=WORCESTER, radius_miles=100, setting="behavioral_health"
    ),
    "roles near Worcester": DirectoryQuery(
        near=WORCESTER, radius_miles=250, roles=("case_manager", "rn_case_manager")
    ),
    "a role, default radius": DirectoryQuery(near=WORCESTER, roles=("care_coordinator",)),
    "text in a name": DirectoryQuery(near=WORCESTER, radius_miles=250, text="family"),
    "text in a city": DirectoryQuery(text="providence"),
    "text across name and description": DirectoryQuery(text="Partners Care"),
    "page 1 of 3": DirectoryQuery(near=WORCESTER, radius_miles=250, page=1, page_size=3),
    "page 2 of 3": DirectoryQuery(near=WORCESTER, radius_miles=250, page=2, page_size=3),
    "page 3 of 3": DirectoryQuery(near=WORCESTER, radius_miles=250, page=3, page_size=3),
    "page past the end": DirectoryQuery(near=WORCESTER, radius_miles=250, page=4, page_size=3),
    "by name, page 2": DirectoryQuery(page=2, page_size=5),
}


@pytest.mark.parametrize("query", DIRECTORY_QUERIES.values(), ids=DIRECTORY_QUERIES.keys())
async def test_the_directory_answers_as_mongodb_does(
    repositories: tuple[FakeRepository, MongoEmployerRepository], query: DirectoryQuery
) -> None:
    fake, mongo = repositories
    faked, stored = await fake.search_employers(query), await mongo.search_employers(query)
    _same(_employers(faked.items), _employers(stored.items))
    assert (faked.total, faked.page, faked.page_size) == (
        stored.total,
        stored.page,
        stored.page_size,
    )


BOARD_QUERIES = {
    "near Worcester, 25 miles": BoardQuery(near=WORCESTER, radius_miles=25),
    "near Worcester, 25 miles, no remote": BoardQuery(
        near=WORCESTER, radius_miles=25, include_remote=False
    ),
    "near Worcester, 50 miles": BoardQuery(near=WORCESTER, radius_miles=50),
    "near Worcester, 250 miles": BoardQuery(near=WORCESTER, radius_miles=250),
    "near Providence, 3 miles": BoardQuery(near=PROVIDENCE, radius_miles=3),
    "newest first": BoardQuery(),
    "newest first, no remote": BoardQuery(include_remote=False),
    "roles near Worcester": BoardQuery(
        near=WORCESTER, radius_miles=100, roles=("case_manager", "care_coordinator")
    ),
    "setting near Worcester": BoardQuery(near=WORCESTER, radius_miles=250, setting="medical"),
    "text in a title": BoardQuery(near=WORCESTER, radius_miles=250, text="case manager"),
    "text in an employer's name": BoardQuery(text="seacoast"),
    "text across title and name": BoardQuery(text="Manager Seacoast"),
    "page 1, local only": BoardQuery(near=WORCESTER, radius_miles=250, page=1, page_size=4),
    "page 2, local only": BoardQuery(near=WORCESTER, radius_miles=250, page=2, page_size=4),
    "page 3, local then remote": BoardQuery(near=WORCESTER, radius_miles=250, page=3, page_size=4),
    "page 4, remote only": BoardQuery(near=WORCESTER, radius_miles=250, page=4, page_size=4),
    "newest first, page 2": BoardQuery(page=2, page_size=5),
}


@pytest.mark.parametrize("query", BOARD_QUERIES.values(), ids=BOARD_QUERIES.keys())
async def test_the_job_board_answers_as_mongodb_does(
    repositories: tuple[FakeRepository, MongoEmployerRepository], query: BoardQuery
) -> None:
    fake, mongo = repositories
    now = NOW + timedelta(days=1)
    faked, stored = (
        await fake.search_openings(query, now=now),
        await mongo.search_openings(query, now=now),
    )
    _same(_openings(faked.items), _openings(stored.items))
    assert (faked.total, faked.page, faked.page_size) == (
        stored.total,
        stored.page,
        stored.page_size,
    )
