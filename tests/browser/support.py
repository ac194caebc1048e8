"""What the browser journeys share: places, constants and polling."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.sync_api import ViewportSize

from hwcollab_common.geo import haversine_miles, lookup_zip

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
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 360, "height": 780}
PASSWORD = "correct horse battery staple"
MAIL_TIMEOUT = 45.0


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
