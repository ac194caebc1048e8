"""How openings are found beyond this site: schema.org ``JobPosting`` data for search engines' job
features (Google for Jobs reads it from each opening page), Atom feeds for feed readers and partner
sites, and the sitemap that lists every public page worth crawling. No I/O: the routes in
``feeds.py`` and ``pages.py`` give these functions what they show.
"""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree

from hwcollab_employer.domain import Employer, Opening
from hwcollab_schemas import taxonomy

__all__ = [
    "CLOSED_GRACE",
    "SITEMAP_LIMIT",
    "FeedEntry",
    "atom_feed",
    "embed_snippet",
    "feed_version",
    "gone",
    "job_posting",
    "job_posting_script",
    "sitemap",
]

# A closed opening's page stays (marked closed, without JobPosting data) this long, so that people
# following an old link learn what happened; then it answers 410 Gone and crawlers drop it.
CLOSED_GRACE = timedelta(days=30)
# The sitemap protocol's limit of URLs per file.
SITEMAP_LIMIT = 50_000

ATOM = "http://www.w3.org/2005/Atom"
SITEMAP = "http://www.sitemaps.org/schemas/sitemap/0.9"

# Our employment types as schema.org / Google spell them.
EMPLOYMENT_TYPES = {
    "full_time": "FULL_TIME",
    "part_time": "PART_TIME",
    "per_diem": "PER_DIEM",
    "contract": "CONTRACTOR",
}
PAY_UNITS = {"hour": "HOUR", "year": "YEAR"}


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _description_html(opening: Opening) -> str:
    """The description as the HTML Google wants, each paragraph escaped; a few facts lead it so
    that an opening posted without a description still has one."""
    f = opening.fields
    facts = [
        f"{taxonomy.ROLES[f.role].title if f.role in taxonomy.ROLES else f.role}",
        taxonomy.SETTINGS[f.setting].title if f.setting in taxonomy.SETTINGS else f.setting,
    ]
    if f.required_credentials:
        titles = [
            taxonomy.CREDENTIALS[c].title if c in taxonomy.CREDENTIALS else c
            for c in f.required_credentials
        ]
        facts.append("requires " + ", ".join(titles))
    paragraphs = [" · ".join(facts)]
    paragraphs.extend(p for p in f.description.split("\n\n") if p.strip())
    return "".join(f"<p>{html.escape(p.strip())}</p>" for p in paragraphs)


def job_posting(
    opening: Opening, *, employer: Employer | None, public_url: str, now: datetime
) -> dict[str, Any] | None:
    """The schema.org ``JobPosting`` of a public open opening (Google for Jobs' required and
    recommended properties); None when it is closed, past its end or not public yet: such an
    opening must not be offered as a job."""
    if not (opening.is_open and opening.employer_approved and opening.expires_at > now):
        return None
    f = opening.fields
    base = public_url.rstrip("/")
    organization: dict[str, Any] = {
        "@type": "Organization",
        "name": opening.organization_name,
        "url": f"{base}/employers/{opening.employer_id}",
    }
    if employer is not None and employer.website:
        organization["sameAs"] = employer.website
    posting: dict[str, Any] = {
        "@context": "https://schema.org/",
        "@type": "JobPosting",
        "title": f.title,
        "description": _description_html(opening),
        "datePosted": _iso(opening.posted_at),
        "validThrough": _iso(opening.expires_at),
        "employmentType": EMPLOYMENT_TYPES.get(f.employment_type, "OTHER"),
        "hiringOrganization": organization,
        "identifier": {
            "@type": "PropertyValue",
            "name": opening.organization_name,
            "value": opening.opening_id,
        },
        "url": f"{base}/openings/{opening.opening_id}",
        "industry": "Health care and social assistance",
        "occupationalCategory": taxonomy.ROLES[f.role].title
        if f.role in taxonomy.ROLES
        else f.role,
    }
    if opening.place is not None:
        address: dict[str, Any] = {
            "@type": "PostalAddress",
            "addressLocality": opening.place.city,
            "addressRegion": opening.place.state,
            "postalCode": opening.place.zip,
            "addressCountry": "US",
        }
        if opening.place.street:
            address["streetAddress"] = opening.place.street
        posting["jobLocation"] = {"@type": "Place", "address": address}
    if f.remote:
        posting["jobLocationType"] = "TELECOMMUTE"
        posting["applicantLocationRequirements"] = {"@type": "Country", "name": "USA"}
    if f.pay_min is not None or f.pay_max is not None:
        value: dict[str, Any] = {"@type": "QuantitativeValue", "unitText": PAY_UNITS[f.pay_period]}
        if f.pay_min is not None and f.pay_max is not None and f.pay_min != f.pay_max:
            value |= {"minValue": f.pay_min, "maxValue": f.pay_max}
        else:
            value["value"] = f.pay_min if f.pay_min is not None else f.pay_max
        posting["baseSalary"] = {"@type": "MonetaryAmount", "currency": "USD", "value": value}
    return posting


def embed_snippet(employer: Employer, *, public_url: str) -> str:
    """The HTML an employer pastes into their own website to show their open openings."""
    src = f"{public_url.rstrip('/')}/employers/{employer.employer_id}/embed"
    title = html.escape(f"Openings at {employer.organization_name}", quote=True)
    return (
        f'<iframe src="{html.escape(src, quote=True)}" title="{title}" '
        'style="border:0;width:100%;min-height:420px" loading="lazy"></iframe>'
    )


def job_posting_script(posting: dict[str, Any]) -> str:
    """The JSON of ``posting`` safe inside ``<script type="application/ld+json">``: no ``<``, ``>``
    or ``&`` appears raw, so no text of the employer's can close the element."""
    text = json.dumps(posting, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def gone(opening: Opening, *, now: datetime) -> bool:
    """Whether a closed opening's page has outlived its grace period (410 Gone); one an
    operator took down is gone at once."""
    if opening.is_open:
        return False
    if opening.taken_down:
        return True
    return now - (opening.closed_at or opening.expires_at) > CLOSED_GRACE


@dataclass(frozen=True, slots=True)
class FeedEntry:
    opening: Opening
    distance_miles: float | None = None


def feed_version(entries: Sequence[FeedEntry], *, key: str) -> tuple[str, datetime | None]:
    """The feed's ETag and last change: they move whenever an opening in it is added, edited or
    leaves it (``key`` tells feeds of different queries apart)."""
    digest = hashlib.sha256(key.encode())
    for entry in entries:
        digest.update(f"{entry.opening.opening_id}:{entry.opening.version}\n".encode())
    updated = max((entry.opening.updated_at for entry in entries), default=None)
    return f'"{digest.hexdigest()[:32]}"', updated


def _text(parent: ElementTree.Element, tag: str, text: str, **attributes: str) -> None:
    element = ElementTree.SubElement(parent, f"{{{ATOM}}}{tag}", attributes)
    element.text = text


def atom_feed(
    entries: Sequence[FeedEntry],
    *,
    feed_id: str,
    title: str,
    self_url: str,
    page_url: str,
    public_url: str,
    generated_at: datetime,
) -> bytes:
    """An Atom 1.0 feed (RFC 4287) of ``entries``, newest first as given; one entry per opening,
    its id the opening's page, updated when the opening changes."""
    ElementTree.register_namespace("", ATOM)
    feed = ElementTree.Element(f"{{{ATOM}}}feed")
    _text(feed, "id", feed_id)
    _text(feed, "title", title)
    updated = max((e.opening.updated_at for e in entries), default=generated_at)
    _text(feed, "updated", _iso(updated))
    ElementTree.SubElement(feed, f"{{{ATOM}}}link", {"rel": "self", "href": self_url})
    ElementTree.SubElement(
        feed, f"{{{ATOM}}}link", {"rel": "alternate", "type": "text/html", "href": page_url}
    )
    author = ElementTree.SubElement(feed, f"{{{ATOM}}}author")
    _text(author, "name", "HWcollab Opportunities")
    _text(feed, "generator", "HWcollab Opportunities")
    base = public_url.rstrip("/")
    for entry in entries:
        opening, f = entry.opening, entry.opening.fields
        url = f"{base}/openings/{opening.opening_id}"
        item = ElementTree.SubElement(feed, f"{{{ATOM}}}entry")
        _text(item, "id", url)
        _text(item, "title", f"{f.title} — {opening.organization_name}")
        _text(item, "updated", _iso(opening.updated_at))
        _text(item, "published", _iso(opening.posted_at))
        ElementTree.SubElement(
            item, f"{{{ATOM}}}link", {"rel": "alternate", "type": "text/html", "href": url}
        )
        item_author = ElementTree.SubElement(item, f"{{{ATOM}}}author")
        _text(item_author, "name", opening.organization_name)
        _text(item_author, "uri", f"{base}/employers/{opening.employer_id}")
        ElementTree.SubElement(
            item,
            f"{{{ATOM}}}category",
            {"term": f.role, "label": taxonomy.ROLES[f.role].title}
            if f.role in taxonomy.ROLES
            else {"term": f.role},
        )
        _text(item, "summary", _summary(entry), type="text")
        _text(item, "content", _description_html(opening), type="html")
    body: bytes = ElementTree.tostring(feed, encoding="utf-8", xml_declaration=True)
    return body


def _summary(entry: FeedEntry) -> str:
    opening, f = entry.opening, entry.opening.fields
    where = "Remote" if f.remote else ""
    if opening.place is not None:
        here = f"{opening.place.city}, {opening.place.state}"
        where = f"{where} (based in {here})" if where else here
    parts = [where]
    pay = taxonomy.pay_label(pay_min=f.pay_min, pay_max=f.pay_max, period=f.pay_period)
    if pay:
        parts.append(pay)
    if entry.distance_miles is not None:
        parts.append(f"{entry.distance_miles:.1f} mi away")
    return " · ".join(part for part in parts if part)


def sitemap(
    *,
    public_url: str,
    openings: Iterable[Opening],
    employers: Iterable[Employer],
) -> bytes:
    """The sitemap (sitemaps.org 0.9) of the public pages: the directory and job board, every
    approved employer's page and every open opening's page, at most :data:`SITEMAP_LIMIT` URLs."""
    ElementTree.register_namespace("", SITEMAP)
    root = ElementTree.Element(f"{{{SITEMAP}}}urlset")
    base = public_url.rstrip("/")
    urls: list[tuple[str, datetime | None]] = [(f"{base}/", None), (f"{base}/openings", None)]
    urls.extend((f"{base}/employers/{e.employer_id}", e.updated_at) for e in employers)
    urls.extend((f"{base}/openings/{o.opening_id}", o.updated_at) for o in openings)
    for location, modified in urls[:SITEMAP_LIMIT]:
        url = ElementTree.SubElement(root, f"{{{SITEMAP}}}url")
        ElementTree.SubElement(url, f"{{{SITEMAP}}}loc").text = location
        if modified is not None:
            ElementTree.SubElement(url, f"{{{SITEMAP}}}lastmod").text = _iso(modified)
    body: bytes = ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
    return body
