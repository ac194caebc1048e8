"""The HTML layer every service's pages share: one layout, one stylesheet, one set of form macros.

API (small on purpose; keep it stable):

- ``templates(package_templates_dir, *, globals=None) -> Jinja2Templates`` — autoescaping
  templates whose loader searches the service's own directory first, then the shared one, so a
  service template can ``{% extends "hwcollab/base.html" %}`` and
  ``{% import "hwcollab/forms.html" as forms %}``.
- ``mount_static(app)`` — serves the shared assets (Pico CSS 2, ``hwcollab.css``) at
  :data:`STATIC_PATH`; the layout links them from there.

``hwcollab/base.html`` — blocks ``title``, ``head``, ``nav``, ``content``, ``footer``. Context it
reads (all optional): ``page_title`` (str), ``site_section`` (str shown beside the brand, e.g.
"Job alerts"), ``nav_links`` (list of ``(href, label)``), ``current_path`` (marks the current
link with ``aria-current``). It has ``lang="en"``, a skip link, ``header``/``main``/``footer``
landmarks, and is responsive down to 360 px.

``hwcollab/forms.html`` macros (``errors`` is a ``dict[field name, message]``; every control gets
``id="field-<name>"``; its hint and error are tied to it with ``aria-describedby``, and an error
sets ``aria-invalid="true"`` on an input, select or textarea, or the ``has-error`` class on a
fieldset):

- ``error_summary(errors, labels={})`` — an ``role="alert"`` box linking to each field in error.
- ``input(name, label, value="", type="text", errors={}, hint="", required=False, attrs={})``
- ``textarea(name, label, value="", errors={}, hint="", required=False, rows=5, attrs={})``
- ``select(name, label, options, value="", errors={}, hint="", required=False)`` —
  ``options`` is a list of ``(value, title)``.
- ``checkbox(name, label, checked=False, hint="", value="true")`` — a single switch-like box.
- ``checkbox_group(name, legend, options, selected=(), errors={}, hint="")`` — a ``fieldset``;
  ``options`` is a list of ``(value, title, description)`` (description may be "").
- ``radio_group(name, legend, options, value="", errors={}, hint="")`` — same shape, one choice.
- ``hidden(name, value)`` — e.g. a CSRF token.
- ``submit(label, secondary=False, name="", value="")`` — a button.

Whatever a template prints goes through autoescaping: employer-supplied text is never markup.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

__all__ = ["SHARED_STATIC_DIR", "SHARED_TEMPLATES_DIR", "STATIC_PATH", "mount_static", "templates"]

_HERE = Path(__file__).resolve().parent
SHARED_TEMPLATES_DIR = _HERE / "templates"
SHARED_STATIC_DIR = _HERE / "static"
STATIC_PATH = "/assets/hwcollab"
STATIC_ROUTE_NAME = "hwcollab_static"


def templates(
    package_templates_dir: Path | str, *, globals: Mapping[str, Any] | None = None
) -> Jinja2Templates:
    """Templates for one service: its own directory first, then the shared layout and macros."""
    environment = Environment(
        loader=ChoiceLoader(
            [FileSystemLoader(str(package_templates_dir)), FileSystemLoader(SHARED_TEMPLATES_DIR)]
        ),
        autoescape=select_autoescape(("html", "htm", "xml", "j2"), default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.globals["static_path"] = STATIC_PATH
    if globals:
        environment.globals.update(globals)
    return Jinja2Templates(env=environment)


def mount_static(app: FastAPI) -> None:
    """Serve the shared stylesheets at :data:`STATIC_PATH` (idempotent per app)."""
    if any(getattr(route, "name", None) == STATIC_ROUTE_NAME for route in app.routes):
        return
    app.mount(STATIC_PATH, StaticFiles(directory=SHARED_STATIC_DIR), name=STATIC_ROUTE_NAME)
