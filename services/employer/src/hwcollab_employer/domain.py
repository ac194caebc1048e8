"""Employers and their openings: plain data and the rules that change them. No I/O."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

from hwcollab_common.emails import email_key
from hwcollab_common.geo import ZipPlace
from hwcollab_employer.commands import (
    EmployerSignup,
    OpeningFields,
    ProfileFields,
    expires_in_range,
)
from hwcollab_schemas.events import (
    EmployerModeration,
    EmployerProfile,
    OpeningClosedPayload,
    OpeningDetails,
    OpeningTakenDownPayload,
)

EmployerStatus = Literal["unverified", "pending", "approved", "suspended", "rejected"]
"""``unverified``: signed up, contact email not confirmed yet. Such an account cannot sign in,
is never listed and is in no event: the rest of the product meets it when it is verified."""
OpeningStatus = Literal["open", "closed"]
CloseReason = Literal["closed", "expired", "taken_down"]

DEFAULT_OPENING_DAYS = 30
MAX_OPENING_DAYS = 180


class InvalidFieldsError(ValueError):
    """Input that fails a rule needing more than the input itself (e.g. the time now)."""

    def __init__(self, errors: dict[str, str], *, location: str = "body") -> None:
        self.errors = errors
        self.location = location
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


class NotFoundError(LookupError):
    """No such employer or opening, or not one the caller may see."""


class ForbiddenError(PermissionError):
    """The caller is known but may not change this."""


class ConflictError(ValueError):
    """The change does not fit the current state (e.g. editing a closed opening)."""


@dataclass(frozen=True, slots=True)
class Place:
    street: str | None
    city: str
    state: str
    zip: str
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Employer:
    employer_id: str
    version: int
    organization_name: str
    contact_email: str
    password_hash: str
    website: str | None
    description: str
    phone: str | None
    place: Place
    settings: tuple[str, ...]
    status: EmployerStatus
    created_at: datetime
    updated_at: datetime
    approved_at: datetime | None = None
    moderation_reason: str | None = None
    """Why an operator rejected, suspended or reinstated the employer (shown to it)."""
    session_version: int = 1
    """Raised by every password reset or change: sessions and access tokens of an older version
    no longer count (API keys are not sessions and keep working)."""

    @property
    def approved(self) -> bool:
        return self.status == "approved"

    @property
    def verified(self) -> bool:
        return self.status != "unverified"

    def moderation(self) -> EmployerModeration:
        return EmployerModeration(
            **self.profile().model_dump(), reason=self.moderation_reason or None
        )

    def profile(self) -> EmployerProfile:
        return EmployerProfile(
            employer_id=self.employer_id,
            version=self.version,
            organization_name=self.organization_name,
            website=self.website,
            description=self.description or None,
            city=self.place.city,
            state=self.place.state,
            zip=self.place.zip,
            lat=self.place.lat,
            lon=self.place.lon,
            settings=self.settings,
            status=self.status,
        )

    def fields(self) -> ProfileFields:
        return ProfileFields.model_validate(
            {
                "organization_name": self.organization_name,
                "website": self.website,
                "description": self.description,
                "phone": self.phone,
                "address": {
                    "street": self.place.street,
                    "city": self.place.city,
                    "state": self.place.state,
                    "zip": self.place.zip,
                },
                "settings": list(self.settings),
            }
        )


def place_of(fields: ProfileFields, zip_place: ZipPlace) -> Place:
    return Place(
        street=fields.address.street,
        city=fields.address.city,
        state=fields.address.state,
        zip=fields.address.zip,
        lat=zip_place.lat,
        lon=zip_place.lon,
    )


def register_employer(
    signup: EmployerSignup,
    *,
    employer_id: str,
    password_hash: str,
    zip_place: ZipPlace,
    auto_approve: bool,
    now: datetime,
    verified: bool = True,
) -> Employer:
    """A new account: ``unverified`` until its contact email is confirmed (a sign-up), or
    verified at once (created by an operator), then approved or pending as configured."""
    if not verified:
        employer = register_employer(
            signup,
            employer_id=employer_id,
            password_hash=password_hash,
            zip_place=zip_place,
            auto_approve=False,
            now=now,
        )
        return replace(employer, status="unverified")
    return Employer(
        employer_id=employer_id,
        version=1,
        organization_name=signup.organization_name,
        contact_email=email_key(signup.contact_email),
        password_hash=password_hash,
        website=signup.website,
        description=signup.description,
        phone=signup.phone,
        place=place_of(signup, zip_place),
        settings=tuple(signup.settings),
        status="approved" if auto_approve else "pending",
        created_at=now,
        updated_at=now,
        approved_at=now if auto_approve else None,
    )


def signed_up_again(
    employer: Employer,
    signup: EmployerSignup,
    *,
    password_hash: str,
    zip_place: ZipPlace,
    now: datetime,
) -> Employer:
    """A new sign-up with the address of an account not verified yet replaces its details and
    password: whoever confirms the address gets the account as they entered it, and the links
    sent before stop working (they carry the older session version)."""
    assert not employer.verified
    return replace(
        employer,
        organization_name=signup.organization_name,
        password_hash=password_hash,
        website=signup.website,
        description=signup.description,
        phone=signup.phone,
        place=place_of(signup, zip_place),
        settings=tuple(signup.settings),
        session_version=employer.session_version + 1,
        updated_at=now,
    )


def verify(employer: Employer, *, auto_approve: bool, now: datetime) -> Employer:
    """The contact email is confirmed: approved at once or waiting for an operator."""
    assert not employer.verified
    return replace(
        employer,
        status="approved" if auto_approve else "pending",
        approved_at=now if auto_approve else None,
        updated_at=now,
    )


def update_profile(
    employer: Employer, fields: ProfileFields, *, zip_place: ZipPlace, now: datetime
) -> Employer:
    return replace(
        employer,
        version=employer.version + 1,
        organization_name=fields.organization_name,
        website=fields.website,
        description=fields.description,
        phone=fields.phone,
        place=place_of(fields, zip_place),
        settings=tuple(fields.settings),
        updated_at=now,
    )


def approve(employer: Employer, *, now: datetime) -> Employer:
    return replace(
        employer,
        version=employer.version + 1,
        status="approved",
        approved_at=now,
        updated_at=now,
        moderation_reason=None,
    )


def reject(employer: Employer, *, reason: str, now: datetime) -> Employer:
    """Refuse a pending sign-up."""
    if employer.status != "pending":
        raise ConflictError(
            f"only a pending employer can be rejected; this one is {employer.status}"
        )
    return _moderated(employer, status="rejected", reason=reason, now=now)


def suspend(employer: Employer, *, reason: str, now: datetime) -> Employer:
    """Take an approved employer off the site until reinstated."""
    if employer.status != "approved":
        raise ConflictError(
            f"only an approved employer can be suspended; this one is {employer.status}"
        )
    return _moderated(employer, status="suspended", reason=reason, now=now)


def reinstate(employer: Employer, *, reason: str | None, now: datetime) -> Employer:
    """Approve a suspended employer again."""
    if employer.status != "suspended":
        raise ConflictError(
            f"only a suspended employer can be reinstated; this one is {employer.status}"
        )
    return _moderated(employer, status="approved", reason=reason, now=now)


def _moderated(
    employer: Employer, *, status: EmployerStatus, reason: str | None, now: datetime
) -> Employer:
    return replace(
        employer,
        version=employer.version + 1,
        status=status,
        moderation_reason=reason,
        updated_at=now,
    )


def with_password(employer: Employer, *, password_hash: str, now: datetime) -> Employer:
    """A new password: every session signed in with the old one ends (the profile, and so its
    ``version``, is unchanged)."""
    return replace(
        employer,
        password_hash=password_hash,
        session_version=employer.session_version + 1,
        updated_at=now,
    )


def with_contact_email(employer: Employer, email: str, *, now: datetime) -> Employer:
    """The confirmed new contact email (not part of the published profile)."""
    return replace(employer, contact_email=email_key(email), updated_at=now)


@dataclass(frozen=True, slots=True)
class Opening:
    opening_id: str
    employer_id: str
    version: int
    organization_name: str
    employer_approved: bool
    fields: OpeningFields
    place: Place | None
    posted_at: datetime
    expires_at: datetime
    updated_at: datetime
    status: OpeningStatus = "open"
    closed_at: datetime | None = None
    close_reason: CloseReason | None = None
    notified: int = field(default=0)
    takedown_reason: str | None = None
    """Why an operator took the opening down (shown to its employer)."""

    @property
    def is_open(self) -> bool:
        return self.status == "open"

    @property
    def taken_down(self) -> bool:
        return self.close_reason == "taken_down"

    def details(self) -> OpeningDetails:
        f = self.fields
        return OpeningDetails(
            opening_id=self.opening_id,
            employer_id=self.employer_id,
            version=self.version,
            organization_name=self.organization_name,
            employer_approved=self.employer_approved,
            title=f.title,
            role=f.role,
            setting=f.setting,
            required_credentials=tuple(f.required_credentials),
            employment_type=f.employment_type,
            remote=f.remote,
            zip=self.place.zip if self.place else None,
            city=self.place.city if self.place else None,
            state=self.place.state if self.place else None,
            lat=self.place.lat if self.place else None,
            lon=self.place.lon if self.place else None,
            pay_min=f.pay_min,
            pay_max=f.pay_max,
            pay_period=f.pay_period,
            description=f.description,
            apply_url=f.apply_url,
            posted_at=self.posted_at,
            expires_at=self.expires_at,
            status=self.status,
        )

    def taken_down_payload(self) -> OpeningTakenDownPayload:
        assert self.closed_at is not None
        assert self.takedown_reason is not None
        return OpeningTakenDownPayload(
            opening_id=self.opening_id,
            employer_id=self.employer_id,
            version=self.version,
            reason=self.takedown_reason,
            taken_down_at=self.closed_at,
        )

    def closed_payload(self) -> OpeningClosedPayload:
        assert self.closed_at is not None
        return OpeningClosedPayload(
            opening_id=self.opening_id,
            employer_id=self.employer_id,
            version=self.version,
            reason="expired" if self.close_reason == "expired" else "closed",
            closed_at=self.closed_at,
        )


def opening_place(fields: OpeningFields, zip_place: ZipPlace | None) -> Place | None:
    if fields.zip is None or zip_place is None:
        return None
    return Place(
        street=None,
        city=zip_place.city,
        state=zip_place.state,
        zip=fields.zip,
        lat=zip_place.lat,
        lon=zip_place.lon,
    )


def _expiry(fields: OpeningFields, *, now: datetime, default: datetime) -> datetime:
    if fields.expires_at is None:
        return default
    problem = expires_in_range(fields.expires_at, now=now, max_days=MAX_OPENING_DAYS)
    if problem:
        raise InvalidFieldsError({"expires_at": problem})
    return fields.expires_at


def post_opening(
    fields: OpeningFields,
    *,
    employer: Employer,
    opening_id: str,
    zip_place: ZipPlace | None,
    now: datetime,
) -> Opening:
    expires_at = _expiry(fields, now=now, default=now + timedelta(days=DEFAULT_OPENING_DAYS))
    return Opening(
        opening_id=opening_id,
        employer_id=employer.employer_id,
        version=1,
        organization_name=employer.organization_name,
        employer_approved=employer.approved,
        fields=fields.model_copy(update={"expires_at": expires_at}),
        place=opening_place(fields, zip_place),
        posted_at=now,
        expires_at=expires_at,
        updated_at=now,
    )


def edit_opening(
    opening: Opening,
    fields: OpeningFields,
    *,
    expires_changed: bool,
    zip_place: ZipPlace | None,
    now: datetime,
) -> Opening:
    if not opening.is_open:
        raise ConflictError("a closed opening cannot be edited")
    expires_at = (
        _expiry(fields, now=now, default=opening.expires_at)
        if expires_changed
        else opening.expires_at
    )
    return replace(
        opening,
        version=opening.version + 1,
        fields=fields.model_copy(update={"expires_at": expires_at}),
        place=opening_place(fields, zip_place),
        expires_at=expires_at,
        updated_at=now,
    )


def close_opening(opening: Opening, *, reason: CloseReason, now: datetime) -> Opening:
    if not opening.is_open:
        raise ConflictError("the opening is already closed")
    return replace(
        opening,
        version=opening.version + 1,
        status="closed",
        closed_at=now,
        close_reason=reason,
        updated_at=now,
    )


def take_down(opening: Opening, *, reason: str, now: datetime) -> Opening:
    """An operator takes one opening off the site: closed, with the reason."""
    if not opening.is_open:
        raise ConflictError("the opening is already closed")
    return replace(
        opening,
        version=opening.version + 1,
        status="closed",
        closed_at=now,
        close_reason="taken_down",
        takedown_reason=reason,
        updated_at=now,
    )


def with_employer(opening: Opening, employer: Employer, *, now: datetime) -> Opening:
    """The opening carrying the employer's current name and approval (a new version)."""
    return replace(
        opening,
        version=opening.version + 1,
        organization_name=employer.organization_name,
        employer_approved=employer.approved,
        updated_at=now,
    )


def is_expired(opening: Opening, *, now: datetime) -> bool:
    return opening.is_open and opening.expires_at <= now
