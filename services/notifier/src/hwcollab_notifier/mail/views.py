"""Plain data that the email templates render: an opening as a reader sees it, and a recipient."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from hwcollab_schemas import taxonomy
from hwcollab_schemas.events import OpeningDetails
from hwcollab_schemas.taxonomy import pay_label

SUMMARY_CHARS = 300
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class OpeningView:
    """One opening, with every value already formatted for display (templates do no arithmetic)."""

    opening_id: str
    title: str
    organization_name: str
    place: str
    """"Worcester, MA" or "Remote"."""
    distance_miles: float | None
    pay: str | None
    """"$38–$45 an hour", "$80,000–$95,000 a year", or None when the opening states no pay."""
    employment_type: str
    setting: str
    summary: str
    """The description shortened to about 300 characters on a word boundary."""
    apply_url: str
    details_url: str
    why: str
    """Why this opening reached the reader: "Nurse Care Manager · 12 miles from 01608 · …"."""

    @property
    def distance_label(self) -> str | None:
        """ "12 miles away", "1 mile away", "less than a mile away", or None (remote/unknown)."""
        return distance_label(self.distance_miles)

    @classmethod
    def from_details(
        cls,
        details: OpeningDetails,
        *,
        distance_miles: float | None,
        employer_public_url: str,
        subscriber_zip: str | None = None,
        subscriber_credentials: Collection[str] = (),
    ) -> OpeningView:
        """Format an opening for one reader (distance and the "why" line depend on them)."""
        return cls(
            opening_id=details.opening_id,
            title=details.title,
            organization_name=details.organization_name,
            place=place_label(details),
            distance_miles=None if details.remote else distance_miles,
            pay=pay_label(
                pay_min=details.pay_min, pay_max=details.pay_max, period=details.pay_period
            ),
            employment_type=_term(taxonomy.EMPLOYMENT_TYPES, details.employment_type),
            setting=_term(taxonomy.SETTINGS, details.setting),
            summary=summarize(details.description),
            apply_url=details.apply_url,
            details_url=f"{employer_public_url.rstrip('/')}/openings/{details.opening_id}",
            why=why_line(
                details,
                distance_miles=distance_miles,
                subscriber_zip=subscriber_zip,
                subscriber_credentials=subscriber_credentials,
            ),
        )


@dataclass(frozen=True, slots=True)
class Recipient:
    """Who an email goes to, with their signed links (built by the notifier with its LinkSigner)."""

    subscriber_id: str
    email: str
    first_name: str | None
    manage_url: str
    unsubscribe_url: str
    pause_url: str


def _term(terms: dict[str, taxonomy.Term], code: str) -> str:
    term = terms.get(code)
    return term.title if term is not None else code.replace("_", " ").capitalize()


def place_label(details: OpeningDetails) -> str:
    """ "Remote", "Worcester, MA", or the ZIP code when the city is not known."""
    if details.remote:
        return "Remote"
    if details.city and details.state:
        return f"{details.city}, {details.state}"
    return details.city or details.zip or ""


def distance_label(miles: float | None) -> str | None:
    if miles is None:
        return None
    if miles < 1:
        return "less than a mile away"
    rounded = round(miles)
    return "1 mile away" if rounded == 1 else f"{rounded} miles away"


def summarize(text: str, *, limit: int = SUMMARY_CHARS) -> str:
    """Collapse whitespace and cut to at most ``limit`` characters on a word boundary, with "…"."""
    flat = _SPACE.sub(" ", text).strip()
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-–—") + "…"


def why_line(
    details: OpeningDetails,
    *,
    distance_miles: float | None,
    subscriber_zip: str | None,
    subscriber_credentials: Collection[str],
) -> str:
    """Why the opening matched: role, distance (or remote), and the credentials it asks for."""
    role = taxonomy.ROLES.get(details.role)
    parts = [role.title if role is not None else details.title]
    if details.remote:
        parts.append("remote")
    elif distance_miles is not None:
        miles = max(1, round(distance_miles))
        unit = "mile" if miles == 1 else "miles"
        parts.append(
            f"{miles} {unit} from {subscriber_zip}" if subscriber_zip else f"{miles} {unit} away"
        )
    for code in details.required_credentials:
        term = taxonomy.CREDENTIALS.get(code)
        short = (
            code.upper() if code in {"rn", "lpn", "chw", "ccm"} else (term.title if term else code)
        )
        parts.append(
            f"needs {short} (you have it)" if code in subscriber_credentials else f"needs {short}"
        )
    return " · ".join(parts)
