"""JSON bodies the API answers with (what clients may rely on)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from hwcollab_employer.domain import Employer, Opening
from hwcollab_employer.listing import EmployerListing, OpeningListing, Page
from hwcollab_employer.ports import ApiKeyRecord


class Registered(BaseModel):
    employer_id: str
    status: str


class Accepted(BaseModel):
    """An answer that says the same whatever the address (so it tells nobody whether an account
    uses it)."""

    detail: str


class Moderated(Registered):
    """An operator's decision on an employer, as the employer is shown it."""

    reason: str | None

    @classmethod
    def of(cls, employer: Employer) -> Moderated:
        return cls(
            employer_id=employer.employer_id,
            status=employer.status,
            reason=employer.moderation_reason,
        )


class AccessToken(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - a scheme, not a secret
    expires_in: int


class AddressOut(BaseModel):
    street: str | None
    city: str
    state: str
    zip: str


class EmployerPublic(BaseModel):
    employer_id: str
    organization_name: str
    website: str | None
    description: str
    phone: str | None
    address: AddressOut
    lat: float
    lon: float
    settings: list[str]

    @classmethod
    def of(cls, employer: Employer) -> EmployerPublic:
        return cls(**_employer_fields(employer))


class EmployerMe(EmployerPublic):
    contact_email: str
    status: str
    created_at: datetime
    approved_at: datetime | None
    moderation_reason: str | None = Field(
        default=None, description="Why HWcollab rejected, suspended or reinstated the account"
    )

    @classmethod
    def of(cls, employer: Employer) -> EmployerMe:
        return cls(
            **_employer_fields(employer),
            contact_email=employer.contact_email,
            status=employer.status,
            created_at=employer.created_at,
            approved_at=employer.approved_at,
            moderation_reason=employer.moderation_reason,
        )


def _employer_fields(employer: Employer) -> dict[str, object]:
    place = employer.place
    return {
        "employer_id": employer.employer_id,
        "organization_name": employer.organization_name,
        "website": employer.website,
        "description": employer.description,
        "phone": employer.phone,
        "address": AddressOut(
            street=place.street, city=place.city, state=place.state, zip=place.zip
        ),
        "lat": place.lat,
        "lon": place.lon,
        "settings": list(employer.settings),
    }


class DirectoryEntry(EmployerPublic):
    distance_miles: float | None
    open_openings: int

    @classmethod
    def of_listing(cls, listing: EmployerListing) -> DirectoryEntry:
        return cls(
            **_employer_fields(listing.employer),
            distance_miles=_miles(listing.distance_miles),
            open_openings=listing.open_openings,
        )


class OpeningOut(BaseModel):
    opening_id: str
    employer_id: str
    organization_name: str
    version: int
    status: str
    title: str
    role: str
    setting: str
    required_credentials: list[str]
    employment_type: str
    remote: bool
    zip: str | None
    city: str | None
    state: str | None
    lat: float | None
    lon: float | None
    pay_min: float | None
    pay_max: float | None
    pay_period: str
    description: str
    apply_url: str
    posted_at: datetime
    expires_at: datetime
    closed_at: datetime | None
    close_reason: str | None
    distance_miles: float | None = None
    url: str | None = None

    @classmethod
    def of(
        cls, opening: Opening, *, distance_miles: float | None = None, base_url: str = ""
    ) -> OpeningOut:
        """The opening as its event payload shows it, with how it closed and where to see it."""
        return cls(
            **opening.details().model_dump(exclude={"employer_approved"}),
            closed_at=opening.closed_at,
            close_reason=opening.close_reason,
            distance_miles=_miles(distance_miles),
            url=f"{base_url}/openings/{opening.opening_id}" if base_url else None,
        )


class OwnOpening(OpeningOut):
    employer_approved: bool
    notified: int
    external_id: str | None = None
    takedown_reason: str | None = None

    @classmethod
    def own(cls, opening: Opening, *, base_url: str = "") -> OwnOpening:
        base = OpeningOut.of(opening, base_url=base_url)
        return cls(
            **base.model_dump(),
            employer_approved=opening.employer_approved,
            notified=opening.notified,
            external_id=opening.fields.external_id,
            takedown_reason=opening.takedown_reason,
        )


class DirectoryPage(BaseModel):
    results: list[DirectoryEntry]
    total: int
    page: int
    page_size: int

    @classmethod
    def of(cls, page: Page[EmployerListing]) -> DirectoryPage:
        return cls(
            results=[DirectoryEntry.of_listing(item) for item in page.items],
            total=page.total,
            page=page.page,
            page_size=page.page_size,
        )


class OpeningsPage(BaseModel):
    results: list[OpeningOut]
    total: int
    page: int
    page_size: int

    @classmethod
    def of(cls, page: Page[OpeningListing], *, base_url: str) -> OpeningsPage:
        return cls(
            results=[
                OpeningOut.of(item.opening, distance_miles=item.distance_miles, base_url=base_url)
                for item in page.items
            ],
            total=page.total,
            page=page.page,
            page_size=page.page_size,
        )


class OpeningStatsOut(BaseModel):
    opening_id: str
    notified: int


class NewApiKeyOut(BaseModel):
    api_key: str
    key_id: str
    name: str


class ApiKeyOut(BaseModel):
    key_id: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, record: ApiKeyRecord) -> ApiKeyOut:
        return cls(
            key_id=record.key_id,
            name=record.name,
            prefix=record.prefix,
            created_at=record.created_at,
            revoked_at=record.revoked_at,
        )


class RoleSuggestion(BaseModel):
    role: str | None
    title: str | None


def _miles(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
