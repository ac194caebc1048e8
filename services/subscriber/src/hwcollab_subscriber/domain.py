"""Subscribers and their preferences: plain data and the rules of the sign-up life cycle. No I/O.

Life cycle (the status stored here; events carry only the statuses the notifier matches on)::

    pending ──confirm──► active ◄──resume/pause──► paused
       ▲                   │  \\                      │
       │ sign up again     │   └─ permanent bounce ─► bounced
       └── unsubscribed ◄──┴──── unsubscribe ─────────┘

Engagement and sunsetting: a click through the redirect of an alert sets ``last_engaged_at``. An
active subscriber silent for ``SUNSET_AFTER_DAYS`` (counted from their last click, their last
"keep me subscribed" or resume, or else their confirmation) is asked once whether to keep their
alerts (``sunset_notice_at``); one who does not answer within ``SUNSET_GRACE_DAYS`` is paused
with ``paused_reason`` "inactive". A click, a keep, a saved preferences page or a resume clears
the notice; a keep or a resume also ends a pause for inactivity.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from hwcollab_common.emails import InvalidEmailError, email_key, normalize_email
from hwcollab_common.geo import ZipPlace, lookup_zip
from hwcollab_schemas import taxonomy
from hwcollab_schemas.events import SubscriberProfile
from hwcollab_schemas.taxonomy import Frequency, Weekday

Status = Literal["pending", "active", "paused", "unsubscribed", "bounced"]
PausedReason = Literal["inactive"]

# A pending address gets at most one confirmation email per window, however often it signs up;
# an active one at most one "manage your preferences" email per window.
DEFAULT_RESEND_WINDOW = timedelta(minutes=10)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _unique(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def _check(kind: str, values: tuple[str, ...], allowed: tuple[str, ...]) -> tuple[str, ...]:
    values = _unique(tuple(v.strip() for v in values if v.strip()))
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise ValueError(
            f"unknown {kind} {', '.join(map(repr, unknown))}; allowed: {', '.join(allowed)}"
        )
    return values


def _not_boolean(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("must be a number, not true or false")
    return value


# Numbers may come as text (the forms send "25") but never as a JSON boolean.
NotBoolean = BeforeValidator(_not_boolean)


class Preferences(BaseModel):
    """What a subscriber chooses: everything but the address. Validated as SPEC section 6 says."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    first_name: Annotated[str, Field(max_length=100)] | None = None
    roles: tuple[str, ...] = Field(
        min_length=1,
        description="Role or family codes from GET /api/taxonomy; a family means all its roles.",
    )
    settings: tuple[str, ...] = Field(default=(), description="Setting codes; empty means any.")
    credentials: tuple[str, ...] = Field(default=(), description="Credentials held.")
    employment_types: tuple[str, ...] = Field(default=(), description="Empty means any.")
    zip: Annotated[str, Field(description="A real US 5-digit ZIP code.")]
    radius_miles: Annotated[int, NotBoolean, Field(ge=1, le=250)] = 25
    # Booleans are JSON true/false only (never 0, 1 or "yes"); the forms send real booleans.
    remote_ok: Annotated[bool, Field(strict=True)] = True
    frequency: Frequency = "immediate"
    digest_hour: Annotated[
        int, NotBoolean, Field(ge=0, le=23, description="Local hour for digests.")
    ] = 8
    digest_weekday: Weekday = "mon"
    min_pay_hourly: Annotated[float, NotBoolean, Field(gt=0, le=1000)] | None = None
    career_info: Annotated[bool, Field(strict=True)] = False

    @field_validator("first_name")
    @classmethod
    def _clean_name(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = _CONTROL.sub(" ", value).strip()
        return value or None

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        roles = _check("role", value, (*taxonomy.FAMILY_CODES, *taxonomy.ROLE_CODES))
        if not roles:
            raise ValueError("choose at least one role or family")
        return roles

    @field_validator("settings")
    @classmethod
    def _known_settings(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check("setting", value, taxonomy.SETTING_CODES)

    @field_validator("credentials")
    @classmethod
    def _known_credentials(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check("credential", value, taxonomy.CREDENTIAL_CODES)

    @field_validator("employment_types")
    @classmethod
    def _known_employment_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check("employment type", value, taxonomy.EMPLOYMENT_TYPE_CODES)

    @field_validator("zip")
    @classmethod
    def _real_zip(cls, value: str) -> str:
        if not re.fullmatch(r"\d{5}", value):
            raise ValueError("enter a 5-digit US ZIP code")
        if lookup_zip(value) is None:
            raise ValueError(f"{value} is not a US ZIP code we know")
        return value

    def place(self) -> ZipPlace:
        place = lookup_zip(self.zip)
        if place is None:  # validated above; the ZIP table does not change at run time
            raise ValueError(f"unknown ZIP {self.zip}")
        return place


class SignUp(Preferences):
    """A sign-up: preferences plus the address to confirm."""

    email: Annotated[str, Field(max_length=320, description="Checked for syntax only.")]

    @field_validator("email")
    @classmethod
    def _valid_email(cls, value: str) -> str:
        try:
            return normalize_email(value)
        except InvalidEmailError as error:
            raise ValueError(str(error)) from error

    def preferences(self) -> Preferences:
        return Preferences.model_validate(self.model_dump(exclude={"email"}))


class PreferencesChange(Preferences):
    """A full replacement of the preferences, plus whether mail is paused."""

    paused: Annotated[bool, Field(strict=True)] = False

    def preferences(self) -> Preferences:
        return Preferences.model_validate(self.model_dump(exclude={"paused"}))


@dataclass(frozen=True, slots=True)
class Subscriber:
    subscriber_id: str
    email: str
    preferences: Preferences
    status: Status
    version: int
    created_at: datetime
    updated_at: datetime
    confirmed_at: datetime | None = None
    confirmation_sent_at: datetime | None = None
    manage_link_sent_at: datetime | None = None
    last_engaged_at: datetime | None = None
    """The last click through the redirect of one of our alert emails."""
    kept_at: datetime | None = None
    """The last "keep me subscribed", resume or saved preferences page."""
    sunset_notice_at: datetime | None = None
    """When the "still interested?" email was asked for; None when none is pending."""
    paused_reason: PausedReason | None = None
    """Why the service (not the subscriber) paused the alerts."""

    @property
    def email_key(self) -> str:
        return email_key(self.email)

    @property
    def first_name(self) -> str | None:
        return self.preferences.first_name

    def changed(self, *, now: datetime, **changes: Any) -> Subscriber:
        """A copy with ``changes`` applied, one version later."""
        return replace(self, version=self.version + 1, updated_at=now, **changes)

    def may_resend(self, sent_at: datetime | None, *, now: datetime, window: timedelta) -> bool:
        return sent_at is None or now - sent_at >= window

    @property
    def paused_for_inactivity(self) -> bool:
        return self.status == "paused" and self.paused_reason == "inactive"

    @property
    def last_sign_of_interest(self) -> datetime | None:
        """The latest of the confirmation, the last click and the last keep (or resume)."""
        moments = [m for m in (self.confirmed_at, self.last_engaged_at, self.kept_at) if m]
        return max(moments) if moments else None

    def is_silent(self, *, now: datetime, after: timedelta) -> bool:
        """Active, not yet asked, and no sign of interest for ``after``."""
        last = self.last_sign_of_interest
        return (
            self.status == "active"
            and self.sunset_notice_at is None
            and last is not None
            and last <= now - after
        )

    def notice_unanswered(self, *, now: datetime, grace: timedelta) -> bool:
        """Asked "still interested?" at least ``grace`` ago and still active without answering."""
        return (
            self.status == "active"
            and self.sunset_notice_at is not None
            and self.sunset_notice_at <= now - grace
        )

    def interest_changes(self, *, now: datetime) -> dict[str, Any]:
        """What showing interest changes: no notice pending, and a pause for inactivity ends."""
        changes: dict[str, Any] = {"sunset_notice_at": None, "kept_at": now}
        if self.paused_for_inactivity:
            changes |= {"status": "active", "paused_reason": None}
        return changes

    @property
    def awaits_answer(self) -> bool:
        """Asked "still interested?" and not answered yet, or paused for not answering."""
        return self.sunset_notice_at is not None or self.paused_for_inactivity


def new_subscriber(
    *, subscriber_id: str, sign_up: SignUp, now: datetime, status: Status = "pending"
) -> Subscriber:
    return Subscriber(
        subscriber_id=subscriber_id,
        email=sign_up.email,
        preferences=sign_up.preferences(),
        status=status,
        version=1,
        created_at=now,
        updated_at=now,
        confirmation_sent_at=now,
    )


def profile(subscriber: Subscriber) -> SubscriberProfile:
    """The matching profile published on ``subscriber.registered`` / ``subscriber.updated``."""
    if subscriber.status not in ("active", "paused", "bounced") or subscriber.confirmed_at is None:
        raise ValueError(f"a {subscriber.status} subscriber has no published profile")
    prefs = subscriber.preferences
    place = prefs.place()
    return SubscriberProfile(
        subscriber_id=subscriber.subscriber_id,
        version=subscriber.version,
        email=subscriber.email,
        first_name=prefs.first_name,
        roles=prefs.roles,
        settings=prefs.settings,
        credentials=prefs.credentials,
        employment_types=prefs.employment_types,
        zip=prefs.zip,
        city=place.city,
        state=place.state,
        lat=place.lat,
        lon=place.lon,
        timezone=place.timezone,
        radius_miles=prefs.radius_miles,
        remote_ok=prefs.remote_ok,
        frequency=prefs.frequency,
        digest_hour=prefs.digest_hour,
        digest_weekday=prefs.digest_weekday,
        min_pay_hourly=prefs.min_pay_hourly,
        career_info=prefs.career_info,
        status=subscriber.status,
        confirmed_at=subscriber.confirmed_at,
    )
