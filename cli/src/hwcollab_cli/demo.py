"""A small demo data set: New England employers and their openings, loaded through the public API.

``hwcollab stack up`` calls :func:`load` when ``HWCOLLAB_DEMO=1`` and the directory is empty;
``hwcollab demo load`` does it by hand. Everything goes through the employer service's HTTP API, so
the openings flow through Kafka to the notifier like any other. Nothing personal is created: the
organizations are fictional, their addresses use ``.example`` domains, and no subscriber is made.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console

from hwcollab_common.settings import DEV_ADMIN_TOKEN

DEMO_PASSWORD = "hwcollab-demo-employer"  # noqa: S105 - a public demo account, never production
READY_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True, slots=True)
class DemoOpening:
    title: str
    role: str
    setting: str
    employment_type: str
    description: str
    zip: str | None = None
    remote: bool = False
    required_credentials: tuple[str, ...] = ()
    pay_min: float | None = None
    pay_max: float | None = None
    pay_period: str = "hour"

    def body(self, *, apply_url: str) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "title": self.title,
            "role": self.role,
            "setting": self.setting,
            "employment_type": self.employment_type,
            "required_credentials": list(self.required_credentials),
            "remote": self.remote,
            "pay_period": self.pay_period,
            "description": self.description,
            "apply_url": apply_url,
        }
        if self.zip is not None:
            fields["zip"] = self.zip
        if self.pay_min is not None:
            fields["pay_min"] = self.pay_min
        if self.pay_max is not None:
            fields["pay_max"] = self.pay_max
        return fields


@dataclass(frozen=True, slots=True)
class DemoEmployer:
    organization_name: str
    contact_email: str
    website: str
    phone: str
    description: str
    street: str
    city: str
    state: str
    zip: str
    settings: tuple[str, ...]
    openings: tuple[DemoOpening, ...] = field(default=())

    def signup_body(self, *, password: str) -> dict[str, Any]:
        return {
            "organization_name": self.organization_name,
            "contact_email": self.contact_email,
            "password": password,
            "website": self.website,
            "description": self.description,
            "phone": self.phone,
            "address": {
                "street": self.street,
                "city": self.city,
                "state": self.state,
                "zip": self.zip,
            },
            "settings": list(self.settings),
        }


EMPLOYERS: tuple[DemoEmployer, ...] = (
    DemoEmployer(
        organization_name="Quinsigamond Community Health Center",
        contact_email="careers@quinsigamond-chc.example",
        website="https://quinsigamond-chc.example",
        phone="508-555-0142",
        description=(
            "A federally qualified community health center serving Worcester County with primary "
            "care, behavioral health and a MassHealth ACO care-management program."
        ),
        street="25 Harding Street",
        city="Worcester",
        state="MA",
        zip="01608",
        settings=("medical", "behavioral_health"),
        openings=(
            DemoOpening(
                title="Nurse Care Manager — ACO Program",
                role="nurse_care_manager",
                setting="medical",
                employment_type="full_time",
                zip="01608",
                required_credentials=("rn",),
                pay_min=41,
                pay_max=49,
                description=(
                    "Lead care plans for adults with complex chronic conditions in our "
                    "accountable care program. Home visits across Worcester County; mileage paid."
                ),
            ),
            DemoOpening(
                title="Community Health Worker Care Coordinator",
                role="community_care_coordinator",
                setting="medical",
                employment_type="full_time",
                zip="01610",
                required_credentials=("chw",),
                pay_min=23,
                pay_max=27,
                description=(
                    "Connect patients with housing, food and transportation resources and help "
                    "them keep their appointments. Spanish or Portuguese a plus."
                ),
            ),
            DemoOpening(
                title="Patient Care Coordinator (Telehealth)",
                role="patient_care_coordinator",
                setting="medical",
                employment_type="part_time",
                remote=True,
                pay_min=21,
                pay_max=24,
                description=(
                    "Schedule follow-ups, reconcile referrals and answer patient questions by "
                    "phone and video, from home anywhere in New England."
                ),
            ),
        ),
    ),
    DemoEmployer(
        organization_name="Merrimack Valley Behavioral Health Partners",
        contact_email="jobs@mvbhp.example",
        website="https://mvbhp.example",
        phone="978-555-0117",
        description=(
            "Outpatient and community behavioral health for the Merrimack Valley: a Community "
            "Behavioral Health Center, youth mobile crisis and a Behavioral Health Community "
            "Partner program."
        ),
        street="400 Merrimack Street",
        city="Lowell",
        state="MA",
        zip="01852",
        settings=("behavioral_health",),
        openings=(
            DemoOpening(
                title="Behavioral Health Care Coordinator II",
                role="clinical_care_coordinator",
                setting="behavioral_health",
                employment_type="full_time",
                zip="01852",
                required_credentials=("social_worker",),
                pay_min=58_000,
                pay_max=66_000,
                pay_period="year",
                description=(
                    "Coordinate treatment for adults with serious mental illness across "
                    "outpatient, primary care and community supports. LSW or LCSW required."
                ),
            ),
            DemoOpening(
                title="Complex Care Manager — Community Partner",
                role="complex_care_manager",
                setting="behavioral_health",
                employment_type="full_time",
                zip="01843",
                pay_min=60_000,
                pay_max=70_000,
                pay_period="year",
                description=(
                    "Carry a caseload of members with co-occurring conditions; outreach, "
                    "comprehensive assessments and person-centered care plans."
                ),
            ),
            DemoOpening(
                title="Case Manager (Per Diem)",
                role="case_manager",
                setting="behavioral_health",
                employment_type="per_diem",
                zip="01852",
                pay_min=26,
                pay_max=30,
                description="Cover evening and weekend case management for our crisis program.",
            ),
        ),
    ),
    DemoEmployer(
        organization_name="Pioneer Valley Supports for Living",
        contact_email="hr@pvsl.example",
        website="https://pvsl.example",
        phone="413-555-0163",
        description=(
            "Residential and day supports for adults with intellectual and developmental "
            "disabilities in Hampden and Hampshire counties."
        ),
        street="1 Federal Street",
        city="Springfield",
        state="MA",
        zip="01103",
        settings=("social_service",),
        openings=(
            DemoOpening(
                title="Direct Support Professional — Residential",
                role="direct_support_professional",
                setting="social_service",
                employment_type="full_time",
                zip="01103",
                pay_min=19.5,
                pay_max=22,
                description=(
                    "Support four adults in a shared home in their daily routines, community "
                    "outings and goals. Paid training; no experience needed."
                ),
            ),
            DemoOpening(
                title="Direct Support Professional — Weekend Day Program",
                role="direct_support_professional",
                setting="social_service",
                employment_type="part_time",
                zip="01060",
                pay_min=20,
                pay_max=21.5,
                description="Saturday and Sunday day program in Northampton; great for students.",
            ),
            DemoOpening(
                title="Service Coordinator",
                role="care_coordinator",
                setting="social_service",
                employment_type="full_time",
                zip="01103",
                pay_min=24,
                pay_max=28,
                description=(
                    "Plan and monitor services for the people we support and their families; "
                    "keep ISPs current and coordinate with state case managers."
                ),
            ),
        ),
    ),
    DemoEmployer(
        organization_name="South Coast Health Home Partners",
        contact_email="careers@southcoast-hhp.example",
        website="https://southcoast-hhp.example",
        phone="508-555-0188",
        description=(
            "A health home and care-management agency for the South Coast, from Fall River to "
            "Wareham, working with primary care and hospitals."
        ),
        street="800 Purchase Street",
        city="New Bedford",
        state="MA",
        zip="02740",
        settings=("medical", "social_service"),
        openings=(
            DemoOpening(
                title="RN Care Manager — Health Home",
                role="health_home_care_manager",
                setting="medical",
                employment_type="full_time",
                zip="02740",
                required_credentials=("rn",),
                pay_min=40,
                pay_max=47,
                description=(
                    "Coordinate physical and behavioral health care for health home members; "
                    "transitions of care after hospital discharge."
                ),
            ),
            DemoOpening(
                title="Care Manager (Remote, Utilization Review)",
                role="care_manager",
                setting="medical",
                employment_type="contract",
                remote=True,
                required_credentials=("ccm",),
                pay_min=36,
                pay_max=42,
                description="Six-month contract reviewing care plans and authorizations remotely.",
            ),
        ),
    ),
    DemoEmployer(
        organization_name="Seacoast Community Care Network",
        contact_email="jobs@seacoast-ccn.example",
        website="https://seacoast-ccn.example",
        phone="603-555-0129",
        description=(
            "Home and community-based services and care coordination for older adults on the "
            "New Hampshire Seacoast."
        ),
        street="200 Market Street",
        city="Portsmouth",
        state="NH",
        zip="03801",
        settings=("medical", "social_service"),
        openings=(
            DemoOpening(
                title="Community Care Coordinator — Choices for Independence",
                role="community_care_coordinator",
                setting="social_service",
                employment_type="full_time",
                zip="03801",
                pay_min=24,
                pay_max=29,
                description=(
                    "Help older adults stay at home: assessments, service plans and monthly "
                    "visits across Rockingham County."
                ),
            ),
            DemoOpening(
                title="RN Case Manager — Home Health",
                role="rn_case_manager",
                setting="medical",
                employment_type="full_time",
                zip="03833",
                required_credentials=("rn",),
                pay_min=42,
                pay_max=50,
                description="Start of care, recertifications and care planning for home patients.",
            ),
        ),
    ),
    DemoEmployer(
        organization_name="Narragansett Bay Family Services",
        contact_email="careers@nbfs.example",
        website="https://nbfs.example",
        phone="401-555-0151",
        description=(
            "Family-centered behavioral health and social services in Providence and the East "
            "Bay, including a certified community behavioral health clinic."
        ),
        street="10 Dorrance Street",
        city="Providence",
        state="RI",
        zip="02903",
        settings=("behavioral_health", "social_service"),
        openings=(
            DemoOpening(
                title="Family Care Coordinator",
                role="care_coordinator",
                setting="behavioral_health",
                employment_type="full_time",
                zip="02903",
                pay_min=52_000,
                pay_max=58_000,
                pay_period="year",
                description=(
                    "Coordinate wraparound services for children and families; flexible hours, "
                    "bilingual stipend."
                ),
            ),
            DemoOpening(
                title="Case Manager — Housing First",
                role="case_manager",
                setting="social_service",
                employment_type="full_time",
                zip="02860",
                required_credentials=("social_worker",),
                pay_min=25,
                pay_max=29,
                description="Support formerly homeless adults to keep their housing and health.",
            ),
        ),
    ),
)


@dataclass(frozen=True, slots=True)
class DemoResult:
    """What :func:`load` did."""

    skipped: bool
    employers: int = 0
    openings: int = 0
    accounts: tuple[str, ...] = ()


class DemoLoadError(RuntimeError):
    """The demo data could not be loaded; the message says which request failed."""


def _check(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.is_error:
        raise DemoLoadError(f"{what}: HTTP {response.status_code} {response.text[:300]}")
    body: dict[str, Any] = response.json()
    return body


def wait_ready(urls: list[str], *, timeout: float = READY_TIMEOUT_SECONDS) -> None:
    """Poll each service's ``/readyz`` until it answers 200 (or raise after ``timeout``)."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=5.0) as client:
        for url in urls:
            while True:
                try:
                    if client.get(f"{url}/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise DemoLoadError(f"{url} is not ready after {timeout:.0f} s")
                time.sleep(0.5)


def directory_is_empty(employer_url: str) -> bool:
    with httpx.Client(base_url=employer_url, timeout=10.0) as client:
        page = _check(client.get("/api/directory", params={"page_size": 1}), "directory")
    return int(page["total"]) == 0


def load(
    *,
    subscriber_url: str,
    employer_url: str,
    notifier_url: str,
    admin_token: str,
    password: str = DEMO_PASSWORD,
    timeout: float = READY_TIMEOUT_SECONDS,
) -> DemoResult:
    """Create the demo employers and post their openings, unless the directory has employers.

    Waits for the three services to be ready first. Employers that wait for approval
    (``EMPLOYER_APPROVAL=manual``) are approved with ``admin_token``.
    """
    wait_ready([subscriber_url, employer_url, notifier_url], timeout=timeout)
    if not directory_is_empty(employer_url):
        return DemoResult(skipped=True)
    openings = 0
    with httpx.Client(base_url=employer_url, timeout=30.0) as client:
        for employer in EMPLOYERS:
            registered = client.post("/api/employers", json=employer.signup_body(password=password))
            if registered.status_code == 409:
                continue  # created by an earlier, interrupted load
            account = _check(registered, f"sign up {employer.organization_name}")
            if account["status"] != "approved":
                _check(
                    client.post(
                        f"/api/admin/employers/{account['employer_id']}/approve",
                        headers={"Authorization": f"Bearer {admin_token}"},
                    ),
                    f"approve {employer.organization_name}",
                )
            token = _check(
                client.post(
                    "/api/auth/token",
                    json={"email": employer.contact_email, "password": password},
                ),
                f"sign in {employer.contact_email}",
            )["access_token"]
            for number, opening in enumerate(employer.openings, start=1):
                body = opening.body(apply_url=f"{employer.website}/careers/{number}")
                _check(
                    client.post(
                        "/api/openings",
                        json=body,
                        headers={"Authorization": f"Bearer {token}"},
                    ),
                    f"post {opening.title!r}",
                )
                openings += 1
    return DemoResult(
        skipped=False,
        employers=len(EMPLOYERS),
        openings=openings,
        accounts=tuple(employer.contact_email for employer in EMPLOYERS),
    )


app = typer.Typer(help="The demo data set (fictional New England employers and openings).")


@app.command("load")
def load_command(
    subscriber_url: Annotated[
        str, typer.Option(envvar="SUBSCRIBER_PUBLIC_URL", help="Subscriber service")
    ] = "http://127.0.0.1:8001",
    employer_url: Annotated[
        str, typer.Option(envvar="EMPLOYER_PUBLIC_URL", help="Employer service")
    ] = "http://127.0.0.1:8002",
    notifier_url: Annotated[
        str, typer.Option(envvar="NOTIFIER_URL", help="Notifier service")
    ] = "http://127.0.0.1:8003",
    admin_token: Annotated[
        str, typer.Option(envvar="ADMIN_TOKEN", help="Operator token, to approve employers")
    ] = DEV_ADMIN_TOKEN,
    password: Annotated[
        str, typer.Option(help="Password of the demo employer accounts")
    ] = DEMO_PASSWORD,
) -> None:
    """Load the demo employers and openings into an empty directory (skips otherwise)."""
    console = Console()
    try:
        result = load(
            subscriber_url=subscriber_url.rstrip("/"),
            employer_url=employer_url.rstrip("/"),
            notifier_url=notifier_url.rstrip("/"),
            admin_token=admin_token,
            password=password,
        )
    except DemoLoadError as error:
        console.print(f"[red]Demo data not loaded:[/red] {error}")
        raise typer.Exit(1) from error
    if result.skipped:
        console.print("The employer directory already has employers; demo data not loaded.")
        return
    console.print(
        f"Loaded {result.employers} employers and {result.openings} openings. "
        f"Sign in at {employer_url.rstrip('/')}/login with any of these accounts and the "
        f"password [bold]{password}[/bold]:"
    )
    for account in result.accounts:
        console.print(f"  {account}")
