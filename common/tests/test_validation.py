from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import BaseModel, Field, ValidationError, field_validator

from hwcollab_common.validation import field_errors


class Address(BaseModel):
    zip: Annotated[str, Field(min_length=5, max_length=5)]


class Signup(BaseModel):
    name: str
    password: Annotated[str, Field(min_length=12, max_length=256)]
    roles: Annotated[list[str], Field(min_length=1)]
    address: Address

    @field_validator("name")
    @classmethod
    def _named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("enter the organization's name")
        return value


def _errors(data: dict[str, object], **options: object) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        Signup.model_validate(data)
    return field_errors(caught.value, **options)  # type: ignore[arg-type]


def test_one_plain_sentence_per_field_with_nested_fields_dotted() -> None:
    errors = _errors({"name": " ", "password": "short", "roles": [], "address": {"zip": "1"}})
    assert errors == {
        "name": "Enter the organization's name",
        "password": "Use at least 12 characters.",
        "roles": "Choose at least 1.",
        "address.zip": "Use at least 5 characters.",
    }


def test_missing_fields_are_required_and_overrides_win() -> None:
    errors = _errors({"roles": []}, overrides={("roles", "too_short"): "Choose at least one role."})
    assert errors["name"] == "This field is required."
    assert errors["address"] == "This field is required."
    assert errors["roles"] == "Choose at least one role."
