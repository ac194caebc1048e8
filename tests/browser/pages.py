"""Pages in the browser: screenshots, accessibility (axe-core) and focus checks, visitors."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Dialog, Locator, Page

from .mail import Mail
from .support import ARTIFACTS, AXE_SCRIPT, DESKTOP, PHONE, SCREENSHOTS

SERIOUS = {"serious", "critical"}


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """The serious and critical axe-core violations of the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # Evaluated rather than added as a <script>: the pages' CSP forbids inline scripts.
        page.evaluate(AXE_SCRIPT.read_text())
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
