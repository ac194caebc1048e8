"""The demo data set: fictional New England employers in health and human services and their
openings over the whole taxonomy (some remote). Loaded by :mod:`hwcollab_cli.demo`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
