"""The opening and the reader of example emails, shared by the composer and signing tests."""

from __future__ import annotations

from hwcollab_notifier.mail.views import OpeningView, Recipient


def opening(n: int = 1, **changes: object) -> OpeningView:
    values: dict[str, object] = {
        "opening_id": f"op-{n}",
        "title": "Nurse Care Manager",
        "organization_name": "Worcester Community Health",
        "place": "Worcester, MA",
        "distance_miles": 12.0,
        "pay": "$38–$45 an hour",
        "employment_type": "Full time",
        "setting": "Medical",
        "summary": "Coordinate care for adults with complex needs.",
        "apply_url": f"https://jobs.example.org/apply/{n}?src=hw&x=1",
        "details_url": f"http://jobs.example:8002/openings/op-{n}",
        "why": "Care Manager · 12 miles from 01608",
    }
    values.update(changes)
    return OpeningView(**values)  # type: ignore[arg-type]


def recipient(**changes: str | None) -> Recipient:
    values: dict[str, str | None] = {
        "subscriber_id": "sub-1",
        "email": "pat@example.org",
        "first_name": "Pat",
        "manage_url": "http://subs.example:8001/preferences?token=MANAGE",
        "unsubscribe_url": "http://subs.example:8001/unsubscribe?token=UNSUB",
        "pause_url": "http://subs.example:8001/pause?token=MANAGE",
    }
    values.update(changes)
    return Recipient(**values)  # type: ignore[arg-type]
