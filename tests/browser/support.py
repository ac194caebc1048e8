"""What the browser journeys share: the running stack's HTTP API, the mail that arrived, screenshots
and accessibility checks of each page."""

from __future__ import annotations

import contextlib
import email
import email.policy
import email.utils
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import httpx
from playwright.sync_api import Browser, BrowserContext, Dialog, Locator, Page

from hwcollab_common.geo import haversine_miles, lookup_zip
from hwcollab_testing.smtp import ReceivedMessage, SmtpSink

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
AXE_SCRIPT = REPO / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 780}
PASSWORD = "correct horse battery staple"
MAIL_TIMEOUT = 45.0
URL = re.compile(r"https?://[^\s<>\"')\]]+")


def eventually(check: Callable[[], T | None], *, timeout: float, what: str) -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.1)


def miles(zip_a: str, zip_b: str) -> float:
    a, b = lookup_zip(zip_a), lookup_zip(zip_b)
    assert a is not None
    assert b is not None
    return haversine_miles(a.lat, a.lon, b.lat, b.lon)


def next_local_time(zip_code: str, *, hour: int, after: datetime) -> datetime:
    """The first ``hour``:00 in the ZIP's time zone strictly after ``after`` (aware)."""
    place = lookup_zip(zip_code)
    assert place is not None
    local = after.astimezone(ZoneInfo(place.timezone))
    candidate = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    if candidate <= local:
        candidate = (candidate + timedelta(days=1)).replace(hour=hour)
    return candidate


# --- mail -----------------------------------------------------------------------------------------


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[tuple[str, str]] = []
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href") or ""
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.hrefs.append((self._href, " ".join("".join(self._text).split())))
            self._href = None


@dataclass(frozen=True)
class Mail:
    """One message the SMTP sink received, parsed as a mail client would."""

    message: EmailMessage
    recipients: tuple[str, ...]
    text: str
    html: str
    anchors: tuple[tuple[str, str], ...] = field(default=())

    @classmethod
    def parse(cls, raw: bytes, recipients: Iterable[str]) -> Mail:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        plain = message.get_body(preferencelist=("plain",))
        rich = message.get_body(preferencelist=("html",))
        html = rich.get_content() if rich is not None else ""
        parser = _Anchors()
        parser.feed(html)
        return cls(
            message=message,
            recipients=tuple(r.lower() for r in recipients),
            text=plain.get_content() if plain is not None else "",
            html=html,
            anchors=tuple(parser.hrefs),
        )

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    def header(self, name: str) -> str:
        return str(self.message[name] or "")

    @property
    def kind(self) -> str:
        return self.header("X-HWcollab-Kind")

    @property
    def opening_ids(self) -> list[str]:
        raw = self.header("X-HWcollab-Opening-Ids")
        return [part.strip() for part in raw.split(",") if part.strip()]

    @property
    def text_links(self) -> list[str]:
        return [url.rstrip(".,;") for url in URL.findall(self.text)]

    def link(self, path: str) -> str:
        """The first link (plain-text part) whose path starts with ``path`` (e.g. ``/confirm``)."""
        for url in self.text_links:
            if httpx.URL(url).path.startswith(path):
                return url
        raise AssertionError(f"no {path} link in the mail {self.subject!r}:\n{self.text}")

    def labelled(self, label: str) -> str:
        """The URL after ``label:`` in the plain-text part (e.g. ``Apply: https://…``)."""
        match = re.search(rf"^{re.escape(label)}: (https?://\S+)", self.text, re.MULTILINE)
        assert match, f"no {label!r} link in the mail {self.subject!r}:\n{self.text}"
        return match.group(1)

    @property
    def unsubscribe_url(self) -> str:
        header = self.header("List-Unsubscribe")
        match = re.search(r"<(https?://[^>]+)>", header)
        assert match, f"no https List-Unsubscribe URL in {header!r}"
        return match.group(1)

    def describe(self) -> str:
        return f"{self.subject!r} to {', '.join(self.recipients)} (openings {self.opening_ids})"


class Inbox:
    """The mail the SMTP sink received, by recipient."""

    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink
        self._parsed: dict[int, tuple[ReceivedMessage, Mail]] = {}

    def all(self) -> list[Mail]:
        mails = []
        for received in self._sink.snapshot():
            cached = self._parsed.get(id(received))
            if cached is None or cached[0] is not received:
                cached = (received, Mail.parse(received.raw, received.rcpt_tos))
                self._parsed[id(received)] = cached
            mails.append(cached[1])
        return mails

    def to(self, address: str) -> list[Mail]:
        address = address.lower()
        return [mail for mail in self.all() if address in mail.recipients]

    def about(self, address: str, opening_id: str) -> list[Mail]:
        return [mail for mail in self.to(address) if opening_id in mail.opening_ids]

    def wait(
        self,
        address: str,
        match: Callable[[Mail], bool] = lambda _: True,
        *,
        what: str,
        timeout: float = MAIL_TIMEOUT,
    ) -> Mail:
        def found() -> Mail | None:
            return next((mail for mail in self.to(address) if match(mail)), None)

        return eventually(found, timeout=timeout, what=f"{what} for {address}")


# --- the running services -------------------------------------------------------------------------


@dataclass(frozen=True)
class Stack:
    """The three services as processes, reached over HTTP as a client would."""

    subscriber_url: str
    employer_url: str
    notifier_url: str
    admin_token: str
    run_id: str
    env: dict[str, str] = field(default_factory=dict, repr=False)
    """The environment the services were started with (for another instance)."""

    def address(self, who: str) -> str:
        """A distinct email address for this session (journeys never share inboxes)."""
        return f"{who}.{self.run_id}@inbox.example"

    def employer_api(self) -> httpx.Client:
        return httpx.Client(base_url=self.employer_url, timeout=20.0)

    def register_employer(
        self,
        *,
        name: str,
        contact: str,
        zip_code: str,
        city: str,
        state: str = "MA",
        settings: tuple[str, ...] = ("medical",),
        description: str = "",
    ) -> str:
        """A signed-up (auto-approved) employer; answers its API access token."""
        with self.employer_api() as api:
            created = api.post(
                "/api/employers",
                json={
                    "organization_name": name,
                    "contact_email": contact,
                    "password": PASSWORD,
                    "description": description,
                    "address": {"city": city, "state": state, "zip": zip_code},
                    "settings": list(settings),
                },
            )
            assert created.status_code == 201, created.text
            assert created.json()["status"] == "approved", created.text
            return self.employer_token(contact)

    def employer_token(self, contact: str) -> str:
        with self.employer_api() as api:
            answer = api.post("/api/auth/token", json={"email": contact, "password": PASSWORD})
            assert answer.status_code == 200, answer.text
            token: str = answer.json()["access_token"]
            return token

    def post_opening(self, token: str, **fields: Any) -> dict[str, Any]:
        body = {
            "setting": "medical",
            "employment_type": "full_time",
            "required_credentials": [],
            "description": "Join our team.",
            "apply_url": "https://careers.example/apply",
            **fields,
        }
        with self.employer_api() as api:
            answer = api.post(
                "/api/openings", json=body, headers={"Authorization": f"Bearer {token}"}
            )
        assert answer.status_code == 201, answer.text
        opening: dict[str, Any] = answer.json()
        return opening

    def close_opening(self, token: str, opening_id: str) -> None:
        with self.employer_api() as api:
            answer = api.post(
                f"/api/openings/{opening_id}/close", headers={"Authorization": f"Bearer {token}"}
            )
        assert answer.status_code == 200, answer.text

    def opening(self, opening_id: str) -> httpx.Response:
        with self.employer_api() as api:
            return api.get(f"/api/openings/{opening_id}")

    def reach(self, token: str, opening_id: str) -> int:
        with self.employer_api() as api:
            answer = api.get(
                f"/api/openings/{opening_id}/stats", headers={"Authorization": f"Bearer {token}"}
            )
        assert answer.status_code == 200, answer.text
        return int(answer.json()["notified"])

    def sign_up(self, address: str, **preferences: Any) -> None:
        """Sign up over the JSON API (the browser journeys sign up through the page)."""
        body = {"email": address, "remote_ok": False, "frequency": "immediate", **preferences}
        with httpx.Client(base_url=self.subscriber_url, timeout=20.0) as api:
            answer = api.post("/api/subscribers", json=body)
        assert answer.status_code == 202, answer.text

    def confirm(self, confirm_url: str) -> None:
        """Confirm as the page's button does (POST to the link from the email)."""
        answer = httpx.post(confirm_url, timeout=20.0)
        assert answer.status_code == 200, answer.text

    def run_digests(self, as_of: datetime) -> dict[str, Any]:
        answer = httpx.post(
            f"{self.notifier_url}/api/admin/digests/run",
            params={"as_of": as_of.isoformat()},
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=60.0,
        )
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    def handled(self, event_type: str) -> float:
        """How many ``event_type`` events the notifier's read model has applied so far."""
        text = httpx.get(f"{self.notifier_url}/metrics", timeout=10.0).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith("hwcollab_events_consumed_total{") and (
                f'event_type="{event_type}"' in line and 'outcome="handled"' in line
            ):
                total += float(line.rsplit(" ", 1)[1])
        return total

    @contextlib.contextmanager
    def notifier_learns(self, event_type: str, *, count: int = 1) -> Iterator[None]:
        """Wait, after the block, until the notifier has applied ``count`` more such events.

        A journey changes something, then acts on it (posts an opening the new wishes match):
        the change has to reach the notifier first, as it would for a person, who is slower.
        """
        before = self.handled(event_type)
        yield
        eventually(
            lambda: self.handled(event_type) >= before + count,
            timeout=MAIL_TIMEOUT,
            what=f"the notifier applies {count} more {event_type}",
        )


def subscribe(stack: Stack, inbox: Inbox, address: str, **preferences: Any) -> Mail:
    """Sign up and confirm through the emailed link; answers the confirmation email."""
    stack.sign_up(address, **preferences)
    confirmation = inbox.wait(address, lambda m: "/confirm" in m.text, what="confirmation email")
    with stack.notifier_learns("subscriber.registered"):
        stack.confirm(confirmation.link("/confirm"))
    # The welcome email follows the registration: from now on openings come one by one.
    inbox.wait(address, lambda m: m.kind == "welcome", what="the welcome email")
    return confirmation


# --- pages ----------------------------------------------------------------------------------------

SERIOUS = {"serious", "critical"}


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """The serious and critical axe-core violations of the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE_SCRIPT))
    result: Mapping[str, Any] = page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})"
    )
    return [v for v in result["violations"] if v.get("impact") in SERIOUS]


def describe_violations(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        lines.append(f"[{violation['impact']}] {violation['id']}: {violation['help']}")
        for node in violation["nodes"][:5]:
            lines.append(f"    {' '.join(node['target'])}: {node.get('failureSummary', '')}")
    return "\n".join(lines)


def focus_indicator(locator: Locator) -> str:
    """How the element shows keyboard focus (outline or box-shadow); "" when it does not."""
    locator.focus()
    style: dict[str, str] = locator.evaluate(
        "el => { const s = getComputedStyle(el);"
        " return {outline: s.outlineStyle + ' ' + s.outlineWidth, shadow: s.boxShadow}; }"
    )
    outline = (
        ""
        if style["outline"].startswith("none") or " 0px" in style["outline"]
        else style["outline"]
    )
    shadow = "" if style["shadow"] in {"none", ""} else style["shadow"]
    return outline or shadow


WIDEST_ELEMENTS = """() => {
  const width = document.documentElement.clientWidth;
  const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
    + (typeof el.className === "string" && el.className ? "." + el.className.split(" ")[0] : "")
    + " " + JSON.stringify((el.textContent || "").trim().slice(0, 30));
  return [...document.querySelectorAll("body *")]
    .filter((el) => el.getBoundingClientRect().right > width + 1)
    .slice(-5)
    .map((el) => name(el) + " right=" + Math.round(el.getBoundingClientRect().right));
}"""


@dataclass
class Camera:
    """Screenshots of each page of one journey, and an accessibility check of each."""

    journey: str
    checked: list[str] = field(default_factory=list)

    def shoot(self, page: Page, step: str, *, phone: bool = False) -> Path:
        """Screenshot (full page) and axe check; ``phone`` also shoots it 360 px wide."""
        page.wait_for_load_state("load")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.journey}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        violations = axe_violations(page)
        if violations:
            report = ARTIFACTS / "axe" / f"{self.journey}-{step}.json"
            report.parent.mkdir(parents=True, exist_ok=True)
            report.write_text(json.dumps(violations, indent=2))
        assert not violations, (
            f"accessibility violations on {page.url} ({path.name}):\n"
            + describe_violations(violations)
        )
        if phone:
            size = page.viewport_size or DESKTOP
            page.set_viewport_size(PHONE)
            page.screenshot(
                path=str(SCREENSHOTS / f"{self.journey}-{step}-360.png"), full_page=True
            )
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            wide = page.evaluate(WIDEST_ELEMENTS) if overflow > 1 else []
            page.set_viewport_size(size)
            assert overflow <= 1, f"{page.url} scrolls sideways at 360 px ({overflow} px): {wide}"
        self.checked.append(page.url)
        return path

    def show_mail(self, page: Page, mail: Mail, step: str) -> Path:
        """Render the HTML part as a mail client would (no network) and screenshot it."""
        page.set_content(mail.html, wait_until="load")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.journey}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


class Visitors:
    """Browser contexts of one journey (each its own cookies); no page may ever open a dialog."""

    def __init__(self, browser: Browser) -> None:
        self._browser = browser
        self.contexts: list[BrowserContext] = []
        self.dialogs: list[str] = []

    def new_page(self, *, javascript: bool = True) -> Page:
        context = self._browser.new_context(
            viewport=DESKTOP, locale="en-US", java_script_enabled=javascript
        )
        # Generous: the test machine may be busy; these bound a failure, not a normal run.
        context.set_default_timeout(45_000)
        context.set_default_navigation_timeout(60_000)
        self.contexts.append(context)
        page = context.new_page()
        page.on("dialog", self._on_dialog)
        return page

    def _on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def close(self) -> None:
        for context in self.contexts:
            context.close()
