"""The demo data file shipped with the CLI: read and validated into employers and openings, and a
malformed file refused with an error naming the entry and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hwcollab_cli.demo import EMPLOYERS
from hwcollab_cli.demo_data import DemoDataError, DemoEmployer, load_employers, parse_employers
from hwcollab_common.geo import lookup_zip


def test_the_shipped_file_holds_six_employers_and_their_fifteen_openings() -> None:
    employers = load_employers()
    assert employers == EMPLOYERS
    assert len(employers) == 6
    assert sum(len(employer.openings) for employer in employers) == 15
    quinsigamond = employers[0]
    assert quinsigamond.organization_name == "Quinsigamond Community Health Center"
    assert quinsigamond.settings == ("medical", "behavioral_health")
    nurse = quinsigamond.openings[0]
    assert nurse.body(apply_url="https://quinsigamond-chc.example/careers/1") == {
        "title": "Nurse Care Manager — ACO Program",
        "role": "nurse_care_manager",
        "setting": "medical",
        "employment_type": "full_time",
        "required_credentials": ["rn"],
        "remote": False,
        "pay_period": "hour",
        "description": (
            "Lead care plans for adults with complex chronic conditions in our accountable care "
            "program. Home visits across Worcester County; mileage paid."
        ),
        "apply_url": "https://quinsigamond-chc.example/careers/1",
        "zip": "01608",
        "pay_min": 41,
        "pay_max": 49,
    }
    remote = [opening for employer in employers for opening in employer.openings if opening.remote]
    assert [opening.zip for opening in remote] == [None, None]


def test_every_place_in_the_shipped_file_is_a_known_zip() -> None:
    for employer in load_employers():
        assert lookup_zip(employer.zip) is not None, employer.organization_name
        for opening in employer.openings:
            assert opening.zip is None or lookup_zip(opening.zip) is not None, opening.title


def _document_with(change: dict[str, object], *, opening: bool = False) -> str:
    document = json.loads(json.dumps({"employers": [_employer_fields(e) for e in EMPLOYERS[:2]]}))
    target = document["employers"][1]
    (target["openings"][2] if opening else target).update(change)
    return json.dumps(document)


def _employer_fields(employer: DemoEmployer) -> dict[str, object]:
    fields = {name: getattr(employer, name) for name in DemoEmployer.__dataclass_fields__}
    fields["openings"] = [
        {name: getattr(opening, name) for name in type(opening).__dataclass_fields__}
        for opening in employer.openings
    ]
    return fields


def test_a_missing_field_of_an_opening_is_named_with_its_employer(tmp_path: Path) -> None:
    path = tmp_path / "demo.json"
    document = json.loads(_document_with({}, opening=True))
    del document["employers"][1]["openings"][2]["role"]
    path.write_text(json.dumps(document), "utf-8")
    with pytest.raises(DemoDataError) as raised:
        load_employers(path)
    assert str(raised.value) == (
        f"{path}: employer #2 (Merrimack Valley Behavioral Health Partners): "
        "openings.2.role: Field required"
    )


def test_a_wrong_type_and_an_unknown_field_are_both_named() -> None:
    text = _document_with({"pay_min": "a lot", "salary": 1}, opening=True)
    with pytest.raises(DemoDataError, match=r"employer #2 \(Merrimack Valley") as raised:
        parse_employers(text)
    message = str(raised.value)
    assert "openings.2.pay_min: Input should be a valid number" in message
    assert "openings.2.salary: Unexpected keyword argument" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{", "demo_data.json: not JSON"),
        ("[]", 'demo_data.json: expected an object with an "employers" list'),
        ('{"employers": [{"city": "Lowell"}]}', "employer #1: "),
    ],
)
def test_a_file_of_the_wrong_shape_is_refused(text: str, expected: str) -> None:
    with pytest.raises(DemoDataError, match=expected):
        parse_employers(text)
