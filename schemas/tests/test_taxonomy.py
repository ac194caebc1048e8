from __future__ import annotations

import pytest

from hwcollab_schemas import taxonomy
from hwcollab_schemas.taxonomy import UnknownCodeError, expand_roles, suggest_role


def test_families_cover_every_role_once() -> None:
    listed = [role for family in taxonomy.FAMILIES.values() for role in family.roles]
    assert sorted(listed) == sorted(taxonomy.ROLE_CODES)
    assert len(taxonomy.ROLE_CODES) == 11


def test_family_expansion() -> None:
    assert expand_roles(["direct_support"]) == {"direct_support_professional"}
    assert expand_roles(["care_coordination", "rn_case_manager"]) == {
        "care_coordinator",
        "community_care_coordinator",
        "patient_care_coordinator",
        "clinical_care_coordinator",
        "rn_case_manager",
    }
    assert len(expand_roles(["care_management"])) == 6


def test_unknown_code_lists_the_allowed_ones() -> None:
    with pytest.raises(UnknownCodeError) as caught:
        expand_roles(["surgeon"])
    assert "care_manager" in caught.value.allowed
    assert "direct_support" in caught.value.allowed


@pytest.mark.parametrize(
    ("title", "role"),
    [
        ("RN Care Manager", "nurse_care_manager"),
        ("Care Coordinator II", "care_coordinator"),
        ("Nurse Care Manager", "nurse_care_manager"),
        ("LPN Care Manager", "nurse_care_manager"),
        ("RN Care Manager - Health Home", "health_home_care_manager"),
        ("Health Home Care Coordinator", "health_home_care_manager"),
        ("DSP - Residential", "direct_support_professional"),
        ("Direct Support Professional (Overnight)", "direct_support_professional"),
        ("Residential Counselor", "direct_support_professional"),
        ("Senior Case Manager", "case_manager"),
        ("Targeted Case Manager", "case_manager"),
        ("Registered Nurse Case Manager", "rn_case_manager"),
        ("Complex Care Manager (RN)", "complex_care_manager"),
        ("Patient Care Coordinator", "patient_care_coordinator"),
        ("Care Navigator", "care_coordinator"),
        ("Clinical Care Coordinator, Transitions", "clinical_care_coordinator"),
        ("Community Health Worker", "community_care_coordinator"),
        ("Behavioral Health Care Manager", "care_manager"),
    ],
)
def test_title_suggests_the_canonical_role(title: str, role: str) -> None:
    assert suggest_role(title) == role


def test_unrelated_title_suggests_nothing() -> None:
    assert suggest_role("Software Engineer") is None
    assert suggest_role("") is None


def test_document_lists_everything() -> None:
    doc = taxonomy.taxonomy_document()
    assert [f["code"] for f in doc["families"]] == list(taxonomy.FAMILY_CODES)
    assert {r["code"] for r in doc["roles"]} == set(taxonomy.ROLE_CODES)
    assert [s["code"] for s in doc["settings"]] == [
        "medical",
        "behavioral_health",
        "social_service",
    ]
    assert [c["code"] for c in doc["credentials"]] == ["rn", "lpn", "social_worker", "chw", "ccm"]
    assert [f["code"] for f in doc["frequencies"]] == ["immediate", "daily", "weekly"]
    assert all(r["synonyms"] for r in doc["roles"])
