"""What employers send: sign-up, profile changes, openings. Pydantic models whose validation errors
become field-level 422 answers (API) or messages next to the form fields (pages)."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from hwcollab_common.geo import lookup_zip
from hwcollab_employer.password_rules import NewPassword
from hwcollab_schemas import taxonomy

TITLE_MAX = 120
DESCRIPTION_MAX = 5000
EXTERNAL_ID_MAX = 200
# An employer's own reference for an opening (its ATS's requisition id): printable ASCII without
# spaces or slashes, and with a letter or digit (never "." or ".."), so that it can stand in a URL
# path as it is.
EXTERNAL_ID_PATTERN = r"^[!-.0-~]*[A-Za-z0-9][!-.0-~]*$"

_STATE = re.compile(r"^[A-Za-z]{2}$")


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


def _blank_to_none(value: object) -> object:
    if isinstance(value, str) and not value.strip():
        return None
    return _strip(value)


def _no_control_characters(value: str) -> str:
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise ValueError("must not contain control characters")
    return value


def _text_control_characters(value: str) -> str:
    """Free text may have line breaks and tabs, nothing else invisible."""
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\r\t" for ch in value):
        raise ValueError("must not contain control characters")
    return value


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("must be an http:// or https:// address")
    if any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in value):
        raise ValueError("must not contain spaces or control characters")
    return value


def _real_zip(value: str) -> str:
    if not re.fullmatch(r"\d{5}", value):
        raise ValueError("must be a 5-digit US ZIP code")
    if lookup_zip(value) is None:
        raise ValueError("is not a known US ZIP code")
    return value


def _code_of(kind: str, allowed: tuple[str, ...]) -> AfterValidator:
    def check(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"unknown {kind} {value!r}; allowed: {', '.join(allowed)}")
        return value

    return AfterValidator(check)


def _codes_of(kind: str, allowed: tuple[str, ...]) -> AfterValidator:
    def check(values: list[str]) -> list[str]:
        for value in values:
            if value not in allowed:
                raise ValueError(f"unknown {kind} {value!r}; allowed: {', '.join(allowed)}")
        return list(dict.fromkeys(values))

    return AfterValidator(check)


Title = Annotated[
    str,
    BeforeValidator(_strip),
    Field(min_length=1, max_length=TITLE_MAX),
    AfterValidator(_no_control_characters),
]
Name = Annotated[
    str,
    BeforeValidator(_strip),
    Field(min_length=1, max_length=200),
    AfterValidator(_no_control_characters),
]
Description = Annotated[
    str, Field(max_length=DESCRIPTION_MAX), AfterValidator(_text_control_characters)
]
HttpUrl = Annotated[str, BeforeValidator(_strip), Field(max_length=2000), AfterValidator(_http_url)]
OptionalHttpUrl = Annotated[HttpUrl | None, BeforeValidator(_blank_to_none)]
Phone = Annotated[str, Field(max_length=40, pattern=r"^[0-9+()./ x-]*$")]
OptionalPhone = Annotated[Phone | None, BeforeValidator(_blank_to_none)]
Street = Annotated[str, Field(max_length=200), AfterValidator(_no_control_characters)]
RealZip = Annotated[str, BeforeValidator(_strip), AfterValidator(_real_zip)]
RoleCode = Annotated[str, _code_of("role", taxonomy.ROLE_CODES)]
SettingCode = Annotated[str, _code_of("setting", taxonomy.SETTING_CODES)]
EmploymentTypeCode = Annotated[str, _code_of("employment type", taxonomy.EMPLOYMENT_TYPE_CODES)]
SettingCodes = Annotated[list[str], _codes_of("setting", taxonomy.SETTING_CODES)]
ExternalId = Annotated[
    str,
    BeforeValidator(_strip),
    Field(
        min_length=1,
        max_length=EXTERNAL_ID_MAX,
        pattern=EXTERNAL_ID_PATTERN,
        description="Your own reference for the opening (e.g. your ATS's requisition id): "
        "unique among your openings; printable ASCII without spaces or slashes.",
        examples=["REQ-2026-042"],
    ),
]
OptionalExternalId = Annotated[ExternalId | None, BeforeValidator(_blank_to_none)]
CredentialCodes = Annotated[list[str], _codes_of("credential", taxonomy.CREDENTIAL_CODES)]


def _not_boolean(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("must be a number, not true or false")
    return value


# Numbers may come as text (the forms send "38") but never as a JSON boolean.
Pay = Annotated[float, BeforeValidator(_not_boolean), Field(ge=0, le=10_000_000)]


class Address(BaseModel):
    model_config = ConfigDict(extra="forbid")

    street: Annotated[Street | None, BeforeValidator(_blank_to_none)] = None
    city: Annotated[
        str,
        BeforeValidator(_strip),
        Field(min_length=1, max_length=100),
        AfterValidator(_no_control_characters),
    ]
    state: Annotated[str, BeforeValidator(_strip), Field(pattern=_STATE.pattern)]
    zip: RealZip

    @model_validator(mode="after")
    def _upper_state(self) -> Address:
        self.state = self.state.upper()
        return self


class ProfileFields(BaseModel):
    """The editable part of an employer's profile."""

    model_config = ConfigDict(extra="forbid")

    organization_name: Name
    website: OptionalHttpUrl = None
    description: Description = ""
    phone: OptionalPhone = None
    address: Address
    settings: SettingCodes = Field(default_factory=list)


class EmployerSignup(ProfileFields):
    contact_email: EmailStr = Field(max_length=320)
    password: NewPassword


class ProfilePatch(BaseModel):
    """``PATCH /api/employers/me``: any subset of the profile fields."""

    model_config = ConfigDict(extra="forbid")

    organization_name: Name | None = None
    website: OptionalHttpUrl = None
    description: Description | None = None
    phone: OptionalPhone = None
    address: Address | None = None
    settings: SettingCodes | None = None


class Credentials(BaseModel):
    email: Annotated[str, Field(max_length=320)]
    password: Annotated[str, Field(max_length=256)]


LinkToken = Annotated[str, Field(min_length=1, max_length=200, description="The link's `token`")]


class PasswordResetRequest(BaseModel):
    """``POST /api/employers/password-reset``: the contact email of the account."""

    model_config = ConfigDict(extra="forbid")

    email: EmailStr = Field(max_length=320)


class PasswordResetConfirmation(BaseModel):
    """``POST /api/employers/password-reset/confirm``: the emailed link's token and the new
    password."""

    model_config = ConfigDict(extra="forbid")

    token: LinkToken
    password: NewPassword


class PasswordChange(BaseModel):
    """``POST /api/employers/me/password``."""

    model_config = ConfigDict(extra="forbid")

    current_password: Annotated[str, Field(max_length=256)]
    new_password: NewPassword


class EmailChange(BaseModel):
    """``POST /api/employers/me/email``: the new contact email, and the password."""

    model_config = ConfigDict(extra="forbid")

    new_email: EmailStr = Field(max_length=320)
    password: Annotated[str, Field(max_length=256)]


class OpeningFields(BaseModel):
    """An opening as posted (``POST /api/openings``) or as it stands after an edit."""

    model_config = ConfigDict(extra="forbid")

    title: Title
    role: RoleCode
    setting: SettingCode
    required_credentials: CredentialCodes = Field(default_factory=list)
    employment_type: EmploymentTypeCode
    remote: Annotated[bool, Field(strict=True)] = False  # JSON true/false only, never 0 or 1
    zip: Annotated[
        RealZip | None, BeforeValidator(_blank_to_none), Field(validate_default=True)
    ] = None
    pay_min: Pay | None = None
    pay_max: Annotated[Pay | None, Field(validate_default=True)] = None
    pay_period: Literal["hour", "year"] = "hour"
    description: Description = ""
    apply_url: HttpUrl
    expires_at: AwareDatetime | None = None
    external_id: OptionalExternalId = None

    # Field validators (not a model validator) so that the error names the field.
    @field_validator("zip")
    @classmethod
    def _zip_unless_remote(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and not info.data.get("remote", False):
            raise ValueError("a ZIP code is required unless the opening is remote")
        return value

    @field_validator("pay_max")
    @classmethod
    def _pay_range(cls, value: float | None, info: ValidationInfo) -> float | None:
        low = info.data.get("pay_min")
        if value is not None and low is not None and low > value:
            raise ValueError("must be at least the minimum pay")
        return value


class OpeningPatch(BaseModel):
    """``PATCH /api/openings/{id}``: any subset of the opening's fields."""

    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    role: RoleCode | None = None
    setting: SettingCode | None = None
    required_credentials: CredentialCodes | None = None
    employment_type: EmploymentTypeCode | None = None
    remote: Annotated[bool | None, Field(strict=True)] = None
    zip: Annotated[RealZip | None, BeforeValidator(_blank_to_none)] = None
    pay_min: Pay | None = None
    pay_max: Pay | None = None
    pay_period: Literal["hour", "year"] | None = None
    description: Description | None = None
    apply_url: HttpUrl | None = None
    expires_at: AwareDatetime | None = None
    external_id: OptionalExternalId = None


def merge_opening(current: OpeningFields, patch: OpeningPatch) -> OpeningFields:
    """The opening's fields after applying ``patch`` (validated as a whole again)."""
    changes = patch.model_dump(exclude_unset=True)
    return OpeningFields.model_validate({**current.model_dump(), **changes})


def expires_in_range(expires_at: datetime, *, now: datetime, max_days: int) -> str | None:
    """Why ``expires_at`` is not acceptable, or None when it is."""
    if expires_at <= now:
        return "must be in the future"
    if (expires_at - now).total_seconds() > max_days * 86_400:
        return f"must be within {max_days} days"
    return None


ReasonText = Annotated[
    str,
    BeforeValidator(_strip),
    Field(min_length=1, max_length=1000),
    AfterValidator(_text_control_characters),
]


class ModerationReason(BaseModel):
    """Why an operator rejects, suspends or takes down (shown to the employer)."""

    model_config = ConfigDict(extra="forbid")

    reason: ReasonText


class ReinstatementNote(BaseModel):
    """Reinstating needs no reason; one given is shown to the employer."""

    model_config = ConfigDict(extra="forbid")

    reason: Annotated[ReasonText | None, BeforeValidator(_blank_to_none)] = None
