from datetime import UTC, datetime, timedelta

import pytest

from hwcollab_notifier.mail.views import OpeningView, distance_label, summarize
from hwcollab_schemas.events import OpeningDetails
from hwcollab_schemas.taxonomy import PayPeriod, pay_label

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def details(**changes: object) -> OpeningDetails:
    values: dict[str, object] = {
        "opening_id": "op-1",
        "employer_id": "emp-1",
        "version": 1,
        "organization_name": "Worcester Community Health",
        "employer_approved": True,
        "title": "Nurse Care Manager",
        "role": "care_manager",
        "setting": "medical",
        "required_credentials": ("rn",),
        "employment_type": "full_time",
        "zip": "01608",
        "city": "Worcester",
        "state": "MA",
        "lat": 42.26,
        "lon": -71.80,
        "pay_min": 38,
        "pay_max": 45,
        "description": "Coordinate care.",
        "apply_url": "https://jobs.example.org/apply/1",
        "posted_at": NOW,
        "expires_at": NOW + timedelta(days=30),
    }
    values.update(changes)
    return OpeningDetails.model_validate(values)


@pytest.mark.parametrize(
    ("pay_min", "pay_max", "period", "label"),
    [
        (38, 45, "hour", "$38–$45 an hour"),
        (38.5, 45, "hour", "$38.50–$45 an hour"),
        (80000, 95000, "year", "$80,000–$95,000 a year"),
        (40, 40, "hour", "$40 an hour"),
        (20, None, "hour", "From $20 an hour"),
        (None, 25, "hour", "Up to $25 an hour"),
        (None, None, "hour", None),
    ],
)
def test_pay_is_written_as_people_say_it(
    pay_min: float | None, pay_max: float | None, period: PayPeriod, label: str | None
) -> None:
    assert pay_label(pay_min=pay_min, pay_max=pay_max, period=period) == label


def test_distance_reads_naturally() -> None:
    assert distance_label(None) is None
    assert distance_label(0.3) == "less than a mile away"
    assert distance_label(1.2) == "1 mile away"
    assert distance_label(11.6) == "12 miles away"


def test_summary_cuts_on_a_word_boundary() -> None:
    text = "word " * 100
    short = summarize(text, limit=50)
    assert len(short) <= 50
    assert short.endswith("word…")
    assert summarize("  two\n\nlines  ") == "two lines"


def test_view_of_an_opening_near_the_reader() -> None:
    view = OpeningView.from_details(
        details(),
        distance_miles=12.3,
        employer_public_url="http://jobs.example:8002/",
        subscriber_zip="01609",
        subscriber_credentials={"rn"},
    )
    assert view.place == "Worcester, MA"
    assert view.distance_label == "12 miles away"
    assert view.pay == "$38–$45 an hour"
    assert view.employment_type == "Full time"
    assert view.setting == "Medical"
    assert view.details_url == "http://jobs.example:8002/openings/op-1"
    assert view.why == "Care Manager · 12 miles from 01609 · needs RN (you have it)"


def test_view_of_a_remote_opening_has_no_distance() -> None:
    remote = details(remote=True, zip=None, city=None, state=None, lat=None, lon=None)
    view = OpeningView.from_details(remote, distance_miles=None, employer_public_url="http://x")
    assert view.place == "Remote"
    assert view.distance_label is None
    assert view.why == "Care Manager · remote · needs RN"
