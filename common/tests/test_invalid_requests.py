"""Invalid input is a 422 with field messages in every service, whatever characters it holds: a
lone surrogate (``\\ud800`` in the JSON, which no UTF-8 text can hold) made the answer itself
fail with a 500 before."""

from __future__ import annotations

import json

import httpx
from fastapi import FastAPI
from pydantic import BaseModel, Field

from hwcollab_common.ops import install_http_basics


class Body(BaseModel):
    name: str = Field(max_length=3)
    count: int


def _app() -> FastAPI:
    app = FastAPI()
    install_http_basics(app)

    @app.post("/things")
    async def create(body: Body) -> dict[str, str]:
        return {"name": body.name}

    return app


async def _post(content: bytes) -> httpx.Response:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        return await client.post(
            "/things", content=content, headers={"Content-Type": "application/json"}
        )


async def test_a_lone_surrogate_in_invalid_input_is_a_422_naming_the_field() -> None:
    answer = await _post(b'{"name": "\\ud800abcd", "count": "many"}')
    assert answer.status_code == 422
    assert answer.content.isascii()
    detail = answer.json()["detail"]
    assert {tuple(item["loc"]) for item in detail} == {("body", "name"), ("body", "count")}
    assert next(i for i in detail if i["loc"][-1] == "name")["input"] == "\ud800abcd"


async def test_other_invalid_input_reads_as_before() -> None:
    answer = await _post(json.dumps({"name": "Zoë Zoë", "count": 1}).encode())
    assert answer.status_code == 422
    [item] = answer.json()["detail"]
    assert item["loc"] == ["body", "name"]
    assert item["msg"] == "String should have at most 3 characters"
    assert item["input"] == "Zoë Zoë"
    assert (await _post('{"name": "Zoë", "count": 2}'.encode())).json() == {"name": "Zoë"}
