"""Openings beyond this site: Atom feeds of any job-board search and of each employer, the
sitemap and robots.txt for crawlers, and the listing an employer embeds in their own website."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from hwcollab_common.web.security import CONTENT_SECURITY_POLICY
from hwcollab_employer import web
from hwcollab_employer.context import Context
from hwcollab_employer.discovery import (
    SITEMAP_LIMIT,
    FeedEntry,
    atom_feed,
    feed_version,
    sitemap,
)
from hwcollab_employer.domain import NotFoundError
from hwcollab_employer.listing import MAX_PAGE_SIZE, BoardQuery, DirectoryQuery, board_query
from hwcollab_employer.pages import search_parameters

router = APIRouter(include_in_schema=False)

ATOM_TYPE = "application/atom+xml; charset=utf-8"
FEED_MAX_AGE = 300  # seconds a reader or proxy may keep a feed without asking again
# The embedded listing may be framed by any site (it shows only public openings and sets no
# cookie); everything else about its policy is the site's.
EMBED_CONTENT_SECURITY_POLICY = CONTENT_SECURITY_POLICY.replace(
    "frame-ancestors 'none'", "frame-ancestors *"
)


def _not_modified(request: Request, etag: str, updated: datetime | None) -> bool:
    """Conditional GET: ``If-None-Match`` decides when sent, else ``If-Modified-Since``."""
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        return etag in {tag.strip() for tag in if_none_match.split(",")} or if_none_match == "*"
    since = request.headers.get("if-modified-since")
    if since and updated is not None:
        try:
            return updated.replace(microsecond=0) <= parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
    return False


def _feed_response(
    request: Request,
    context: Context,
    entries: Sequence[FeedEntry],
    *,
    title: str,
    page_url: str,
) -> Response:
    base = context.settings.employer_public_url.rstrip("/")
    self_url = f"{base}{request.url.path}" + (f"?{request.url.query}" if request.url.query else "")
    etag, updated = feed_version(entries, key=self_url)
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={FEED_MAX_AGE}"}
    if updated is not None:
        headers["Last-Modified"] = format_datetime(updated.replace(microsecond=0), usegmt=True)
    if _not_modified(request, etag, updated):
        return Response(status_code=304, headers=headers)
    body = atom_feed(
        entries,
        feed_id=self_url,
        title=title,
        self_url=self_url,
        page_url=page_url,
        public_url=base,
        generated_at=context.clock.now(),
    )
    return Response(body, media_type=ATOM_TYPE, headers=headers)


@router.get("/openings.atom")
async def board_feed(request: Request, context: Context) -> Response:
    """The newest openings of a job-board search (the board's query parameters), as Atom."""
    parameters, _ = search_parameters(request)
    query = board_query(parameters)  # InvalidFieldsError: 422 with the fields at fault
    # the newest openings of the search, whatever page the board showed
    found = await context.service.find_openings(replace(query, page=1, page_size=MAX_PAGE_SIZE))
    base = context.settings.employer_public_url.rstrip("/")
    page_url = f"{base}/openings" + (f"?{request.url.query}" if request.url.query else "")
    title = "Openings on HWcollab Opportunities"
    if query.near is not None:
        title += f" within {query.radius_miles} miles of {query.near.city}, {query.near.state}"
    entries = [FeedEntry(item.opening, item.distance_miles) for item in found.items]
    return _feed_response(request, context, entries, title=title, page_url=page_url)


async def _public_employer(context: Context, employer_id: str) -> tuple[str, list[FeedEntry]]:
    employer = await context.service.employer(employer_id)
    if not employer.approved:
        raise NotFoundError(employer_id)
    openings = await context.service.open_openings_of(employer_id)
    return employer.organization_name, [FeedEntry(opening) for opening in openings]


@router.get("/employers/{employer_id}/openings.atom")
async def employer_feed(
    request: Request, context: Context, employer_id: Annotated[str, Path(max_length=64)]
) -> Response:
    """An approved employer's open openings, as Atom."""
    name, entries = await _public_employer(context, employer_id)
    base = context.settings.employer_public_url.rstrip("/")
    return _feed_response(
        request,
        context,
        entries,
        title=f"Openings at {name}",
        page_url=f"{base}/employers/{employer_id}",
    )


@router.get("/employers/{employer_id}/embed", response_class=HTMLResponse)
async def embedded_listing(
    request: Request, context: Context, employer_id: Annotated[str, Path(max_length=64)]
) -> Response:
    """An approved employer's open openings as a small page made to sit in an ``<iframe>`` on
    the employer's own website: no site header, links open our opening pages in a new tab, no
    cookie, no script, nothing that tracks the reader."""
    name, entries = await _public_employer(context, employer_id)
    response = web.templates.TemplateResponse(
        request,
        "employer/embed.html",
        {
            "organization_name": name,
            "openings": [entry.opening for entry in entries],
            "public_url": context.settings.employer_public_url.rstrip("/"),
            "employer_id": employer_id,
        },
    )
    response.headers["Content-Security-Policy"] = EMBED_CONTENT_SECURITY_POLICY
    response.headers["Cache-Control"] = f"public, max-age={FEED_MAX_AGE}"
    return response


@router.get("/sitemap.xml")
async def sitemap_xml(context: Context) -> Response:
    """Every public page worth crawling: the directory, the job board, approved employers and
    open openings (sitemaps.org 0.9)."""
    openings = await context.service.find_openings(BoardQuery(page_size=SITEMAP_LIMIT))
    employers = await context.service.find_employers(DirectoryQuery(page_size=SITEMAP_LIMIT))
    body = sitemap(
        public_url=context.settings.employer_public_url,
        openings=[item.opening for item in openings.items],
        employers=[item.employer for item in employers.items],
    )
    return Response(
        body,
        media_type="application/xml",
        headers={"Cache-Control": f"public, max-age={FEED_MAX_AGE}"},
    )


@router.get("/robots.txt", response_class=PlainTextResponse)
async def robots_txt(context: Context) -> str:
    """Crawlers may read the public pages; account pages and the API are not for them."""
    base = context.settings.employer_public_url.rstrip("/")
    return (
        "User-agent: *\n"
        "Disallow: /dashboard\n"
        "Disallow: /api/\n"
        "Disallow: /login\n"
        "Disallow: /signup\n"
        f"Sitemap: {base}/sitemap.xml\n"
    )
