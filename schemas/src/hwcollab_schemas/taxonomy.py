"""The HWcollab domain taxonomy: roles and their families, settings, credentials, employment types,
frequencies, and the title synonyms that map an employer's own job title to a canonical role.

This module is the single source of these codes; services, forms and clients read it (directly or
through ``GET /api/taxonomy``) and never hard-code them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

RoleCode = str
FamilyCode = str


@dataclass(frozen=True, slots=True)
class Role:
    code: RoleCode
    title: str
    family: FamilyCode
    synonyms: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Family:
    code: FamilyCode
    title: str
    description: str
    roles: tuple[RoleCode, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Term:
    """A code with the label people read (settings, credentials, employment types, frequencies)."""

    code: str
    title: str
    description: str = ""


_ROLES: tuple[Role, ...] = (
    Role(
        "care_coordinator",
        "Care Coordinator",
        "care_coordination",
        (
            "care coordinator",
            "care coordinator i",
            "care coordinator ii",
            "care coordinator iii",
            "service coordinator",
            "health care coordinator",
            "healthcare coordinator",
            "coordinator of care",
            "care navigator",
            "patient navigator",
            "health navigator",
            "resource coordinator",
        ),
    ),
    Role(
        "community_care_coordinator",
        "Community Care Coordinator",
        "care_coordination",
        (
            "community care coordinator",
            "community health coordinator",
            "community health worker",
            "community coordinator",
            "community based care coordinator",
            "community resource coordinator",
            "home and community based services coordinator",
            "hcbs coordinator",
        ),
    ),
    Role(
        "patient_care_coordinator",
        "Patient Care Coordinator",
        "care_coordination",
        (
            "patient care coordinator",
            "patient coordinator",
            "patient services coordinator",
            "patient access coordinator",
            "intake coordinator",
            "referral coordinator",
        ),
    ),
    Role(
        "clinical_care_coordinator",
        "Clinical Care Coordinator",
        "care_coordination",
        (
            "clinical care coordinator",
            "clinical coordinator",
            "rn care coordinator",
            "nurse care coordinator",
            "transitions of care coordinator",
            "transition coordinator",
            "discharge coordinator",
        ),
    ),
    Role(
        "care_manager",
        "Care Manager",
        "care_management",
        (
            "care manager",
            "care manager i",
            "care manager ii",
            "care management specialist",
            "care management coordinator",
            "behavioral health care manager",
            "bh care manager",
            "community care manager",
            "population health care manager",
        ),
    ),
    Role(
        "nurse_care_manager",
        "Nurse Care Manager",
        "care_management",
        (
            "nurse care manager",
            "rn care manager",
            "registered nurse care manager",
            "lpn care manager",
            "nurse manager care management",
            "care manager rn",
            "clinical nurse care manager",
            "telephonic nurse care manager",
        ),
    ),
    Role(
        "complex_care_manager",
        "Complex Care Manager",
        "care_management",
        (
            "complex care manager",
            "complex case manager",
            "complex care coordinator",
            "high risk care manager",
            "intensive care manager",
            "chronic care manager",
            "chronic disease care manager",
        ),
    ),
    Role(
        "health_home_care_manager",
        "Health Home Care Manager",
        "care_management",
        (
            "health home care manager",
            "health home care coordinator",
            "health home coordinator",
            "health homes care manager",
            "hh care manager",
            "health home case manager",
        ),
    ),
    Role(
        "case_manager",
        "Case Manager",
        "care_management",
        (
            "case manager",
            "case manager i",
            "case manager ii",
            "social work case manager",
            "social services case manager",
            "targeted case manager",
            "tcm case manager",
            "medicaid case manager",
            "waiver case manager",
            "mental health case manager",
            "case management specialist",
        ),
    ),
    Role(
        "rn_case_manager",
        "RN Case Manager",
        "care_management",
        (
            "rn case manager",
            "registered nurse case manager",
            "nurse case manager",
            "case manager rn",
            "utilization review nurse case manager",
            "hospice rn case manager",
            "home health rn case manager",
        ),
    ),
    Role(
        "direct_support_professional",
        "Direct Support Professional (DSP)",
        "direct_support",
        (
            "direct support professional",
            "dsp",
            "direct care worker",
            "direct care professional",
            "direct care staff",
            "residential counselor",
            "residential instructor",
            "habilitation specialist",
            "habilitation technician",
            "personal care assistant",
            "support specialist",
            "community support professional",
            "direct support associate",
            "caregiver",
            "home health aide",
            "life skills coach",
        ),
    ),
)

_FAMILIES: tuple[Family, ...] = (
    Family(
        "care_coordination",
        "Care Coordination",
        "Care coordinators bridge social and clinical care: they connect people with the "
        "services, providers and community resources they need and keep everyone on one plan.",
        tuple(r.code for r in _ROLES if r.family == "care_coordination"),
    ),
    Family(
        "care_management",
        "Care Management",
        "Care managers help people manage chronic and complex conditions, often as nurses "
        "(RN, LPN) or social workers, planning care and following it over time.",
        tuple(r.code for r in _ROLES if r.family == "care_management"),
    ),
    Family(
        "direct_support",
        "Direct Support",
        "Direct support professionals work alongside people with intellectual and developmental "
        "disabilities at home, at work and in the community, supporting daily living and goals.",
        tuple(r.code for r in _ROLES if r.family == "direct_support"),
    ),
)

SETTINGS_TERMS: tuple[Term, ...] = (
    Term("medical", "Medical", "Hospitals, clinics, primary care, health plans"),
    Term("behavioral_health", "Behavioral health", "Mental health and substance use services"),
    Term("social_service", "Social service", "Community and human-services agencies"),
)

CREDENTIAL_TERMS: tuple[Term, ...] = (
    Term("rn", "Registered Nurse (RN)"),
    Term("lpn", "Licensed Practical Nurse (LPN)"),
    Term("social_worker", "Social worker (LSW, LCSW, LMSW)"),
    Term("chw", "Community Health Worker (CHW)"),
    Term("ccm", "Certified Case Manager (CCM)"),
)

EMPLOYMENT_TYPE_TERMS: tuple[Term, ...] = (
    Term("full_time", "Full time"),
    Term("part_time", "Part time"),
    Term("per_diem", "Per diem"),
    Term("contract", "Contract"),
)

FREQUENCY_TERMS: tuple[Term, ...] = (
    Term("immediate", "As soon as an opening is posted", "One email per matching opening"),
    Term("daily", "Daily digest", "One email a day with every new match"),
    Term("weekly", "Weekly digest", "One email a week with every new match"),
)

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

Frequency = Literal["immediate", "daily", "weekly"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
PayPeriod = Literal["hour", "year"]

HOURS_PER_YEAR = 2080

ROLES: dict[RoleCode, Role] = {r.code: r for r in _ROLES}
FAMILIES: dict[FamilyCode, Family] = {f.code: f for f in _FAMILIES}
SETTINGS: dict[str, Term] = {t.code: t for t in SETTINGS_TERMS}
CREDENTIALS: dict[str, Term] = {t.code: t for t in CREDENTIAL_TERMS}
EMPLOYMENT_TYPES: dict[str, Term] = {t.code: t for t in EMPLOYMENT_TYPE_TERMS}
FREQUENCIES: dict[str, Term] = {t.code: t for t in FREQUENCY_TERMS}

ROLE_CODES: tuple[RoleCode, ...] = tuple(ROLES)
FAMILY_CODES: tuple[FamilyCode, ...] = tuple(FAMILIES)
SETTING_CODES: tuple[str, ...] = tuple(SETTINGS)
CREDENTIAL_CODES: tuple[str, ...] = tuple(CREDENTIALS)
EMPLOYMENT_TYPE_CODES: tuple[str, ...] = tuple(EMPLOYMENT_TYPES)
FREQUENCY_CODES: tuple[str, ...] = tuple(FREQUENCIES)


class UnknownCodeError(ValueError):
    """A code that is not in the taxonomy; ``allowed`` lists the codes that are."""

    def __init__(self, kind: str, code: str, allowed: Iterable[str]) -> None:
        self.kind = kind
        self.code = code
        self.allowed = tuple(allowed)
        super().__init__(f"unknown {kind} {code!r}; allowed: {', '.join(self.allowed)}")


def expand_roles(codes: Iterable[str]) -> frozenset[RoleCode]:
    """Role and family codes → the role codes they stand for (a family means all its roles)."""
    roles: set[RoleCode] = set()
    for code in codes:
        if code in ROLES:
            roles.add(code)
        elif code in FAMILIES:
            roles.update(FAMILIES[code].roles)
        else:
            raise UnknownCodeError("role", code, (*ROLE_CODES, *FAMILY_CODES))
    return frozenset(roles)


def check_codes(kind: str, codes: Iterable[str], allowed: Iterable[str]) -> None:
    """Raise :class:`UnknownCodeError` for the first code not in ``allowed``."""
    allowed_set = tuple(allowed)
    for code in codes:
        if code not in allowed_set:
            raise UnknownCodeError(kind, code, allowed_set)


_WORD = re.compile(r"[a-z0-9]+")
_NOISE = {
    "senior",
    "sr",
    "junior",
    "jr",
    "lead",
    "i",
    "ii",
    "iii",
    "iv",
    "1",
    "2",
    "3",
    "level",
    "bilingual",
    "remote",
    "hybrid",
    "the",
    "of",
    "and",
    "for",
    "per",
    "diem",
    "part",
    "full",
    "time",
    "temporary",
    "temp",
    "contract",
    "specialist",
}
_ALIASES = {
    "registered": "rn",
    "nurse": "nurse",
    "nursing": "nurse",
    "coord": "coordinator",
    "mgr": "manager",
    "cm": "case manager",
    "hh": "health home",
}


def _tokens(text: str) -> list[str]:
    words: list[str] = []
    for word in _WORD.findall(text.lower()):
        words.extend(_ALIASES.get(word, word).split())
    return words


_SYNONYM_INDEX: tuple[tuple[frozenset[str], RoleCode, int], ...] = tuple(
    (frozenset(_tokens(phrase)) - _NOISE or frozenset(_tokens(phrase)), role.code, len(phrase))
    for role in _ROLES
    for phrase in (role.title, *role.synonyms)
)


def suggest_role(title: str) -> RoleCode | None:
    """The canonical role an employer's own job title most likely means, or None.

    Picks the synonym whose words are all in the title, preferring the most specific (most
    words); e.g. "RN Care Manager - Health Home" → ``health_home_care_manager``.
    """
    words = set(_tokens(title))
    best: tuple[int, int, RoleCode] | None = None
    for phrase_words, code, length in _SYNONYM_INDEX:
        if phrase_words and phrase_words <= words:
            candidate = (len(phrase_words), length, code)
            if best is None or candidate[:2] > best[:2]:
                best = candidate
    return best[2] if best else None


def taxonomy_document() -> dict[str, Any]:
    """The whole taxonomy as the JSON document served at ``GET /api/taxonomy``."""

    def terms(items: Iterable[Term]) -> list[dict[str, str]]:
        return [{"code": t.code, "title": t.title, "description": t.description} for t in items]

    return {
        "families": [
            {"code": f.code, "title": f.title, "description": f.description, "roles": list(f.roles)}
            for f in _FAMILIES
        ],
        "roles": [
            {"code": r.code, "title": r.title, "family": r.family, "synonyms": list(r.synonyms)}
            for r in _ROLES
        ],
        "settings": terms(SETTINGS_TERMS),
        "credentials": terms(CREDENTIAL_TERMS),
        "employment_types": terms(EMPLOYMENT_TYPE_TERMS),
        "frequencies": terms(FREQUENCY_TERMS),
        "weekdays": list(WEEKDAYS),
        "hours_per_year": HOURS_PER_YEAR,
    }


def _money(amount: float, *, period: PayPeriod) -> str:
    if period == "hour" and amount != int(amount):
        return f"${amount:,.2f}"
    return f"${round(amount):,}"


def pay_label(*, pay_min: float | None, pay_max: float | None, period: PayPeriod) -> str | None:
    """ "$38–$45 an hour", "$80,000 a year", "From $20 an hour", "Up to $25 an hour", or None."""
    per = "an hour" if period == "hour" else "a year"
    if pay_min is not None and pay_max is not None:
        if pay_min == pay_max:
            return f"{_money(pay_min, period=period)} {per}"
        return f"{_money(pay_min, period=period)}–{_money(pay_max, period=period)} {per}"
    if pay_min is not None:
        return f"From {_money(pay_min, period=period)} {per}"
    if pay_max is not None:
        return f"Up to {_money(pay_max, period=period)} {per}"
    return None
