from typing import Annotated

import httpx
from fastapi import Depends, FastAPI

from hwcollab_common.composition import apply_overrides, from_state


def greeting() -> str:
    return "hello"


def app_with_route() -> FastAPI:
    app = FastAPI()

    @app.get("/")
    async def root(word: Annotated[str, Depends(greeting)]) -> dict[str, str]:
        return {"word": word}

    return app


async def answer(app: FastAPI) -> str:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/")
    word: str = response.json()["word"]
    return word


async def test_an_override_answers_in_place_of_its_dependency() -> None:
    assert await answer(apply_overrides(app_with_route(), {greeting: lambda: "bonjour"})) == (
        "bonjour"
    )


async def test_no_overrides_leave_the_app_as_built() -> None:
    assert await answer(apply_overrides(app_with_route(), None)) == "hello"


class Greeter:
    def word(self) -> str:
        return "hi"


async def test_a_state_dependency_answers_what_the_app_keeps_and_can_be_overridden() -> None:
    get_greeter = from_state("greeter", Greeter)
    assert get_greeter.__name__ == "get_greeter"

    class Other(Greeter):
        def word(self) -> str:
            return "hey"

    def build() -> FastAPI:
        app = FastAPI()
        app.state.greeter = Greeter()

        @app.get("/")
        async def root(greeter: Annotated[Greeter, Depends(get_greeter)]) -> dict[str, str]:
            return {"word": greeter.word()}

        return app

    assert await answer(build()) == "hi"
    assert await answer(apply_overrides(build(), {get_greeter: Other})) == "hey"
