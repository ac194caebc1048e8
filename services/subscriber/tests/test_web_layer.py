"""The shared web layer as a service uses it: own templates first, shared layout and macros,
escaping of whatever text is printed."""

from __future__ import annotations

from pathlib import Path

import httpx

from hwcollab_common.web import templates


def test_service_templates_come_first_and_text_is_escaped(tmp_path: Path) -> None:
    (tmp_path / "hello.html").write_text(
        '{% extends "hwcollab/base.html" %}{% import "hwcollab/forms.html" as forms %}'
        "{% block content %}<p>{{ text }}</p>"
        '{{ forms.textarea("description", "Description", value=text, errors=errors) }}'
        "{% endblock %}"
    )
    html = (
        templates(tmp_path, globals={"site_section": "Employers"})
        .get_template("hello.html")
        .render(text='<script>alert("x")</script>', errors={"description": "Too <b>long</b>"})
    )
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "Too &lt;b&gt;long&lt;/b&gt;" in html
    assert 'aria-describedby="field-description-error"' in html
    assert "Employers" in html
    assert "/assets/hwcollab/pico.min.css" in html


async def test_pages_forbid_framing_and_leak_no_tokens(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert 'aria-current="page"' in page.text
