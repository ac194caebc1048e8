"""No account enumeration: a known and an unknown address get the same status and body, and take
the same class of time, on subscriber sign-up and manage-link requests (API and pages), on
employer sign-in (API and page) and on "Forgot your password?" (API and page). Timing: medians
of a few interleaved requests each, within 3x of each other; and the slow step (Argon2) runs
exactly as often for an unknown address as for a known one, so that the timing does not depend
on the machine's load.

Employer sign-up answers alike too (API and page): the account is usable only from the link
emailed to the address, and a taken address gets an email saying so instead."""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Awaitable, Callable

import httpx
import pytest
from argon2 import PasswordHasher

from .support import (
    PASSWORD,
    Service,
    csrf_of,
    employer_signup,
    new_account,
    new_subscriber,
    subscriber_document,
    subscriber_signup,
    unique,
)

pytestmark = pytest.mark.integration

SUBSCRIBER_ROUNDS = 15  # medians of interleaved requests: robust to a busy moment on 2 cores
EMPLOYER_ROUNDS = 3  # each is an Argon2 verify: about a second on a busy machine
MAX_RATIO = 3.0


class Argon2Calls:
    """Counts Argon2 hash and verify calls in this process (the app runs them in threads)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original_hash, original_verify = PasswordHasher.hash, PasswordHasher.verify

        def counting_hash(hasher: PasswordHasher, password: str | bytes, **kw: object) -> str:
            self.count += 1
            return original_hash(hasher, password, **kw)  # type: ignore[arg-type]

        def counting_verify(
            hasher: PasswordHasher, hash: str | bytes, password: str | bytes
        ) -> bool:
            self.count += 1
            return original_verify(hasher, hash, password)

        monkeypatch.setattr(PasswordHasher, "hash", counting_hash)
        monkeypatch.setattr(PasswordHasher, "verify", counting_verify)


Call = Callable[[str], Awaitable[httpx.Response]]


def _normalized(answer: httpx.Response) -> tuple[int, str]:
    """Status and body, with what differs per request anyway (CSRF tokens, echoed address)."""
    body = re.sub(r'value="[^"]*"', 'value=""', answer.text)
    return answer.status_code, body


async def compare(
    call: Call, *, known: str, unknown: Callable[[], str], rounds: int
) -> tuple[float, float]:
    """Same answers for a known and for unknown addresses; medians of interleaved timings."""
    known_times: list[float] = []
    unknown_times: list[float] = []
    reference: tuple[int, str] | None = None
    for round_ in range(rounds + 1):
        for address, times in ((known, known_times), (unknown(), unknown_times)):
            started = time.perf_counter()
            answer = await call(address)
            elapsed = time.perf_counter() - started
            normalized = _normalized(answer)
            if reference is None:
                reference = normalized
            assert normalized == reference, (address, answer.status_code, answer.text[:300])
            if round_:  # the first round warms up
                times.append(elapsed)
    return statistics.median(known_times), statistics.median(unknown_times)


def assert_same_timing_class(known: float, unknown: float, *, what: str) -> None:
    ratio = max(known, unknown) / max(min(known, unknown), 1e-4)
    print(f"{what}: known {known * 1000:.1f} ms, unknown {unknown * 1000:.1f} ms, x{ratio:.2f}")
    assert ratio < MAX_RATIO, (what, known, unknown)


def fresh() -> str:
    return f"{unique('nobody')}@security.example"


async def test_subscriber_sign_up_and_link_requests(subscriber: Service) -> None:
    known_id = await new_subscriber(subscriber)
    document = await subscriber.db["subscribers"].find_one({"_id": known_id})
    assert document is not None
    known = str(document["email"])
    assert await subscriber_document(subscriber, known) is not None
    async with subscriber.client() as client:

        async def sign_up(address: str) -> httpx.Response:
            return await client.post("/api/subscribers", json=subscriber_signup(address))

        async def sign_up_page(address: str) -> httpx.Response:
            form = {"email": address, "roles": "care_coordination", "zip": "01608"}
            return await client.post("/", data=form)

        async def link(address: str) -> httpx.Response:
            return await client.post("/api/preferences/link", json={"email": address})

        async def link_page(address: str) -> httpx.Response:
            return await client.post("/preferences/link", data={"email": address})

        for what, call in {
            "sign-up": sign_up,
            "sign-up page": sign_up_page,
            "manage link": link,
            "manage link page": link_page,
        }.items():
            known_median, unknown_median = await compare(
                call, known=known, unknown=fresh, rounds=SUBSCRIBER_ROUNDS
            )
            assert_same_timing_class(known_median, unknown_median, what=what)


async def test_employer_sign_in(employer: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    account = await new_account(employer, name="enumeration")
    argon2 = Argon2Calls(monkeypatch)
    async with employer.client() as client, employer.client() as browser:

        async def api(address: str) -> httpx.Response:
            body = {"email": address, "password": "wrong " + PASSWORD}
            return await client.post("/api/auth/token", json=body)

        async def page(address: str) -> httpx.Response:
            form = await browser.get("/login")
            data = {
                "csrf_token": csrf_of(form.text),
                "email": address,
                "password": "wrong password",
            }
            answer = await browser.post("/login", data=data)
            # The page keeps what was typed; compare the rest.
            return httpx.Response(
                answer.status_code,
                text=answer.text.replace(address, "ADDRESS"),
                request=answer.request,
            )

        for what, call in {"sign-in API": api, "sign-in page": page}.items():
            before = argon2.count
            answer = await call(account.email)
            assert argon2.count - before == 1, f"{what}: one Argon2 verify for a known address"
            before = argon2.count
            await call(fresh())
            assert argon2.count - before == 1, f"{what}: one Argon2 verify for an unknown one too"
            known_median, unknown_median = await compare(
                call, known=account.email, unknown=fresh, rounds=EMPLOYER_ROUNDS
            )
            assert answer.status_code == 401
            assert_same_timing_class(known_median, unknown_median, what=what)
    await account.close()


async def test_employer_password_reset_requests(employer: Service) -> None:
    """The answer comes before the work (which is the same anyway: one lookup, one transaction
    that stores a reset — a decoy for an unknown address)."""
    account = await new_account(employer, name="reset")
    async with employer.client() as client, employer.client() as browser:

        async def api(address: str) -> httpx.Response:
            return await client.post("/api/employers/password-reset", json={"email": address})

        async def page(address: str) -> httpx.Response:
            form = await browser.get("/forgot-password")
            data = {"csrf_token": csrf_of(form.text), "email": address}
            return await browser.post("/forgot-password", data=data)

        for what, call in {"reset API": api, "reset page": page}.items():
            answer = await call(account.email)
            assert answer.status_code == 202, answer.text
            known_median, unknown_median = await compare(
                call, known=account.email, unknown=fresh, rounds=SUBSCRIBER_ROUNDS
            )
            assert_same_timing_class(known_median, unknown_median, what=what)
    await account.close()


async def test_employer_sign_up(employer: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    """A taken address and a free one: the same 202 and body (API and page), one Argon2 hash
    each, the same class of time. Only the emails differ: a confirmation link to the free
    address, "you already have an account" to the taken one, which its owner alone reads."""
    account = await new_account(employer, name="taken")
    argon2 = Argon2Calls(monkeypatch)
    async with employer.client() as client, employer.client() as browser:

        async def api(address: str) -> httpx.Response:
            return await client.post("/api/employers", json=employer_signup(address))

        async def page(address: str) -> httpx.Response:
            form = await browser.get("/signup")
            data = {
                "csrf_token": csrf_of(form.text),
                "organization_name": "Security Test Care",
                "contact_email": address,
                "password": PASSWORD,
                "city": "Worcester",
                "state": "MA",
                "zip": "01608",
                "settings": "medical",
            }
            return await browser.post("/signup", data=data)

        for what, call in {"sign-up API": api, "sign-up page": page}.items():
            before = argon2.count
            taken = await call(account.email)
            assert argon2.count - before == 1, f"{what}: one Argon2 hash for a taken address"
            before = argon2.count
            await call(fresh())
            assert argon2.count - before == 1, f"{what}: one for a free one too"
            assert taken.status_code == 202
            assert account.employer_id not in taken.text
            known_median, unknown_median = await compare(
                call, known=account.email, unknown=fresh, rounds=EMPLOYER_ROUNDS
            )
            assert_same_timing_class(known_median, unknown_median, what=what)
    await account.close()
