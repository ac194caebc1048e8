"""The demo data set: fictional New England employers in health and human services and their
openings over the whole taxonomy (some remote). Loaded by :mod:`hwcollab_cli.demo`.

The data lives in ``demo_data.json`` next to this module (package data); :func:`load_employers`
reads and validates it, naming the entry and field when the file is malformed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError, with_config

DATA_FILE = "demo_data.json"


@with_config(ConfigDict(extra="forbid"))
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


@with_config(ConfigDict(extra="forbid"))
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


class DemoDataError(ValueError):
    """The demo data file is malformed; the message names the file, the entry and the field."""


_EMPLOYER = TypeAdapter(DemoEmployer)


def parse_employers(text: str, *, source: str = DATA_FILE) -> tuple[DemoEmployer, ...]:
    """The employers of a demo data document: ``{"employers": [{...}, ...]}``."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise DemoDataError(f"{source}: not JSON: {error}") from error
    entries = document.get("employers") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise DemoDataError(f'{source}: expected an object with an "employers" list')
    return tuple(_employer(entry, number, source) for number, entry in enumerate(entries, 1))


def load_employers(path: Path | None = None) -> tuple[DemoEmployer, ...]:
    """The employers of the demo data file at ``path``, by default the one shipped here."""
    if path is None:
        return parse_employers(files("hwcollab_cli").joinpath(DATA_FILE).read_text("utf-8"))
    return parse_employers(path.read_text("utf-8"), source=str(path))


def _employer(entry: object, number: int, source: str) -> DemoEmployer:
    name = entry.get("organization_name") if isinstance(entry, dict) else None
    label = f"employer #{number}" + (f" ({name})" if isinstance(name, str) else "")
    try:
        return _EMPLOYER.validate_python(entry)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'entry'}: {problem['msg']}"
            for problem in error.errors()
        )
        raise DemoDataError(f"{source}: {label}: {problems}") from error


EMPLOYERS: tuple[DemoEmployer, ...] = load_employers()
