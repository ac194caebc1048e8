"""The three services as processes, reached over HTTP as a client would."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from hwcollab_testing.waiting import eventually_sync

from .mail import Inbox, Mail
from .support import MAIL_TIMEOUT, PASSWORD


@dataclass(frozen=True)
class Stack:
    """The three services as processes, reached over HTTP as a client would."""

    subscriber_url: str
    employer_url: str
    notifier_url: str
    admin_token: str
    run_id: str
    env: dict[str, str] = field(default_factory=dict, repr=False)
    """The environment the services were started with (for another instance)."""

    def address(self, who: str) -> str:
        """A distinct email address for this session (journeys never share inboxes)."""
        return f"{who}.{self.run_id}@inbox.example"

    def employer_api(self) -> httpx.Client:
        return httpx.Client(base_url=self.employer_url, timeout=20.0)

    def register_employer(
        self,
        *,
        name: str,
        contact: str,
        zip_code: str,
        city: str,
        state: str = "MA",
        settings: tuple[str, ...] = ("medical",),
        description: str = "",
    ) -> str:
        """An (auto-approved) employer created by an operator, so verified at once; answers its
        API access token. The journeys of sign-up itself go through the pages and the inbox."""
        with self.employer_api() as api:
            created = api.post(
                "/api/admin/employers",
                headers={"Authorization": f"Bearer {self.admin_token}"},
                json={
                    "organization_name": name,
                    "contact_email": contact,
                    "password": PASSWORD,
                    "description": description,
                    "address": {"city": city, "state": state, "zip": zip_code},
                    "settings": list(settings),
                },
            )
            assert created.status_code == 201, created.text
            assert created.json()["status"] == "approved", created.text
            return self.employer_token(contact)

    def employer_token(self, contact: str) -> str:
        with self.employer_api() as api:
            answer = api.post("/api/auth/token", json={"email": contact, "password": PASSWORD})
            assert answer.status_code == 200, answer.text
            token: str = answer.json()["access_token"]
            return token

    def post_opening(self, token: str, **fields: Any) -> dict[str, Any]:
        body = {
            "setting": "medical",
            "employment_type": "full_time",
            "required_credentials": [],
            "description": "Join our team.",
            "apply_url": "https://careers.example/apply",
            **fields,
        }
        with self.employer_api() as api:
            answer = api.post(
                "/api/openings", json=body, headers={"Authorization": f"Bearer {token}"}
            )
        assert answer.status_code == 201, answer.text
        opening: dict[str, Any] = answer.json()
        return opening

    def close_opening(self, token: str, opening_id: str) -> None:
        with self.employer_api() as api:
            answer = api.post(
                f"/api/openings/{opening_id}/close", headers={"Authorization": f"Bearer {token}"}
            )
        assert answer.status_code == 200, answer.text

    def opening(self, opening_id: str) -> httpx.Response:
        with self.employer_api() as api:
            return api.get(f"/api/openings/{opening_id}")

    def reach(self, token: str, opening_id: str) -> int:
        with self.employer_api() as api:
            answer = api.get(
                f"/api/openings/{opening_id}/stats", headers={"Authorization": f"Bearer {token}"}
            )
        assert answer.status_code == 200, answer.text
        return int(answer.json()["notified"])

    def sign_up(self, address: str, **preferences: Any) -> None:
        """Sign up over the JSON API (the browser journeys sign up through the page)."""
        body = {"email": address, "remote_ok": False, "frequency": "immediate", **preferences}
        with httpx.Client(base_url=self.subscriber_url, timeout=20.0) as api:
            answer = api.post("/api/subscribers", json=body)
        assert answer.status_code == 202, answer.text

    def confirm(self, confirm_url: str) -> None:
        """Confirm as the page's button does (POST to the link from the email)."""
        answer = httpx.post(confirm_url, timeout=20.0)
        assert answer.status_code == 200, answer.text

    def run_digests(self, as_of: datetime) -> dict[str, Any]:
        answer = httpx.post(
            f"{self.notifier_url}/api/admin/digests/run",
            params={"as_of": as_of.isoformat()},
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=60.0,
        )
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    def handled(self, event_type: str) -> float:
        """How many ``event_type`` events the notifier's read model has applied so far."""
        text = httpx.get(f"{self.notifier_url}/metrics", timeout=10.0).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith("hwcollab_events_consumed_total{") and (
                f'event_type="{event_type}"' in line and 'outcome="handled"' in line
            ):
                total += float(line.rsplit(" ", 1)[1])
        return total

    @contextlib.contextmanager
    def notifier_learns(self, event_type: str, *, count: int = 1) -> Iterator[None]:
        """Wait, after the block, until the notifier has applied ``count`` more such events.

        A journey changes something, then acts on it (posts an opening the new wishes match):
        the change has to reach the notifier first, as it would for a person, who is slower.
        """
        before = self.handled(event_type)
        yield
        eventually_sync(
            lambda: self.handled(event_type) >= before + count,
            timeout=MAIL_TIMEOUT,
            what=f"the notifier applies {count} more {event_type}",
        )


def subscribe(stack: Stack, inbox: Inbox, address: str, **preferences: Any) -> Mail:
    """Sign up and confirm through the emailed link; answers the confirmation email."""
    stack.sign_up(address, **preferences)
    confirmation = inbox.wait(address, lambda m: "/confirm" in m.text, what="confirmation email")
    with stack.notifier_learns("subscriber.registered"):
        stack.confirm(confirmation.link("/confirm"))
    # The welcome email follows the registration: from now on openings come one by one.
    inbox.wait(address, lambda m: m.kind == "welcome", what="the welcome email")
    return confirmation
