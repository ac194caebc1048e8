"""An employer's website shows their open openings with the embed code from their dashboard: the
listing loads in a frame on a page of another origin, and its links open our opening pages."""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from hwcollab_testing.processes import free_port

from .pages import Camera
from .stack import Stack
from .support import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def employer_website(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A web server of the employer's own, on another port of 127.0.0.1 (so another origin);
    it serves ``index.html`` from the returned directory."""
    root = tmp_path / "site"
    root.mkdir()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = (root / "index.html").read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", root
    finally:
        server.shutdown()
        server.server_close()


def embed_code(stack: Stack, contact: str) -> str:
    """The embed code as the employer copies it from their dashboard."""
    with httpx.Client(base_url=stack.employer_url, timeout=20.0) as browser:
        login = browser.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
        assert token is not None
        signed_in = browser.post(
            "/login",
            data={"csrf_token": token.group(1), "email": contact, "password": PASSWORD},
        )
        assert signed_in.status_code in {200, 303}, signed_in.text[:300]
        dashboard = browser.get("/dashboard")
    found = re.search(r'<textarea id="embed-snippet"[^>]*>(.*?)</textarea>', dashboard.text)
    assert found is not None, "the dashboard offers the embed code"
    return html.unescape(found.group(1))


def test_the_embed_code_shows_the_openings_on_the_employers_own_site(
    stack: Stack,
    page: Page,
    camera: Camera,
    employer_website: tuple[str, Path],
) -> None:
    contact = stack.address("hr.embed")
    token = stack.register_employer(
        name="Green Mountain Supports",
        contact=contact,
        zip_code="05602",
        city="Montpelier",
        state="VT",
    )
    opening = stack.post_opening(
        token,
        title="Direct Support Professional — Montpelier",
        role="direct_support_professional",
        setting="social_service",
        zip="05602",
    )
    site_url, root = employer_website
    (root / "index.html").write_text(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<title>Green Mountain Supports — Careers</title></head><body>"
        "<h1>Work with us</h1>" + embed_code(stack, contact) + "</body></html>"
    )

    page.goto(site_url)
    expect(page.get_by_role("heading", name="Work with us")).to_be_visible()
    frame = page.frame_locator("iframe[title='Openings at Green Mountain Supports']")
    link = frame.get_by_role("link", name="Direct Support Professional — Montpelier")
    expect(link).to_be_visible()
    expect(frame.get_by_role("heading", name="Openings at Green Mountain Supports")).to_be_visible()
    camera.shoot(page, "embedded-listing")

    with page.context.expect_page() as opened:
        link.click()
    tab = opened.value
    tab.wait_for_load_state()
    assert tab.url == f"{stack.employer_url}/openings/{opening['opening_id']}"
    expect(tab.get_by_role("heading", level=1)).to_have_text(
        "Direct Support Professional — Montpelier"
    )
    tab.close()
