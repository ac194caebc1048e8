"""Estimated reach of an opening being written: what the employer service asks the notifier
(``ReachQuery``), what the notifier answers (``ReachCounts``, exact, internal only), and what an
employer may see of it (``ReachEstimate``, rounded by :func:`public_estimate`).

Not an event of SPEC section 5: a request/reply between the two services over the notifier's
internal endpoint. The privacy rules live here, in pure functions, so that the employer service
applies them and the tests can check them against the notifier's own matcher.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hwcollab_schemas import taxonomy
from hwcollab_schemas.events import (
    CredentialCodes,
    EmploymentTypeCode,
    Latitude,
    Longitude,
    OpeningDetails,
    RoleCode,
    SettingCode,
)

SMALLEST_SHOWN = 10
"""Counts below this are shown as "fewer than 10", never as a number."""
CUT_SHARE_STEP = 10
"""Shares of the audience a criterion leaves out are shown in steps of this many percent."""
MAX_CUTS_SHOWN = 2

Criterion = Literal["credential", "setting", "employment_type", "pay", "on_site"]


class ReachQuery(BaseModel):
    """An opening as the match rule sees it (SPEC section 3, items 2–7)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: RoleCode
    setting: SettingCode
    required_credentials: CredentialCodes = ()
    employment_type: EmploymentTypeCode
    remote: bool = False
    lat: Latitude | None = None
    lon: Longitude | None = None
    pay_max_hourly: Annotated[float, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _place_or_remote(self) -> ReachQuery:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon are given together or not at all")
        if not self.remote and self.lat is None:
            raise ValueError("an opening that is not remote needs lat and lon")
        return self

    @classmethod
    def of(cls, details: OpeningDetails) -> ReachQuery:
        """The query for an opening as it would be posted (the same payload the event carries)."""
        return cls(
            role=details.role,
            setting=details.setting,
            required_credentials=details.required_credentials,
            employment_type=details.employment_type,
            remote=details.remote,
            lat=details.lat,
            lon=details.lon,
            pay_max_hourly=details.pay_max_hourly(),
        )


class Relaxed(BaseModel):
    """How many active subscribers the opening would reach with one criterion relaxed."""

    model_config = ConfigDict(frozen=True)

    criterion: Criterion
    code: str | None = None
    """The credential that is no longer required (``criterion = credential``)."""
    subscribers: Annotated[int, Field(ge=0)]


class ReachCounts(BaseModel):
    """Exact counts from the notifier's match index; never shown to an employer as they are."""

    model_config = ConfigDict(frozen=True)

    subscribers: Annotated[int, Field(ge=0)]
    immediate: Annotated[int, Field(ge=0)]
    digest: Annotated[int, Field(ge=0)]
    relaxed: tuple[Relaxed, ...] = ()


def round_count(count: int) -> int | None:
    """A count as an employer may see it: None ("fewer than 10") below 10, else rounded to two
    significant figures (half up): 10–99 as they are, 1,234 → 1,200, 995 → 1,000."""
    if count < SMALLEST_SHOWN:
        return None
    step: int = 10 ** max(len(str(count)) - 2, 0)
    return (count + step // 2) // step * step


def count_text(rounded: int | None) -> str:
    return "fewer than 10" if rounded is None else f"{rounded:,}"


class Cut(BaseModel):
    """A criterion that leaves out a share of the people the opening would otherwise reach."""

    model_config = ConfigDict(frozen=True)

    criterion: Criterion
    code: str | None = None
    label: str
    """What the employer chose, e.g. "requiring Certified Case Manager (CCM)"."""
    leaves_out_percent: Annotated[int, Field(ge=0, le=100)]
    text: str


class ReachEstimate(BaseModel):
    """``POST /api/openings/estimate``: estimated reach now, rounded so that nobody stands out."""

    model_config = ConfigDict(frozen=True)

    subscribers: int | None = Field(
        description="Active subscribers the opening would reach now; null means fewer than 10. "
        "Two significant figures."
    )
    immediate: int | None = Field(
        description="Of them, emailed at once; null when this or the digest part is fewer than 10."
    )
    digest: int | None = Field(
        description="Of them, in their next digest; null when this or the immediate part is "
        "fewer than 10."
    )
    cuts: tuple[Cut, ...] = Field(
        default=(),
        description="The one or two criteria that leave out most people, when each is based on "
        "at least 10 people.",
    )
    text: str


def _label(relaxed: Relaxed) -> str:
    if relaxed.criterion == "credential":
        titles = {term.code: term.title for term in taxonomy.CREDENTIAL_TERMS}
        return f"requiring {titles.get(relaxed.code or '', relaxed.code)}"
    return {
        "setting": "the setting you chose",
        "employment_type": "the employment type you chose",
        "pay": "the pay you state",
        "on_site": "working on site only",
        "credential": "",
    }[relaxed.criterion]


def cut_of(relaxed: Relaxed, *, reached: int) -> Cut | None:
    """What relaxing a criterion tells, or None when it could single anyone out.

    Shown only when the people reached and the people the criterion leaves out are both at
    least 10, in steps of 10 %: a share is never a ratio involving fewer than 10 people, so it
    cannot be turned back into a count that :func:`round_count` hides.
    """
    left_out = relaxed.subscribers - reached
    if reached < SMALLEST_SHOWN or left_out < SMALLEST_SHOWN:
        return None
    percent = round(100 * left_out / relaxed.subscribers / CUT_SHARE_STEP) * CUT_SHARE_STEP
    if percent == 0:
        return None
    label = _label(relaxed)
    return Cut(
        criterion=relaxed.criterion,
        code=relaxed.code,
        label=label,
        leaves_out_percent=percent,
        text=f"{label[0].upper()}{label[1:]} leaves out {percent} %",
    )


def public_estimate(counts: ReachCounts) -> ReachEstimate:
    """The estimate an employer sees: every number rounded (:func:`round_count`), every share
    based on at least 10 people (:func:`cut_of`), at most two shares, largest first.

    The split into immediate and digest is given only when both parts are at least 10: from a
    total of 10–99 (shown exactly) and one part, the other could be worked out.
    """
    total = round_count(counts.subscribers)
    immediate = round_count(counts.immediate)
    digest = round_count(counts.digest)
    if immediate is None or digest is None:
        immediate = digest = None
    cuts = [c for r in counts.relaxed if (c := cut_of(r, reached=counts.subscribers)) is not None]
    cuts.sort(key=lambda cut: -cut.leaves_out_percent)
    if total is None:
        text = "Fewer than 10 active subscribers would be emailed now."
    elif immediate is not None:
        text = (
            f"About {count_text(total)} active subscribers would be emailed now, "
            f"{count_text(immediate)} of them at once and the rest in their digest."
        )
    else:
        most = "at once" if counts.immediate >= counts.digest else "in their digest"
        text = (
            f"About {count_text(total)} active subscribers would be emailed now, "
            f"nearly all of them {most}."
        )
    return ReachEstimate(
        subscribers=total,
        immediate=immediate,
        digest=digest,
        cuts=tuple(cuts[:MAX_CUTS_SHOWN]),
        text=text,
    )
