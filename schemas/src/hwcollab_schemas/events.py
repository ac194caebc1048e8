"""Typed payloads and event classes for every event type of SPEC section 5.

Every aggregate payload carries a ``version`` that its owning service increments on each change, so
that consumers can drop stale or repeated events that arrive out of order.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, AwareDatetime, Field, model_validator

from hwcollab_schemas import taxonomy
from hwcollab_schemas.envelope import Event, Payload
from hwcollab_schemas.taxonomy import Frequency, PayPeriod, Weekday
from hwcollab_schemas.topics import (
    EMPLOYER_TOPIC,
    NOTIFICATION_TOPIC,
    OPENING_TOPIC,
    SUBSCRIBER_TOPIC,
)


def _codes(kind: str, allowed: tuple[str, ...]) -> AfterValidator:
    def check(values: tuple[str, ...]) -> tuple[str, ...]:
        taxonomy.check_codes(kind, values, allowed)
        return values

    return AfterValidator(check)


def _code(kind: str, allowed: tuple[str, ...]) -> AfterValidator:
    def check(value: str) -> str:
        taxonomy.check_codes(kind, (value,), allowed)
        return value

    return AfterValidator(check)


RoleOrFamilyCodes = Annotated[
    tuple[str, ...], _codes("role", (*taxonomy.ROLE_CODES, *taxonomy.FAMILY_CODES))
]
RoleCode = Annotated[str, _code("role", taxonomy.ROLE_CODES)]
SettingCode = Annotated[str, _code("setting", taxonomy.SETTING_CODES)]
SettingCodes = Annotated[tuple[str, ...], _codes("setting", taxonomy.SETTING_CODES)]
CredentialCodes = Annotated[tuple[str, ...], _codes("credential", taxonomy.CREDENTIAL_CODES)]
EmploymentTypeCode = Annotated[str, _code("employment type", taxonomy.EMPLOYMENT_TYPE_CODES)]
EmploymentTypeCodes = Annotated[
    tuple[str, ...], _codes("employment type", taxonomy.EMPLOYMENT_TYPE_CODES)
]
Id = Annotated[str, Field(min_length=1, max_length=64)]
Version = Annotated[int, Field(ge=1)]
Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]
Zip = Annotated[str, Field(pattern=r"^\d{5}$")]

SubscriberStatus = Literal["active", "paused", "bounced"]
EmployerStatus = Literal["pending", "approved", "suspended", "rejected"]
OpeningStatus = Literal["open", "closed"]
AccountEmailKind = Literal[
    "verify_signup",
    "already_registered",
    "password_reset",
    "email_change_confirm",
    "email_change_notice",
]
ACCOUNT_EMAIL_KINDS: tuple[AccountEmailKind, ...] = get_args(AccountEmailKind)
ACCOUNT_LINK_KINDS: frozenset[str] = frozenset(
    {"verify_signup", "password_reset", "email_change_confirm"}
)
"""The account emails that carry a link of their own (the others point at the sign-in page)."""
NotificationKind = Literal[
    "immediate",
    "digest",
    "welcome",
    "confirmation",
    "manage_link",
    "bulletin",
    "still_interested",
    "employer_verify_signup",
    "employer_already_registered",
    "employer_password_reset",
    "employer_email_change_confirm",
    "employer_email_change_notice",
]


# --- subscriber.v1 -------------------------------------------------------------------------------


class SubscriberProfile(Payload):
    """Everything the notifier needs to match a subscriber and to write to them."""

    subscriber_id: Id
    version: Version
    email: Annotated[str, Field(min_length=3, max_length=320)]
    first_name: Annotated[str, Field(max_length=100)] | None = None
    roles: RoleOrFamilyCodes = Field(min_length=1)
    settings: SettingCodes = ()
    credentials: CredentialCodes = ()
    employment_types: EmploymentTypeCodes = ()
    zip: Zip
    city: str | None = None
    state: str | None = None
    lat: Latitude
    lon: Longitude
    timezone: Annotated[str, Field(min_length=1, max_length=64)]
    radius_miles: Annotated[int, Field(ge=1, le=250)] = 25
    remote_ok: bool = True
    frequency: Frequency = "immediate"
    digest_hour: Annotated[int, Field(ge=0, le=23)] = 8
    digest_weekday: Weekday = "mon"
    min_pay_hourly: Annotated[float, Field(gt=0, le=1000)] | None = None
    career_info: bool = False
    status: SubscriberStatus = "active"
    confirmed_at: AwareDatetime


class SubscriberUnsubscribedPayload(Payload):
    subscriber_id: Id
    version: Version
    reason: Literal["one_click", "page", "preferences", "bounce", "complaint"] = "one_click"


class SubscriberDeletedPayload(Payload):
    subscriber_id: Id
    version: Version


class ConfirmationRequestedPayload(Payload):
    """A new or pending sign-up: the notifier mails the double opt-in link."""

    subscriber_id: Id
    email: Annotated[str, Field(min_length=3, max_length=320)]
    first_name: Annotated[str, Field(max_length=100)] | None = None
    confirm_url: Annotated[str, Field(pattern=r"^https?://", max_length=2000)]


class ManageLinkRequestedPayload(Payload):
    """Someone asked for their preferences link, or signed up again with an active address, or
    (``still_interested``) has not opened a job from our emails for a long time and is asked
    once whether to keep them coming (``keep_url``: the one-click "keep me subscribed" page)."""

    subscriber_id: Id
    email: Annotated[str, Field(min_length=3, max_length=320)]
    first_name: Annotated[str, Field(max_length=100)] | None = None
    manage_url: Annotated[str, Field(pattern=r"^https?://", max_length=2000)]
    reason: Literal["requested", "already_subscribed", "still_interested"] = "requested"
    keep_url: Annotated[str, Field(pattern=r"^https?://", max_length=2000)] | None = None
    pause_after: AwareDatetime | None = None
    """With ``still_interested``: when mail pauses unless the reader keeps it."""


class SubscriberRegistered(Event):
    TOPIC = SUBSCRIBER_TOPIC
    KEY_FIELD = "subscriber_id"
    event_type: Literal["subscriber.registered"] = "subscriber.registered"
    payload: SubscriberProfile


class SubscriberUpdated(Event):
    TOPIC = SUBSCRIBER_TOPIC
    KEY_FIELD = "subscriber_id"
    event_type: Literal["subscriber.updated"] = "subscriber.updated"
    payload: SubscriberProfile


class SubscriberUnsubscribed(Event):
    TOPIC = SUBSCRIBER_TOPIC
    KEY_FIELD = "subscriber_id"
    event_type: Literal["subscriber.unsubscribed"] = "subscriber.unsubscribed"
    payload: SubscriberUnsubscribedPayload


class SubscriberDeleted(Event):
    TOPIC = SUBSCRIBER_TOPIC
    KEY_FIELD = "subscriber_id"
    event_type: Literal["subscriber.deleted"] = "subscriber.deleted"
    payload: SubscriberDeletedPayload


class SubscriberConfirmationRequested(Event):
    TOPIC = SUBSCRIBER_TOPIC
    KEY_FIELD = "subscriber_id"
    event_type: Literal["subscriber.confirmation_requested"] = "subscriber.confirmation_requested"
    payload: ConfirmationRequestedPayload


class SubscriberManageLinkRequested(Event):
    TOPIC = SUBSCRIBER_TOPIC
    KEY_FIELD = "subscriber_id"
    event_type: Literal["subscriber.manage_link_requested"] = "subscriber.manage_link_requested"
    payload: ManageLinkRequestedPayload


# --- employer.v1 ---------------------------------------------------------------------------------


class EmployerProfile(Payload):
    employer_id: Id
    version: Version
    organization_name: Annotated[str, Field(min_length=1, max_length=200)]
    website: str | None = None
    description: Annotated[str, Field(max_length=5000)] | None = None
    city: str
    state: Annotated[str, Field(min_length=2, max_length=2)]
    zip: Zip
    lat: Latitude
    lon: Longitude
    settings: SettingCodes = ()
    status: EmployerStatus


class EmployerRegistered(Event):
    TOPIC = EMPLOYER_TOPIC
    KEY_FIELD = "employer_id"
    event_type: Literal["employer.registered"] = "employer.registered"
    payload: EmployerProfile


class EmployerUpdated(Event):
    TOPIC = EMPLOYER_TOPIC
    KEY_FIELD = "employer_id"
    event_type: Literal["employer.updated"] = "employer.updated"
    payload: EmployerProfile


class EmployerApproved(Event):
    TOPIC = EMPLOYER_TOPIC
    KEY_FIELD = "employer_id"
    event_type: Literal["employer.approved"] = "employer.approved"
    payload: EmployerProfile


ModerationReason = Annotated[str, Field(min_length=1, max_length=1000)]


class EmployerModeration(EmployerProfile):
    """An operator's decision on an employer: its profile as it now stands, and why (the
    employer is shown the reason)."""

    reason: ModerationReason | None = None


class EmployerRejected(Event):
    """A pending sign-up refused: the employer is never listed and its openings never sent."""

    TOPIC = EMPLOYER_TOPIC
    KEY_FIELD = "employer_id"
    event_type: Literal["employer.rejected"] = "employer.rejected"
    payload: EmployerModeration


class EmployerSuspended(Event):
    """An approved employer taken off the site: its openings stop being announced at once,
    including emails already queued and digests already formed."""

    TOPIC = EMPLOYER_TOPIC
    KEY_FIELD = "employer_id"
    event_type: Literal["employer.suspended"] = "employer.suspended"
    payload: EmployerModeration


class EmployerReinstated(Event):
    """A suspended employer approved again; nobody already told of an opening is told again."""

    TOPIC = EMPLOYER_TOPIC
    KEY_FIELD = "employer_id"
    event_type: Literal["employer.reinstated"] = "employer.reinstated"
    payload: EmployerModeration


class AccountEmailRequestedPayload(Payload):
    """An email about an employer's account that the notifier sends (the employer service sends
    none itself): the sign-up's verification link, the "you already have an account" answer to a
    sign-up with a taken address, a password reset link, the link that confirms a new contact
    email, and the notice of that change to the old address."""

    employer_id: Id
    email: Annotated[str, Field(min_length=3, max_length=320)]
    """The address to write to (for ``email_change_confirm`` the new one, for
    ``email_change_notice`` the old one)."""
    organization_name: Annotated[str, Field(min_length=1, max_length=200)]
    kind: AccountEmailKind
    url: Annotated[str, Field(pattern=r"^https?://", max_length=2000)] | None = None
    """The link of ``verify_signup``, ``password_reset`` and ``email_change_confirm``."""
    expires_at: AwareDatetime | None = None
    """When the link stops working: an email not sent by then is dropped, never sent late."""

    @model_validator(mode="after")
    def _link_when_the_kind_has_one(self) -> AccountEmailRequestedPayload:
        if (self.kind in ACCOUNT_LINK_KINDS) != (self.url is not None):
            raise ValueError(
                f"url is required for {', '.join(sorted(ACCOUNT_LINK_KINDS))} and only for them"
            )
        return self


class EmployerAccountEmailRequested(Event):
    """``employer.account_email_requested``: the notifier sends one account email (claimed,
    retried, DKIM-signed like the subscribers' link emails); other consumers ignore it."""

    TOPIC = EMPLOYER_TOPIC
    KEY_FIELD = "employer_id"
    event_type: Literal["employer.account_email_requested"] = "employer.account_email_requested"
    payload: AccountEmailRequestedPayload


# --- opening.v1 ----------------------------------------------------------------------------------


class OpeningDetails(Payload):
    """An opening as the notifier needs it to match and to write the email."""

    opening_id: Id
    employer_id: Id
    version: Version
    organization_name: Annotated[str, Field(min_length=1, max_length=200)]
    employer_approved: bool
    title: Annotated[str, Field(min_length=1, max_length=120)]
    role: RoleCode
    setting: SettingCode
    required_credentials: CredentialCodes = ()
    employment_type: EmploymentTypeCode
    remote: bool = False
    zip: Zip | None = None
    city: str | None = None
    state: str | None = None
    lat: Latitude | None = None
    lon: Longitude | None = None
    pay_min: Annotated[float, Field(ge=0)] | None = None
    pay_max: Annotated[float, Field(ge=0)] | None = None
    pay_period: PayPeriod = "hour"
    description: Annotated[str, Field(max_length=5000)] = ""
    apply_url: Annotated[str, Field(pattern=r"^https?://", max_length=2000)]
    posted_at: AwareDatetime
    expires_at: AwareDatetime
    status: OpeningStatus = "open"

    @model_validator(mode="after")
    def _place_or_remote(self) -> OpeningDetails:
        if not self.remote and (self.lat is None or self.lon is None or self.zip is None):
            raise ValueError("an opening that is not remote needs zip, lat and lon")
        if self.pay_min is not None and self.pay_max is not None and self.pay_min > self.pay_max:
            raise ValueError("pay_min must not exceed pay_max")
        return self

    def pay_max_hourly(self) -> float | None:
        """The stated maximum pay per hour (2080 h a year), or None when pay is not stated."""
        top = self.pay_max if self.pay_max is not None else self.pay_min
        if top is None:
            return None
        return top / taxonomy.HOURS_PER_YEAR if self.pay_period == "year" else top


class OpeningClosedPayload(Payload):
    opening_id: Id
    employer_id: Id
    version: Version
    reason: Literal["closed", "expired"] = "closed"
    closed_at: AwareDatetime


class OpeningTakenDownPayload(Payload):
    opening_id: Id
    employer_id: Id
    version: Version
    reason: ModerationReason
    taken_down_at: AwareDatetime


class OpeningPosted(Event):
    TOPIC = OPENING_TOPIC
    KEY_FIELD = "opening_id"
    event_type: Literal["opening.posted"] = "opening.posted"
    payload: OpeningDetails


class OpeningUpdated(Event):
    TOPIC = OPENING_TOPIC
    KEY_FIELD = "opening_id"
    event_type: Literal["opening.updated"] = "opening.updated"
    payload: OpeningDetails


class OpeningClosed(Event):
    TOPIC = OPENING_TOPIC
    KEY_FIELD = "opening_id"
    event_type: Literal["opening.closed"] = "opening.closed"
    payload: OpeningClosedPayload


class OpeningTakenDown(Event):
    """An operator took one opening off the site: consumers treat it as closed."""

    TOPIC = OPENING_TOPIC
    KEY_FIELD = "opening_id"
    event_type: Literal["opening.taken_down"] = "opening.taken_down"
    payload: OpeningTakenDownPayload


# --- notification.v1 -----------------------------------------------------------------------------


class NotificationSentPayload(Payload):
    message_id: Annotated[str, Field(min_length=1, max_length=300)]
    subscriber_id: Id
    kind: NotificationKind
    opening_ids: tuple[str, ...] = ()
    sent_at: AwareDatetime


class NotificationFailedPayload(Payload):
    message_id: Annotated[str, Field(min_length=1, max_length=300)]
    subscriber_id: Id
    kind: NotificationKind
    opening_ids: tuple[str, ...] = ()
    permanent: bool
    reason: Annotated[str, Field(max_length=1000)]
    failed_at: AwareDatetime


class NotificationComplainedPayload(Payload):
    """The recipient of one email reported it as spam (an ARF report from their mailbox
    provider): they must get nothing more."""

    message_id: Annotated[str, Field(min_length=1, max_length=300)]
    subscriber_id: Id
    kind: NotificationKind
    feedback_type: Annotated[str, Field(min_length=1, max_length=100)]
    complained_at: AwareDatetime


class NotificationBatchSentPayload(Payload):
    """Every email of one delivery batch that the SMTP server accepted: one record for a few
    hundred emails instead of one each. Each item means what one ``notification.sent`` means."""

    batch_id: Id
    sent: Annotated[tuple[NotificationSentPayload, ...], Field(min_length=1, max_length=1000)]


class NotificationSent(Event):
    TOPIC = NOTIFICATION_TOPIC
    KEY_FIELD = "subscriber_id"
    event_type: Literal["notification.sent"] = "notification.sent"
    payload: NotificationSentPayload


class NotificationBatchSent(Event):
    """``notification.batch_sent``: what the notifier publishes for a batch of accepted emails
    (consumers treat each item as a ``notification.sent``); keyed by the batch id."""

    TOPIC = NOTIFICATION_TOPIC
    KEY_FIELD = "batch_id"
    event_type: Literal["notification.batch_sent"] = "notification.batch_sent"
    payload: NotificationBatchSentPayload


class NotificationFailed(Event):
    TOPIC = NOTIFICATION_TOPIC
    KEY_FIELD = "subscriber_id"
    event_type: Literal["notification.failed"] = "notification.failed"
    payload: NotificationFailedPayload


class NotificationComplained(Event):
    """``notification.complained``: the subscriber service unsubscribes the person."""

    TOPIC = NOTIFICATION_TOPIC
    KEY_FIELD = "subscriber_id"
    event_type: Literal["notification.complained"] = "notification.complained"
    payload: NotificationComplainedPayload


SubscriberEvent = (
    SubscriberRegistered
    | SubscriberUpdated
    | SubscriberUnsubscribed
    | SubscriberDeleted
    | SubscriberConfirmationRequested
    | SubscriberManageLinkRequested
)
EmployerEvent = EmployerRegistered | EmployerUpdated | EmployerApproved
OpeningEvent = OpeningPosted | OpeningUpdated | OpeningClosed
NotificationEvent = (
    NotificationSent | NotificationBatchSent | NotificationFailed | NotificationComplained
)

EVENT_CLASSES: tuple[type[Event], ...] = (
    SubscriberRegistered,
    SubscriberUpdated,
    SubscriberUnsubscribed,
    SubscriberDeleted,
    SubscriberConfirmationRequested,
    SubscriberManageLinkRequested,
    EmployerRegistered,
    EmployerUpdated,
    EmployerApproved,
    EmployerRejected,
    EmployerSuspended,
    EmployerReinstated,
    EmployerAccountEmailRequested,
    OpeningPosted,
    OpeningUpdated,
    OpeningClosed,
    OpeningTakenDown,
    NotificationSent,
    NotificationBatchSent,
    NotificationFailed,
    NotificationComplained,
)
